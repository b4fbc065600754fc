-- One subject's holdings: every arrival of their data at a holder up to $as_of (the `holdings`
-- macro), and when each still held is due for deletion under its declared retention. The access
-- report and the erasure plan group these few rows in Python (lineage/answers/person.py). From the
-- DuckDB CLI: SET VARIABLE ids = ['user-42']; ... or bind $ids / $as_of when preparing.
-- Parameters: $ids (every identifier of the subject), $as_of, $buckets (the ids' holdings buckets),
-- $files (the holdings files of their runs and of the flows; NULL: every file).
SELECT *,
       CASE WHEN ended_at IS NULL THEN retention_end(arrived_at, retention_days) END AS retention_ends
FROM holdings($ids, $as_of, buckets := $buckets, files := $files)
