-- Flow edges of the lineage graph, one row per (from, to) pair of holders.
-- COLLECTED: the source ('data subjects' when collected directly) -> the holder.
-- SHARED / TRANSFERRED: the holder -> the recipient; bulk flows are counted in bulk_events.
-- Usable from the DuckDB CLI once an `events` view exists and _macros.sql is read (see README).
-- Parameters: none.
SELECT
    src,
    dst,
    count(*) AS events,
    count(DISTINCT subject_id) AS subjects,
    count(*) FILTER (WHERE scope = 'BULK') AS bulk_events,
    min(occurred_at) AS first_seen,
    max(occurred_at) AS last_seen,
    list_sort(list_distinct(flatten(list(categories)))) AS categories,
    list_sort(list_distinct(list(mechanism))) AS mechanisms,
    list_sort(list_distinct(list(event_type))) AS event_types,
    list_sort(list_distinct(list(src_region))) AS src_regions,
    list_sort(list_distinct(list(dst_region))) AS dst_regions,
    list_distinct(list(CASE WHEN src_region IS NOT NULL THEN src_region || '>' || dst_region END)) AS region_pairs,
    any_value(src_role) AS src_role,
    any_value(dst_role) AS dst_role
FROM flow_events()
GROUP BY src, dst
ORDER BY src, dst
