-- Erasure plan (GDPR Art. 17 + 19, PIPL Art. 47, CCPA 1798.105): every holder, internal or outside,
-- that ever held the subject's data, what it still holds, and the status: done (nothing left),
-- on hold (everything still held is under a HOLD erasure event, a legal retention duty, with the
-- reason), or pending.
-- Parameters: $identifier, $as_of.
WITH
    ids AS (SELECT list(id) AS ids FROM identifiers($identifier, $as_of)),
    h AS (SELECT * FROM holdings((SELECT ids FROM ids), $as_of)),
    per_holder AS (
        SELECT
            h.holder,
            any_value(CASE WHEN e.event_type = 'COLLECTED' THEN e.holder_role ELSE e.recipient_role END) AS role,
            any_value(CASE WHEN e.event_type = 'COLLECTED' THEN e.holder_region ELSE e.recipient_region END) AS region,
            list_sort(list_distinct(list(h.category))) AS categories,
            list_sort(list_distinct(list(CASE WHEN h.ended_at IS NULL THEN h.category END))) AS still_held,
            max(h.ended_at) AS last_erased_at
        FROM h
        JOIN events AS e ON e.event_id = h.via
        GROUP BY h.holder
    ),
    holds AS (
        SELECT
            holder_name AS holder,
            string_agg(DISTINCT hold_reason, '; ') AS hold_reason,
            flatten(list(categories)) AS hold_categories
        FROM events
        WHERE event_type = 'ERASED' AND erasure_outcome = 'HOLD' AND scope = 'SUBJECT'
          AND occurred_at <= $as_of AND list_contains((SELECT ids FROM ids), subject_id)
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
