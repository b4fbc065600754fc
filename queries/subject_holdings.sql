-- One subject's holdings, computed once for the access-request queries that read them
-- (access_holdings.sql, access_recipients.sql). From the DuckDB CLI:
--   SET VARIABLE ids = ['user-42']; ... or bind $ids / $as_of when preparing.
-- Parameters: $ids (every identifier of the subject), $as_of, $buckets (the ids' holdings buckets),
-- $files (the holdings files of their runs and of the flows; NULL: every file).
CREATE OR REPLACE TEMP TABLE subject_holdings AS
SELECT * FROM holdings($ids, $as_of, buckets := $buckets, files := $files)
