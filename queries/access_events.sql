-- Access request: the subject's consent history and erasure events (ERASED, ANONYMISED or HOLD),
-- and what the events say of the subject (residence, age band).
-- Reads subject_events (subject_events.sql: the subject's events, each once).
-- Parameters: none (the subject and time are bound when subject_events is made).
SELECT
    occurred_at, event_type, subject_id, subject_jurisdiction, age_band, categories, purpose,
    consent_status, consent_kind, consent_ref, holder_name AS holder, erasure_outcome, hold_reason
FROM subject_events
ORDER BY occurred_at, event_id
