-- Where a refresh of the holdings stops in each source partition so that no partition runs ahead of
-- the others in event time (lineage/ingest/holdings.py, HoldingsMaintainer.holdback). Partitions are
-- stored at different speeds; an event of a slower one, applied after a faster one's later events,
-- is a late event: the engine rolls back to its time and applies every event since again. So only
-- the new events (offset above the applied one of its partition) before the low watermark are
-- applied: the earliest, over partitions with new events, of each one's latest new event time.
-- Those at the watermark wait too: many events share a time (four in five in the seed world), and
-- one at the engine's watermark is late. But the new events up to the $through offsets (what an
-- earlier refresh held back) are applied whatever the watermark: when the latest of them is at or
-- past it, only the events after that time wait. Each row names a partition holding new events that
-- wait, and the first such offset (the bound: the refresh applies its partition's offsets below it).
-- With new events in one partition alone there is nothing to wait for: no row. Times as
-- holdings_events.sql reads them ($floor).
-- Parameters: $origins, $partitions, $offsets (the applied offset of each partition, same order),
-- $through_origins, $through_partitions, $through_offsets (likewise), $floor, $files (as in
-- holdings_events.sql).
WITH applied AS (
    SELECT unnest($origins::VARCHAR[]) AS origin, unnest($partitions::INTEGER[]) AS kafka_partition,
           unnest($offsets::BIGINT[]) AS applied
), through AS (
    SELECT unnest($through_origins::VARCHAR[]) AS origin, unnest($through_partitions::INTEGER[]) AS kafka_partition,
           unnest($through_offsets::BIGINT[]) AS through
), fresh AS (
    SELECT e.origin, e.kafka_partition, e.kafka_offset,
           greatest(e.occurred_at, coalesce($floor, e.occurred_at)) AS occurred, e.kafka_offset <= t.through AS due
    FROM events_by_file AS e
    LEFT JOIN applied AS a USING (origin, kafka_partition)
    LEFT JOIN through AS t USING (origin, kafka_partition)
    WHERE (e.event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED', 'ERASED') OR len(e.linked_subject_ids) > 0)
      AND (a.applied IS NULL OR e.kafka_offset > a.applied)
      AND ($files IS NULL OR list_contains($files::VARCHAR[], e.data_file))
), low AS (
    SELECT CASE WHEN count(*) > 1 THEN min(latest) END AS watermark, max(latest_due) AS due
    FROM (
        SELECT max(occurred) AS latest, max(occurred) FILTER (WHERE due) AS latest_due
        FROM fresh GROUP BY origin, kafka_partition
    )
)
SELECT origin, kafka_partition, min(kafka_offset) AS bound
FROM fresh, low
WHERE CASE WHEN low.due >= low.watermark THEN fresh.occurred > low.due ELSE fresh.occurred >= low.watermark END
GROUP BY origin, kafka_partition
