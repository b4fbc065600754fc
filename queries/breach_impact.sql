-- Breach impact: the (subject, category) pairs whose data had reached a compromised holder by $t2
-- (directly or over chained bulk flows, time-respecting) and was not erased there before $t1,
-- with where, since when, whether it was encrypted there, and the subject's residence and age band.
-- Reads the holdings' runs (one per pair and interval, whatever the number of re-exports).
-- Parameters: $nodes (list of holder names), $t1, $t2.
WITH
    hit AS (
        SELECT h.subject, h.category, h.holder, min(h.arrived_at) AS reached_at,
               bool_and(coalesce(h.encrypted, false)) AS encrypted
        FROM runs($t2) AS h
        WHERE list_contains($nodes, h.holder) AND (h.ended_at IS NULL OR h.ended_at >= $t1)
        GROUP BY h.subject, h.category, h.holder
    ),
    facts AS (
        SELECT
            subject_id AS subject,
            arg_max(subject_jurisdiction, occurred_at) FILTER (WHERE subject_jurisdiction IS NOT NULL) AS jurisdiction,
            arg_max(age_band, occurred_at) FILTER (WHERE age_band <> 'UNKNOWN') AS age_band
        FROM events
        WHERE scope = 'SUBJECT' AND occurred_at <= $t2 AND subject_id IN (SELECT subject FROM hit)
        GROUP BY subject_id
    )
SELECT hit.*, facts.jurisdiction, coalesce(facts.age_band, 'UNKNOWN') AS age_band
FROM hit
LEFT JOIN facts USING (subject)
ORDER BY hit.subject, hit.category, hit.holder
