-- Identifier resolution, backward: subjects whose events name $id as one of their identifiers.
-- Parameters: $id (one identifier).
SELECT subject_id AS id, occurred_at
FROM events
WHERE list_contains(linked_subject_ids, $id)
