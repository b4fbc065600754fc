-- One subject's own events up to $as_of, in time order: their consents and erasures, what the
-- events say of them (residence, age band), and how each reached Kafka (its provenance headers).
-- One pass over the row groups holding the subject (the events are sorted by subject). An event
-- resent after an outage (delivery is at-least-once) is stored twice until compaction: both copies
-- come back, and lineage/answers/person.py keeps the first stored (`first_copies`, by kafka_offset,
-- then partition and origin: copies in two partitions may share an offset).
-- Done there, not by a window here: DuckDB turns the window into a second scan of the file (11 ms
-- against 6.6 ms a person at 1M subjects).
-- Parameters: $ids (every identifier of the subject), $as_of, $files (the event files that may hold
-- them: lineage.store.file_bounds; NULL: every file).
SELECT
    event_id, occurred_at, event_type, system, subject_id, subject_jurisdiction, age_band, categories,
    purpose, consent_status, consent_kind, consent_ref, holder_name AS holder, recipient_name,
    erasure_outcome, hold_reason, sent_via, sent_via_name, sent_via_run, kafka_offset, kafka_partition, origin
FROM events_by_file
WHERE scope = 'SUBJECT'
  AND occurred_at <= $as_of
  AND list_contains($ids, subject_id)
  AND ($files IS NULL OR list_contains($files, data_file))
ORDER BY occurred_at, event_id
