-- Access request: how each event that brought the subject's data to a holder (a bulk export that
-- carried it too) or that concerns the subject (consents, erasures) reached Kafka: its provenance
-- headers as stored (`sent_via`: sdk, gateway or openlineage; `sent_via_name`: the SDK's version,
-- the gateway token's name or the OpenLineage job; `sent_via_run`: the OpenLineage run id). NULL
-- where the producer sent none (events stored before provenance was recorded, a backfill).
-- Reads `subject_holdings` and `subject_events` (subject_holdings.sql, subject_events.sql).
-- Parameters: $as_of, $files (the event files that may hold bulk events; NULL: every file).
-- The subject's own events come from subject_events; one scan here finds the bulk events (no
-- subject, sorted first in every file: pruned by subject) that brought one of its holdings.
WITH found AS (
    SELECT event_id, kafka_offset, occurred_at, event_type, system, holder_name, recipient_name,
           sent_via, sent_via_name, sent_via_run
    FROM subject_events
    UNION ALL
    SELECT event_id, kafka_offset, occurred_at, event_type, system, holder_name, recipient_name,
           sent_via, sent_via_name, sent_via_run
    FROM events_by_file
    WHERE subject_id IS NULL AND occurred_at <= $as_of
      AND event_id IN (SELECT via FROM subject_holdings)
      AND ($files IS NULL OR list_contains($files, data_file))
)
SELECT
    occurred_at, event_id, event_type, system,
    coalesce(recipient_name, holder_name) AS holder,
    sent_via, sent_via_name, sent_via_run
FROM found
-- an event resent after an outage (delivery is at-least-once) is stored twice until compaction
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_offset) = 1
ORDER BY occurred_at, event_id
