-- Where a refresh of the holdings stops in each source partition so that no partition runs ahead of
-- the others in event time (lineage/ingest/holdings.py, HoldingsMaintainer.holdback). Partitions are
-- stored at different speeds; an event of a slower one, applied after a faster one's later events,
-- is a late event: the engine rolls back to its time and applies every event since again. So only
-- the new events (offset above the applied one of its partition) up to the low watermark are
-- applied: the earliest, over partitions with new events, of each one's latest new event time. Each
-- row names a partition holding new events later than it, and the first such offset (the bound: the
-- refresh applies its partition's offsets below it). Times as holdings_events.sql reads them ($floor).
-- Parameters: $origins, $partitions, $offsets (the applied offset of each partition, same order), $floor.
WITH applied AS (
    SELECT unnest($origins::VARCHAR[]) AS origin, unnest($partitions::INTEGER[]) AS kafka_partition,
           unnest($offsets::BIGINT[]) AS applied
), fresh AS (
    SELECT e.origin, e.kafka_partition, e.kafka_offset, greatest(e.occurred_at, coalesce($floor, e.occurred_at)) AS occurred
    FROM events AS e
    LEFT JOIN applied AS a USING (origin, kafka_partition)
    WHERE (e.event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED', 'ERASED') OR len(e.linked_subject_ids) > 0)
      AND (a.applied IS NULL OR e.kafka_offset > a.applied)
), low AS (
    SELECT min(latest) AS watermark FROM (SELECT max(occurred) AS latest FROM fresh GROUP BY origin, kafka_partition)
)
SELECT origin, kafka_partition, min(kafka_offset) AS bound
FROM fresh, low
WHERE fresh.occurred > low.watermark
GROUP BY origin, kafka_partition
