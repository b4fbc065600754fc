-- Access request: every party the subject's data was disclosed or transferred to (subject-level
-- or in a bulk export that carried it), with the recipient's role, country and mechanism.
-- Parameters: $identifier, $as_of.
WITH
    ids AS (SELECT list(id) AS ids FROM identifiers($identifier, $as_of)),
    h AS (SELECT * FROM holdings((SELECT ids FROM ids), $as_of))
SELECT
    e.recipient_name AS recipient,
    any_value(e.recipient_role) AS recipient_role,
    any_value(e.recipient_region) AS recipient_region,
    e.holder_name AS sender,
    any_value(e.holder_region) AS sender_region,
    list_sort(list_distinct(list(h.category))) AS categories,
    list_sort(list_distinct(list(e.purpose))) AS purposes,
    list_sort(list_distinct(list(e.mechanism))) AS mechanisms,
    list_sort(list_distinct(list(e.event_type))) AS event_types,
    bool_or(e.scope = 'BULK') AS in_bulk_export,
    min(e.occurred_at) AS first_at,
    max(e.occurred_at) AS last_at
FROM h
JOIN events AS e ON e.event_id = h.via AND e.event_type IN ('SHARED', 'TRANSFERRED')
GROUP BY e.recipient_name, e.holder_name
ORDER BY first_at, recipient
