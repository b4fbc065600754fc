-- Access request: the subject's consent history and erasure events (ERASED, ANONYMISED or HOLD),
-- and what the events say of the subject (residence, age band).
-- Parameters: $ids, $as_of.
SELECT
    occurred_at, event_type, subject_id, subject_jurisdiction, age_band, categories, purpose,
    consent_status, consent_kind, consent_ref, holder_name AS holder, erasure_outcome, hold_reason
FROM events
WHERE scope = 'SUBJECT'
  AND occurred_at <= $as_of
  AND list_contains($ids, subject_id)
-- an event resent after an outage (delivery is at-least-once) is stored twice until compaction
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_offset) = 1
ORDER BY occurred_at, event_id
