-- Access request (GDPR Art. 15, PIPL Art. 45, CCPA 1798.110): what is held about a subject, per
-- data category and holder: since when, still held or erased, purposes, legal bases, sources,
-- retention and when it ends.
-- Reads `subject_holdings` (queries/subject_holdings.sql makes it for the subject and time).
-- Parameters: none (the subject and time are bound when subject_holdings is made).
SELECT
    category,
    holder,
    first_arrived(holder_role, arrived_at) AS holder_role,
    first_arrived(holder_region, arrived_at) AS holder_region,
    min(arrived_at) AS since,
    bool_or(ended_at IS NULL) AS still_held,
    CASE WHEN bool_or(ended_at IS NULL) THEN NULL ELSE max(ended_at) END AS erased_at,
    list_sort(list_distinct(list(purpose))) AS purposes,
    list_sort(list_distinct(list(legal_basis))) AS legal_bases,
    list_sort(list_distinct(list(source))) AS sources,
    max(retention_days) AS retention_days,
    max(CASE WHEN ended_at IS NULL AND retention_days IS NOT NULL
             THEN retention_end(arrived_at, retention_days) END) AS retention_ends
FROM subject_holdings
GROUP BY category, holder
ORDER BY category, holder
