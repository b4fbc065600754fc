-- Identifier resolution, forward: the links declared by the events of the subjects $ids.
-- lineage repeats links_from / links_to until no new identifier appears, keeping events up to the
-- request's as-of time (a recursive query was slower on a large store: DuckDB re-reads every link
-- for each step).
-- Parameters: $ids (list of identifiers).
SELECT linked_subject_ids AS ids, occurred_at
FROM events
WHERE list_contains($ids, subject_id) AND len(linked_subject_ids) > 0
