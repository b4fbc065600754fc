-- Policy check, retention clause: data still held at the organisation's systems past the days the
-- policy gives its category (the shortest period of the keys that cover it).
-- Only holders upstream of the systems are traversed, as for a breach (queries/_macros.sql: upstream,
-- arrivals): the holdings at the systems are the same, for a fraction of the work.
-- Parameters: $systems, $now, $keys (category keys), $days (days for each key, same order).
WITH
    rules AS (SELECT unnest($keys) AS key, unnest($days) AS days),
    held AS (
        SELECT h.via, h.subject, h.category, h.holder, h.arrived_at, min(r.days) AS days
        FROM holdings(
            NULL, $now,
            holders := (SELECT list(DISTINCT holder) FROM upstream($systems, $now)),
            nodes := $systems,
            keys := (SELECT list_distinct(flatten(list(keys))) FROM upstream($systems, $now))
        ) AS h
        JOIN rules AS r ON covers(h.category, [r.key])
        WHERE list_contains($systems, h.holder) AND h.ended_at IS NULL
        GROUP BY ALL
    )
SELECT via, subject, category, holder, days
FROM held
WHERE arrived_at + to_days(days) < $now
ORDER BY arrived_at, via, category
