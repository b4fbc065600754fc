-- Erasure plan (GDPR Art. 17 + 19, PIPL Art. 47, CCPA 1798.105): every holder, internal or outside,
-- that ever held the subject's data, what it still holds, and the status: done (nothing left),
-- on hold (everything still held is under a HOLD erasure event, a legal retention duty, with the
-- reason), or pending.
-- Parameters: $ids (every identifier of the subject), $as_of, $buckets (the ids' holdings buckets),
-- $files and $event_files (the holdings and event files that may hold them: lineage.store.file_bounds;
-- NULL: every file).
WITH
    per_holder AS (
        SELECT
            holder,
            any_value(holder_role) AS role,
            any_value(holder_region) AS region,
            list_sort(list_distinct(list(category))) AS categories,
            list_sort(list_distinct(list(CASE WHEN ended_at IS NULL THEN category END))) AS still_held,
            max(ended_at) AS last_erased_at
        FROM runs($as_of, files := $files)
        WHERE list_contains($ids, subject) AND list_contains($buckets, bucket)
        GROUP BY holder
    ),
    holds AS (
        SELECT
            holder_name AS holder,
            string_agg(DISTINCT hold_reason, '; ') AS hold_reason,
            flatten(list(categories)) AS hold_categories
        FROM events_by_file
        WHERE event_type = 'ERASED' AND erasure_outcome = 'HOLD' AND scope = 'SUBJECT'
          AND occurred_at <= $as_of AND list_contains($ids, subject_id)
          AND ($event_files IS NULL OR list_contains($event_files, data_file))
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
