-- Policy check, consent clause: uses of a purpose that needs consent by the organisation's systems,
-- where the subject's latest consent for that purpose before the use is not GRANTED (none, or
-- withdrawn). Consent is matched on the subject id the events carry.
-- Parameters: $systems, $purposes.
WITH
    uses AS (
        SELECT event_id, subject_id, purpose, occurred_at
        FROM events
        WHERE scope = 'SUBJECT' AND event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED')
          AND list_contains($purposes, purpose)
          AND (list_contains($systems, holder_name) OR list_contains($systems, system))
    ),
    consents AS (
        SELECT subject_id, purpose, occurred_at, consent_status FROM events WHERE event_type = 'CONSENT'
    ),
    latest AS (
        SELECT u.event_id, u.purpose, u.occurred_at, arg_max(c.consent_status, c.occurred_at) AS status
        FROM uses AS u
        LEFT JOIN consents AS c
          ON c.subject_id = u.subject_id AND c.purpose = u.purpose AND c.occurred_at <= u.occurred_at
        GROUP BY u.event_id, u.purpose, u.occurred_at
    )
SELECT event_id, purpose FROM latest
WHERE status IS DISTINCT FROM 'GRANTED'
ORDER BY occurred_at, event_id
