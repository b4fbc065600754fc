-- Identifier resolution: every link among the identifiers of the person $id belongs to (one lookup
-- of its person key in the holdings), with when each was first declared. With every link known
-- now, the identifiers are these links' ends; as known at a past time, lineage follows only the
-- links declared by then (a subset of these: the person then was part of the person now).
-- Parameters: $id (one identifier).
SELECT a, b, declared_at
FROM links
WHERE a IN (SELECT id FROM persons WHERE person = (SELECT person FROM persons WHERE id = $id))
