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

-- When data that arrived at `arrived_at` and is kept `days` days is due (NULL when no period is
-- declared). The contract accepts up to 2^31-1 days, which ends far past the last timestamp
-- DuckDB (or Python) can hold: such a period is clamped to 9999-12-31 23:59:59.999999 UTC, which
-- the answers read as "never within any date we can show" (lineage.answers.rows.RETENTION_NEVER).
-- `least` caps the days before `to_days` too, so no row overflows whichever branch is evaluated.
CREATE OR REPLACE MACRO retention_end(arrived_at, days) AS
    CASE
        WHEN days IS NULL THEN NULL
        WHEN days >= datediff('day', arrived_at, TIMESTAMPTZ '9999-12-31 00:00:00+00')
            THEN TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'
        ELSE arrived_at + to_days(CAST(least(days, 3000000) AS INTEGER))
    END;

-- Erasures that end holdings (a HOLD does not: the data is still kept, only its processing stops).
-- Bulk events are found by `subject_id IS NULL` (the same rows as scope = 'BULK'): Parquet's null
-- counts let DuckDB skip every row group of subject-level events without reading it.
CREATE OR REPLACE MACRO bulk_erasures(as_of) AS TABLE
SELECT subject_id, holder_name AS holder, categories, occurred_at AS erased_at, scope, bulk_as_of
FROM events
WHERE subject_id IS NULL AND event_type = 'ERASED' AND erasure_outcome IN ('ERASED', 'ANONYMISED')
  AND occurred_at <= as_of;

CREATE OR REPLACE MACRO erasures(as_of) AS TABLE
SELECT subject_id, holder_name AS holder, categories, occurred_at AS erased_at, scope, bulk_as_of
FROM events
WHERE event_type = 'ERASED' AND erasure_outcome IN ('ERASED', 'ANONYMISED') AND occurred_at <= as_of;

-- Arrivals: (subject, category, holder, arrived_at, via) for the subjects in the list `subjects`
-- (NULL: every subject), from events up to `as_of`. With `holders` (a list), only arrivals that
-- start at those holders are followed: pass a set closed upstream under bulk flows (see
-- `upstream`) and the arrivals at those holders are exactly the unrestricted ones, for a fraction
-- of the work. With `nodes` and `keys` too, a direct arrival at a holder that is not one of
-- `nodes` is kept only if its category is under `keys` (every category a bulk flow toward the
-- nodes carries): nothing else can travel on to them.
--   * a subject-level COLLECTED puts each category at the holder;
--   * a subject-level SHARED or TRANSFERRED puts each category at the recipient;
--   * a BULK share or transfer from A to B (categories K, as of t, sent at t') puts at B, at t',
--     every (subject, category under K) that had arrived at A by t and was not erased at A
--     between its arrival and t. Hops chain: B's arrivals feed B's own bulk flows, and a hop only
--     carries what its source held at the time of the hop.
-- An erasure at holder H of (subject, categories K) at time x ends every arrival there of a
-- category under K that came at or before x (a bulk erasure: for every subject, of arrivals up to
-- its bulk_as_of).
CREATE OR REPLACE MACRO arrivals(subjects, as_of, holders := NULL, nodes := NULL, keys := NULL) AS TABLE
WITH RECURSIVE
    -- each arrival carries what the answers report of the event that brought it (`via`), so no
    -- answer joins back to the events: that join scanned every event for one subject
    direct_all AS (
        SELECT
            subject_id AS subject,
            unnest(categories) AS category,
            CASE WHEN event_type = 'COLLECTED' THEN holder_name ELSE recipient_name END AS holder,
            occurred_at AS arrived_at,
            event_id AS via,
            event_type AS via_type,
            false AS via_bulk,
            CASE WHEN event_type = 'COLLECTED' THEN holder_role ELSE recipient_role END AS holder_role,
            CASE WHEN event_type = 'COLLECTED' THEN holder_region ELSE recipient_region END AS holder_region,
            CASE WHEN event_type = 'COLLECTED' THEN coalesce(source, 'direct') ELSE holder_name END AS source,
            CASE WHEN event_type = 'COLLECTED' THEN NULL ELSE holder_region END AS source_region,
            purpose, legal_basis, mechanism, retention_days, encrypted
        FROM events
        WHERE occurred_at <= as_of
          AND scope = 'SUBJECT'
          AND event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED')
          AND (subjects IS NULL OR list_contains(subjects, subject_id))
          AND (holders IS NULL
               OR list_contains(holders, CASE WHEN event_type = 'COLLECTED' THEN holder_name ELSE recipient_name END))
    ),
    direct AS (SELECT * FROM direct_all WHERE nodes IS NULL OR list_contains(nodes, holder) OR covers(category, keys)),
    -- with `holders`, a bulk flow to a holder outside the set is not followed: what it carries can
    -- never come back to the set (if it could, that holder would be upstream too)
    bulk AS (
        SELECT *
        FROM events
        WHERE subject_id IS NULL AND occurred_at <= as_of AND event_type IN ('SHARED', 'TRANSFERRED')
          AND (holders IS NULL OR list_contains(holders, recipient_name))
    ),
    -- subject erasures join on (holder, subject), bulk ones are few: two equi-joins, not one
    -- join on an OR, which made DuckDB compare every arrival with every erasure at its holder
    er_subject AS (
        SELECT * FROM erasures(as_of)
        WHERE scope = 'SUBJECT' AND (subjects IS NULL OR list_contains(subjects, subject_id))
    ),
    er_bulk AS (SELECT * FROM bulk_erasures(as_of)),
    reached AS (
        SELECT * FROM direct
        UNION
        SELECT
            a.subject, a.category, b.recipient_name, b.occurred_at, b.event_id, b.event_type, true,
            b.recipient_role, b.recipient_region, b.holder_name, b.holder_region,
            b.purpose, b.legal_basis, b.mechanism, b.retention_days, b.encrypted
        FROM reached AS a
        JOIN bulk AS b
          ON b.holder_name = a.holder AND a.arrived_at <= b.bulk_as_of AND covers(a.category, b.categories)
        LEFT JOIN er_subject AS xs
          ON xs.holder = a.holder AND xs.subject_id = a.subject
         AND covers(a.category, xs.categories) AND xs.erased_at >= a.arrived_at AND xs.erased_at <= b.bulk_as_of
        LEFT JOIN er_bulk AS xb
          ON xb.holder = a.holder AND a.arrived_at <= xb.bulk_as_of
         AND covers(a.category, xb.categories) AND xb.erased_at >= a.arrived_at AND xb.erased_at <= b.bulk_as_of
        WHERE xs.holder IS NULL AND xb.holder IS NULL
    )
SELECT * FROM reached;

-- Holdings: each arrival with the time an erasure ended it (NULL: still held as of `as_of`).
CREATE OR REPLACE MACRO holdings(subjects, as_of, holders := NULL, nodes := NULL, keys := NULL) AS TABLE
WITH
    a AS (SELECT * FROM arrivals(subjects, as_of, holders := holders, nodes := nodes, keys := keys)),
    ended_by_subject AS (
        SELECT a.via, a.subject, a.category, a.holder, a.arrived_at, min(x.erased_at) AS at
        FROM a
        JOIN (
            SELECT * FROM erasures(as_of)
            WHERE scope = 'SUBJECT' AND (subjects IS NULL OR list_contains(subjects, subject_id))
        ) AS x
          ON x.holder = a.holder AND x.subject_id = a.subject
         AND covers(a.category, x.categories) AND x.erased_at >= a.arrived_at
        GROUP BY ALL
    ),
    ended_by_bulk AS (
        SELECT a.via, a.subject, a.category, a.holder, a.arrived_at, min(x.erased_at) AS at
        FROM a
        JOIN bulk_erasures(as_of) AS x
          ON x.holder = a.holder AND a.arrived_at <= x.bulk_as_of
         AND covers(a.category, x.categories) AND x.erased_at >= a.arrived_at
        GROUP BY ALL
    )
SELECT a.*, least(s.at, b.at) AS ended_at
FROM a
LEFT JOIN ended_by_subject AS s USING (via, subject, category, holder, arrived_at)
LEFT JOIN ended_by_bulk AS b USING (via, subject, category, holder, arrived_at);

-- The holders `nodes` and every holder whose bulk flows (sent by `as_of`) reach them, over any
-- number of hops: where data must have been for a breach of `nodes` to expose it.
CREATE OR REPLACE MACRO upstream(nodes, as_of) AS TABLE
WITH RECURSIVE up(holder, keys) AS (
    SELECT unnest(nodes), []::VARCHAR[]
    UNION
    SELECT e.holder_name, e.categories
    FROM up
    JOIN events AS e
      ON e.recipient_name = up.holder AND e.subject_id IS NULL AND e.event_type IN ('SHARED', 'TRANSFERRED')
     AND e.occurred_at <= as_of
)
SELECT holder, keys FROM up;

-- What arrived at / is held by the holders `targets` only, computed by traversing just the holders
-- upstream of them, and at those only the categories a bulk flow toward them carries: the same
-- rows as filtering the unrestricted macros, for a fraction of the work.
CREATE OR REPLACE MACRO arrivals_at(targets, as_of) AS TABLE
SELECT * FROM arrivals(
    NULL, as_of,
    holders := (SELECT coalesce(list(DISTINCT holder), []::VARCHAR[]) FROM upstream(targets, as_of)),
    nodes := targets,
    keys := (SELECT coalesce(list_distinct(flatten(list(keys))), []::VARCHAR[]) FROM upstream(targets, as_of))
)
WHERE list_contains(targets, holder);

CREATE OR REPLACE MACRO holdings_at(targets, as_of) AS TABLE
SELECT * FROM holdings(
    NULL, as_of,
    holders := (SELECT coalesce(list(DISTINCT holder), []::VARCHAR[]) FROM upstream(targets, as_of)),
    nodes := targets,
    keys := (SELECT coalesce(list_distinct(flatten(list(keys))), []::VARCHAR[]) FROM upstream(targets, as_of))
)
WHERE list_contains(targets, holder);

-- Every collection, share and transfer as a flow between two holders, with the region at each end.
-- COLLECTED: its source ('data subjects' when collected directly; no region) -> the holder.
CREATE OR REPLACE MACRO flow_events() AS TABLE
SELECT
    event_id, event_type, scope, subject_id, occurred_at, categories, mechanism,
    CASE WHEN event_type = 'COLLECTED' THEN coalesce(nullif(source, 'direct'), 'data subjects')
         ELSE holder_name END AS src,
    CASE WHEN event_type = 'COLLECTED' THEN NULL ELSE holder_region END AS src_region,
    CASE WHEN event_type = 'COLLECTED' THEN NULL ELSE holder_role END AS src_role,
    CASE WHEN event_type = 'COLLECTED' THEN holder_name ELSE recipient_name END AS dst,
    CASE WHEN event_type = 'COLLECTED' THEN holder_region ELSE recipient_region END AS dst_region,
    CASE WHEN event_type = 'COLLECTED' THEN holder_role ELSE recipient_role END AS dst_role
FROM events
WHERE event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED');
