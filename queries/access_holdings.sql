-- Access request (GDPR Art. 15, PIPL Art. 45, CCPA 1798.110): what is held about a subject, per
-- data category and holder: since when, still held or erased, purposes, legal bases, sources,
-- retention and when it ends.
-- Parameters: $identifier (any identifier of the subject), $as_of (answer as the history stood then).
WITH
    ids AS (SELECT list(id) AS ids FROM identifiers($identifier, $as_of)),
    h AS (SELECT * FROM holdings((SELECT ids FROM ids), $as_of))
SELECT
    h.category,
    h.holder,
    any_value(CASE WHEN e.event_type = 'COLLECTED' THEN e.holder_role ELSE e.recipient_role END) AS holder_role,
    any_value(CASE WHEN e.event_type = 'COLLECTED' THEN e.holder_region ELSE e.recipient_region END) AS holder_region,
    min(h.arrived_at) AS since,
    bool_or(h.ended_at IS NULL) AS still_held,
    CASE WHEN bool_or(h.ended_at IS NULL) THEN NULL ELSE max(h.ended_at) END AS erased_at,
    list_sort(list_distinct(list(e.purpose))) AS purposes,
    list_sort(list_distinct(list(e.legal_basis))) AS legal_bases,
    list_sort(list_distinct(list(
        CASE WHEN e.event_type = 'COLLECTED' THEN coalesce(e.source, 'direct') ELSE e.holder_name END
    ))) AS sources,
    max(e.retention_days) AS retention_days,
    max(CASE WHEN h.ended_at IS NULL AND e.retention_days IS NOT NULL
             THEN h.arrived_at + to_days(e.retention_days) END) AS retention_ends,
    list_sort(list_distinct(list(h.subject))) AS identifiers
FROM h
JOIN events AS e ON e.event_id = h.via
GROUP BY h.category, h.holder
ORDER BY h.category, h.holder
