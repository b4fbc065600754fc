-- Access request: every party the subject's data was disclosed or transferred to (subject-level
-- or in a bulk export that carried it), with the recipient's role, country and mechanism.
-- Reads `subject_holdings` (queries/subject_holdings.sql).
-- Parameters: none (the subject and time are bound when subject_holdings is made).
SELECT
    holder AS recipient,
    first_arrived(holder_role, arrived_at) AS recipient_role,
    first_arrived(holder_region, arrived_at) AS recipient_region,
    source AS sender,
    first_arrived(source_region, arrived_at) AS sender_region,
    list_sort(list_distinct(list(category))) AS categories,
    list_sort(list_distinct(list(purpose))) AS purposes,
    list_sort(list_distinct(list(mechanism))) AS mechanisms,
    list_sort(list_distinct(list(via_type))) AS event_types,
    bool_or(via_bulk) AS in_bulk_export,
    min(arrived_at) AS first_at,
    max(arrived_at) AS last_at
FROM subject_holdings
WHERE via_type IN ('SHARED', 'TRANSFERRED')
GROUP BY holder, source
ORDER BY first_at, recipient, sender  -- sender: two senders to one recipient at one instant
