-- Building blocks of the answers, as DuckDB macros over the `events` view.
-- lineage loads this file into every connection (Store.connect); in the DuckDB CLI, `.read` it
-- after creating the `events` view (docs/reference.md, "SQL").
-- Parameters: none (each macro takes its own arguments).

-- Does data category `category` fall under one of the selection keys `keys`?
-- Keys are fideslang dotted keys; a key covers itself and everything below it
-- ('user.contact' covers 'user.contact.email'). The same rule as lineage.contract.rules.covers.
CREATE OR REPLACE MACRO covers(category, keys) AS
    list_bool_or(list_transform(keys, lambda k: category = k OR starts_with(category, k || '.')));

-- Does data moving between two transfer zones cross a border? (CN to HK does; CN to CN does not.)
-- Zones come from the `regions(code, zone)` table the store builds from the taxonomy.
-- The same rule as lineage.contract.rules.crosses_border.
CREATE OR REPLACE MACRO crosses_border(from_zone, to_zone) AS from_zone <> to_zone;

-- The UTC day of a time, in days since 1970-01-01 (floored: a time before 1970 is in a negative day).
-- Days are counted on the epoch, not through the time zone calendar: it is UTC, where every day has
-- 86,400 s, and calendar arithmetic costs ~0.6 µs a row (4 of the retention register's 6 s at 1M).
CREATE OR REPLACE MACRO utc_day(t) AS
    epoch_us(t) // 86400000000 - CASE WHEN epoch_us(t) % 86400000000 < 0 THEN 1 ELSE 0 END;

-- When data that arrived at `arrived_at` and is kept `days` days is due (NULL when no period is
-- declared). The contract accepts up to 2^31-1 days, which ends far past the last timestamp
-- DuckDB (or Python) can hold: such a period is clamped to 9999-12-31 23:59:59.999999 UTC, which
-- the answers read as "never within any date we can show" (lineage.answers.rows.RETENTION_NEVER).
-- `least` caps the days before they are multiplied too, so no row overflows whichever branch is evaluated;
-- the cap (100,000,000 days, year ~275,000 from 1970) lies past every period the ELSE branch is taken for,
-- whatever the arrival (3,000,000 did not: an arrival before ~1786 kept 3.0M-3.65M days got a too early end).
CREATE OR REPLACE MACRO retention_end(arrived_at, days) AS
    CASE
        WHEN days IS NULL THEN NULL
        WHEN days >= 2932896 - utc_day(arrived_at)  -- 2932896: 9999-12-31, in days since 1970-01-01
            THEN TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'
        ELSE make_timestamptz(epoch_us(arrived_at) + CAST(least(days, 100000000) AS BIGINT) * 86400000000)
    END;

-- The holdings (lineage/holdings computes them as events arrive; lineage.store.holdings keeps them
-- as the table `holdings_all`, of five kinds of rows: run, flow, link, person, reset). A run is a (subject, category) at a holder from
-- its first arrival `arrived_at` until `ended_at` (NULL: still held); a bulk run was brought by events
-- `first_seq` .. `last_seq` of its flow (NULL: every event of the flow since), one per re-export.
-- `data_file` (in these four views): the path of the row's data file (NULL when computed in
-- memory). A lookup that binds `$files` (lineage.store.file_bounds: the files whose footers admit
-- the person) reads those files alone; NULL reads every file.
-- A refresh that makes a subject's runs again adds them with a `reset` row of the subject (the view
-- `holding_resets`): each run written before it (a lower `gen`, NULL: 0) no longer holds. The same
-- rule as lineage.store.holdings.current_rows. Only `holding_runs` applies it: `holdings_all_by_file`
-- still shows the runs a reset drops. An ANTI JOIN, not NOT EXISTS: DuckDB pushes a
-- lookup's filters (subject, data_file) through it into the scan, where through NOT EXISTS it read
-- every run (80 ms a person at 1,000 subjects an organisation, against 6 ms).
CREATE OR REPLACE VIEW holding_runs AS
SELECT subject, category, holder, arrived_at, via, flow, first_seq, last_seq, ended_at, ended_by,
       via_type, via_bulk, holder_role, holder_region, source, source_region, purpose, legal_basis,
       mechanism, retention_days, encrypted, bucket, data_file
FROM holdings_all_by_file AS h
ANTI JOIN holding_resets AS x ON x.subject = h.subject AND x.gen > coalesce(h.gen, 0)
WHERE h.kind = 'run';

-- Each event of each bulk flow: its number in the flow, when it was sent, and its id.
CREATE OR REPLACE VIEW flow_seq AS
SELECT flow, first_seq AS seq, arrived_at AS sent_at, via AS event_id, bulk_as_of, data_file
FROM holdings_all_by_file WHERE kind = 'flow';

-- Identifier links (first declared at `declared_at`), and each linked identifier's person key.
CREATE OR REPLACE VIEW links AS
SELECT subject AS person, via AS a, other AS b, arrived_at AS declared_at, data_file
FROM holdings_all_by_file WHERE kind = 'link';
CREATE OR REPLACE VIEW persons AS
SELECT subject AS id, other AS person, data_file FROM holdings_all_by_file WHERE kind = 'person';

-- The runs as of `as_of`: those begun by then, ended only by an erasure by then. A run's first
-- arrival is its earliest, and all its arrivals end together, so "since when", "still held" and
-- "erased when" need no re-export: what breach, retention and transfers read (cost: the answer).
-- `files` (optional): the only data files to read (see `data_file` above).
CREATE OR REPLACE MACRO runs(as_of, files := NULL) AS TABLE
SELECT * EXCLUDE (ended_at, ended_by, data_file),
       CASE WHEN ended_at <= as_of THEN ended_at END AS ended_at,
       CASE WHEN ended_at <= as_of THEN ended_by END AS ended_by
FROM holding_runs
WHERE arrived_at <= as_of AND (files IS NULL OR list_contains(files, data_file));

-- Every arrival of the subjects in the list `subjects` (NULL: every subject) up to `as_of`, one row
-- per event that brought a category to a holder (a run expanded over its flow's events), with the
-- time an erasure ended it (NULL: still held as of `as_of`). Columns as the answers report them:
-- the event that brought it (`via`, `via_type`, `via_bulk`) and its terms.
-- `buckets` (optional): the holdings buckets of those subjects (lineage.store.holdings.bucket_of).
-- Every bucket spans the whole range of subjects, so only it lets a lookup skip the other buckets'
-- files; without it each bucket's file is read (one row group each).
-- `files` (optional): the only data files to read, those of the subjects' runs and the flows' (see
-- `data_file` above).
CREATE OR REPLACE MACRO holdings(subjects, as_of, buckets := NULL, files := NULL) AS TABLE
SELECT
    r.subject, r.category, r.holder,
    coalesce(f.sent_at, r.arrived_at) AS arrived_at,
    coalesce(f.event_id, r.via) AS via,
    r.via_type, r.via_bulk, r.holder_role, r.holder_region, r.source, r.source_region,
    r.purpose, r.legal_basis, r.mechanism, r.retention_days, r.encrypted, r.ended_at
FROM runs(as_of, files := files) AS r
LEFT JOIN (SELECT * FROM flow_seq WHERE files IS NULL OR list_contains(files, data_file)) AS f
  ON f.flow = r.flow AND f.seq >= r.first_seq AND f.seq <= coalesce(r.last_seq, 2147483647) AND f.sent_at <= as_of
WHERE (subjects IS NULL OR list_contains(subjects, r.subject)) AND (buckets IS NULL OR list_contains(buckets, r.bucket));

-- Every collection, share and transfer as a flow between two holders, with the region at each end,
-- and what the record of processing reads of the event (purpose, legal basis, retention declared).
-- COLLECTED: its source ('data subjects' when collected directly; no region) -> the holder.
CREATE OR REPLACE MACRO flow_events() AS TABLE
SELECT
    event_id, event_type, scope, subject_id, occurred_at, categories, mechanism,
    purpose, legal_basis, retention_days,
    CASE WHEN event_type = 'COLLECTED' THEN coalesce(nullif(source, 'direct'), 'data subjects')
         ELSE holder_name END AS src,
    CASE WHEN event_type = 'COLLECTED' THEN NULL ELSE holder_region END AS src_region,
    CASE WHEN event_type = 'COLLECTED' THEN NULL ELSE holder_role END AS src_role,
    CASE WHEN event_type = 'COLLECTED' THEN holder_name ELSE recipient_name END AS dst,
    CASE WHEN event_type = 'COLLECTED' THEN holder_region ELSE recipient_region END AS dst_region,
    CASE WHEN event_type = 'COLLECTED' THEN holder_role ELSE recipient_role END AS dst_role
FROM events
WHERE event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED');
