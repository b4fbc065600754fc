-- The data map's edges: one row per (from holder, its region, to holder, its region).
-- Parameters: none.
SELECT
    src, src_region, any_value(src_role) AS src_role,
    dst, dst_region, any_value(dst_role) AS dst_role,
    count(*) AS events,
    count(DISTINCT subject_id) AS subjects,
    count(*) FILTER (WHERE scope = 'BULK') AS bulk_events,
    min(occurred_at) AS first_seen,
    max(occurred_at) AS last_seen,
    list_sort(list_distinct(flatten(list(categories)))) AS categories,
    list_sort(list_distinct(list(mechanism))) AS mechanisms
FROM flow_events()
GROUP BY src, src_region, dst, dst_region
ORDER BY src, src_region, dst, dst_region
