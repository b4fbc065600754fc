-- Retention register: data still held past the retention period declared by the event that brought
-- it there, by holder and category, with how many subjects and since when it is overdue (a run's
-- first arrival is its earliest due: runs suffice).
-- Parameters: $now.
SELECT
    h.holder,
    h.category,
    count(DISTINCT h.subject) AS subjects,
    max(h.retention_days) AS retention_days,
    min(retention_end(h.arrived_at, h.retention_days)) AS overdue_since
FROM runs($now) AS h
WHERE h.ended_at IS NULL
  AND h.retention_days IS NOT NULL
  AND retention_end(h.arrived_at, h.retention_days) < $now
GROUP BY h.holder, h.category
ORDER BY h.holder, h.category
