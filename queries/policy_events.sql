-- Policy check: the events of the organisation's systems that may break a per-event clause. A
-- prefilter: lineage/answers/policy_check.py decides each clause on these rows; the WHERE only spares Python the
-- rows that break nothing (most of them). It relies on validation: regions, roles and names are
-- never NULL in the store (a NULL would make a condition NULL and drop the row). Categories another
-- writer left NULL read as none.
-- Parameters: $systems (the organisation's own system names); per clause, NULL when the policy has
-- none: $storage (regions), $transfer (regions), $recipients (names); $never_keys and $never_roles
-- (every never_share category key and role); $bands (age bands under the minimum age).
SELECT event_id, event_type, occurred_at, holder_name, holder_region, recipient_name, recipient_role,
       recipient_region, coalesce(categories, []) AS categories, age_band
FROM events
WHERE (list_contains($systems, holder_name) OR list_contains($systems, system))
  AND (
      (event_type = 'COLLECTED' AND NOT list_contains(coalesce($storage, [holder_region]), holder_region))
      OR (event_type IN ('SHARED', 'TRANSFERRED') AND NOT list_contains($systems, recipient_name) AND (
          NOT list_contains(coalesce($transfer, [recipient_region]), recipient_region)
          OR NOT list_contains(coalesce($recipients, [recipient_name]), recipient_name)
          OR (list_contains($never_roles, recipient_role)
              AND list_bool_or(list_transform(categories, lambda c: covers(c, $never_keys))))
      ))
      OR list_contains($bands, age_band)
  )
ORDER BY occurred_at, event_id
