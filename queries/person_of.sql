-- The person key of an identifier (no row: the identifier is linked to no other).
-- Parameters: $id (one identifier).
SELECT person FROM persons WHERE id = $id
