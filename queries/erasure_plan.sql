-- Erasure plan (GDPR Art. 17 + 19, PIPL Art. 47, CCPA 1798.105): every holder, internal or outside,
-- that ever held the subject's data, what it still holds, and the status: done (nothing left),
-- on hold (everything still held is under a HOLD erasure event, a legal retention duty, with the
-- reason), or pending.
-- Reads `subject_holdings` and `subject_events` (subject_holdings.sql, subject_events.sql), as the
-- access request does: a person page asks for both answers and reads the person's files once.
-- A holding's arrivals all end together, so its runs' categories and ends are those of its rows.
-- Parameters: none (the subject and time are bound when those two are made).
WITH
    per_holder AS (
        SELECT
            holder,
            first_arrived(holder_role, arrived_at) AS role,
            first_arrived(holder_region, arrived_at) AS region,
            list_sort(list_distinct(list(category))) AS categories,
            list_sort(list_distinct(list(CASE WHEN ended_at IS NULL THEN category END))) AS still_held,
            max(ended_at) AS last_erased_at
        FROM subject_holdings
        GROUP BY holder
    ),
    holds AS (
        SELECT
            holder_name AS holder,
            string_agg(DISTINCT hold_reason, '; ') AS hold_reason,
            flatten(list(categories)) AS hold_categories
        FROM subject_events
        WHERE event_type = 'ERASED' AND erasure_outcome = 'HOLD'
        GROUP BY holder_name
    )
SELECT
    p.holder, p.role, p.region, p.categories, p.still_held, p.last_erased_at,
    CASE
        WHEN len(p.still_held) = 0 THEN 'done'
        WHEN on_hold THEN 'on hold'
        ELSE 'pending'
    END AS status,
    CASE WHEN len(p.still_held) > 0 AND on_hold THEN holds.hold_reason END AS hold_reason
FROM per_holder AS p
LEFT JOIN holds USING (holder),
LATERAL (
    SELECT coalesce(
        holds.holder IS NOT NULL
        AND list_bool_and(list_transform(p.still_held, lambda c: covers(c, holds.hold_categories))),
        false
    ) AS on_hold
)
ORDER BY p.holder
