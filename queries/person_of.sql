-- The person key of an identifier (no row: the identifier is linked to no other).
-- Parameters: $id (one identifier), $files (the holdings files that may hold it; NULL: every file).
SELECT person FROM persons WHERE id = $id AND ($files IS NULL OR list_contains($files, data_file))
