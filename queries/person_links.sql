-- Identifier resolution: every link among the identifiers of one person, with when each was first
-- declared. The table is sorted by person key, so this reads the row groups of one person.
-- lineage first looks up the person key of the identifier asked about (queries/person_of.sql).
-- With every link known now, the identifiers are these links' ends; as known at a past time,
-- lineage follows only the links declared by then (the person then was part of the person now).
-- Parameters: $person (a person key), $files (the holdings files that may hold it; NULL: every file).
SELECT a, b, declared_at FROM links WHERE person = $person AND ($files IS NULL OR list_contains($files, data_file))
