-- The events the holdings engine reads (lineage/holdings), times as microseconds: collections,
-- shares, transfers, erasures, and any event declaring identifier links. Either the events not yet
-- applied (offset above the applied one of its partition; $since NULL), or every event from $since
-- on (replaying after a late event).
-- After store retention ($floor: its cut-off) an event older than the cut-off can only be a late one
-- (stored after retain ran): it counts as occurring at the cut-off, so it is applied whatever the
-- holdings' watermark, and never rolls back into the retired past the holdings alone keep; its own
-- time is clamped_from (NULL for every other event): a copy of an event applied before the cut-off
-- must change nothing, and an erasure must not end what arrived after it.
-- The columns are in the order of lineage.holdings.Event's fields (rows become events as tuples); a list
-- another writer left NULL reads as empty, as lineage.holdings.event_from_row reads it.
-- Either way, an event at or past its partition's bound is left out (held back: holdings_holdback.sql).
-- Parameters: $origins, $partitions, $offsets (the applied offset of each partition, same order), $since,
-- $floor (NULL: no retention ran), $held_origins, $held_partitions, $bounds (a partition's first offset
-- held back, same order; a partition not named has none), $files (the event files that may hold new
-- events, lineage.store.file_bounds.files_after; NULL: every file).
WITH applied AS (
    SELECT unnest($origins::VARCHAR[]) AS origin, unnest($partitions::INTEGER[]) AS kafka_partition,
           unnest($offsets::BIGINT[]) AS applied
), held AS (
    SELECT unnest($held_origins::VARCHAR[]) AS origin, unnest($held_partitions::INTEGER[]) AS kafka_partition,
           unnest($bounds::BIGINT[]) AS bound
), e AS (
    SELECT * REPLACE (greatest(occurred_at, coalesce($floor, occurred_at)) AS occurred_at),
           CASE WHEN occurred_at < $floor THEN epoch_us(occurred_at) END AS clamped_from
    FROM events_by_file
    WHERE $files IS NULL OR list_contains($files::VARCHAR[], data_file)
)
SELECT
    e.event_id, e.event_type, epoch_us(e.occurred_at) AS occurred_at, e.scope, e.subject_id,
    coalesce(e.linked_subject_ids, []) AS linked_subject_ids, coalesce(e.categories, []) AS categories,
    e.holder_name, e.holder_role, e.holder_region, e.recipient_name, e.recipient_role, e.recipient_region,
    e.purpose, e.legal_basis, e.mechanism, e.retention_days, e.encrypted, e.source,
    epoch_us(e.bulk_as_of) AS bulk_as_of, e.erasure_outcome, e.clamped_from
FROM e
LEFT JOIN applied AS a USING (origin, kafka_partition)
LEFT JOIN held AS h USING (origin, kafka_partition)
WHERE (e.event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED', 'ERASED') OR len(e.linked_subject_ids) > 0)
  AND CASE WHEN $since IS NULL THEN a.applied IS NULL OR e.kafka_offset > a.applied
           ELSE e.occurred_at >= $since END
  AND (h.bound IS NULL OR e.kafka_offset < h.bound)
ORDER BY e.occurred_at, CASE WHEN e.event_type = 'ERASED' THEN 1 WHEN e.scope = 'BULK' THEN 2 ELSE 0 END,
         coalesce(epoch_us(e.bulk_as_of), 0), e.event_id
