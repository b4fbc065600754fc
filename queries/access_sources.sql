-- Access request: the bulk events (a nightly export, no subject) that brought one of the subject's
-- holdings, with how each reached Kafka: its provenance headers as stored (`sent_via`: sdk, gateway
-- or openlineage; `sent_via_name`: the SDK's version, the gateway token's name or the OpenLineage
-- job; `sent_via_run`: the OpenLineage run id). NULL where the producer sent none (events stored
-- before provenance was recorded, a backfill). The subject's own events come with theirs from
-- subject_events.sql; lineage/answers/access.py lists both.
-- Parameters: $as_of, $vias (the `via` of each of the subject's holdings), $files (the event files
-- that may hold bulk events; NULL: every file). Bulk events sort first in every file: pruned by subject.
SELECT
    occurred_at, event_id, event_type, system,
    coalesce(recipient_name, holder_name) AS holder,
    sent_via, sent_via_name, sent_via_run
FROM events_by_file
WHERE subject_id IS NULL AND occurred_at <= $as_of
  AND list_contains($vias, event_id)
  AND ($files IS NULL OR list_contains($files, data_file))
-- an event resent after an outage (delivery is at-least-once) is stored twice until compaction
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_offset) = 1
