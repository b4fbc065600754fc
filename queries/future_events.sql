-- Events stamped after the wall clock an answer was judged at: how many, and the latest (every answer's stamp).
-- Parameters: $now (the wall clock), $until (NULL: every such event; a time: only those up to it, a window's end).
SELECT count(*) AS n, max(occurred_at) AS latest
FROM events
WHERE occurred_at > $now AND ($until::TIMESTAMPTZ IS NULL OR occurred_at <= $until::TIMESTAMPTZ)
