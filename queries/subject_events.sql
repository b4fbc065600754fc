-- One subject's own events up to $as_of, in time order: their consents and erasures, what the
-- events say of them (residence, age band), and how each reached Kafka (its provenance headers).
-- One pass over the row groups holding the subject (the events are sorted by subject).
-- Parameters: $ids (every identifier of the subject), $as_of, $files (the event files that may hold
-- them: lineage.store.file_bounds; NULL: every file).
SELECT
    event_id, occurred_at, event_type, system, subject_id, subject_jurisdiction, age_band, categories,
    purpose, consent_status, consent_kind, consent_ref, holder_name AS holder, recipient_name,
    erasure_outcome, hold_reason, sent_via, sent_via_name, sent_via_run
FROM events_by_file
WHERE scope = 'SUBJECT'
  AND occurred_at <= $as_of
  AND list_contains($ids, subject_id)
  AND ($files IS NULL OR list_contains($files, data_file))
-- an event resent after an outage (delivery is at-least-once) is stored twice until compaction
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_offset) = 1
ORDER BY occurred_at, event_id
