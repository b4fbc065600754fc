-- Policy check: the events of the organisation's systems that per-event clauses look at.
-- Parameters: $systems (the organisation's own system names).
SELECT event_id, event_type, occurred_at, holder_name, holder_region, recipient_name, recipient_role,
       recipient_region, categories, age_band
FROM events
WHERE list_contains($systems, holder_name) OR list_contains($systems, system)
ORDER BY occurred_at, event_id
