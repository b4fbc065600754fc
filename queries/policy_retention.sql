-- Policy check, retention clause: data still held at the organisation's systems past the days the
-- policy gives its category (the shortest period of the keys that cover it).
-- Parameters: $systems, $now, $keys (category keys), $days (days for each key, same order).
WITH
    rules AS (SELECT unnest($keys) AS key, unnest($days) AS days),
    held AS (
        SELECT h.via, h.subject, h.category, h.holder, h.arrived_at, min(r.days) AS days
        FROM holdings(NULL, $now) AS h
        JOIN rules AS r ON covers(h.category, [r.key])
        WHERE h.ended_at IS NULL AND list_contains($systems, h.holder)
        GROUP BY ALL
    )
SELECT via, subject, category, holder, days
FROM held
WHERE retention_end(arrived_at, days) < $now
ORDER BY arrived_at, via, category
