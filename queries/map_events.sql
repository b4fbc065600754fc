-- Where on the data map the events named in $ids sit: their flow's two ends.
-- Parameters: $ids (event ids).
SELECT event_id, src, src_region, dst, dst_region
FROM flow_events()
WHERE list_contains($ids, event_id)
