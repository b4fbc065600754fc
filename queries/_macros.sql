-- Building blocks of the answers, as DuckDB macros over the `events` view.
-- lineage loads this file into every connection (Store.connect); in the DuckDB CLI, `.read` it
-- after creating the `events` view (README: "Querying from the DuckDB CLI").

-- Does data category `category` fall under one of the selection keys `keys`?
-- Keys are fideslang dotted keys; a key covers itself and everything below it
-- ('user.contact' covers 'user.contact.email').
CREATE OR REPLACE MACRO covers(category, keys) AS
    list_bool_or(list_transform(keys, lambda k: category = k OR starts_with(category, k || '.')));

-- Every identifier of the subject known as `identifier`, following the links events declared
-- (subject_id <-> linked_subject_ids) up to `as_of`, transitively.
CREATE OR REPLACE MACRO identifiers(identifier, as_of) AS TABLE
WITH RECURSIVE
    links AS (
        SELECT subject_id AS a, unnest(linked_subject_ids) AS b
        FROM events
        WHERE scope = 'SUBJECT' AND len(linked_subject_ids) > 0 AND occurred_at <= as_of
    ),
    edges AS (SELECT a, b FROM links UNION SELECT b, a FROM links),
    ids(id) AS (
        SELECT identifier
        UNION
        SELECT edges.b FROM ids JOIN edges ON edges.a = ids.id
    )
SELECT id FROM ids;

-- Erasures that end holdings (a HOLD does not: the data is still kept, only its processing stops).
CREATE OR REPLACE MACRO erasures(as_of) AS TABLE
SELECT subject_id, holder_name AS holder, categories, occurred_at AS erased_at, scope, bulk_as_of
FROM events
WHERE event_type = 'ERASED' AND erasure_outcome IN ('ERASED', 'ANONYMISED') AND occurred_at <= as_of;

-- Arrivals: (subject, category, holder, arrived_at, via) for the subjects in the list `subjects`
-- (NULL: every subject), from events up to `as_of`. With `holders` (a list), only arrivals that
-- start at those holders are followed: pass a set closed upstream under bulk flows (see
-- `upstream`) and the arrivals at those holders are exactly the unrestricted ones, for a fraction
-- of the work.
--   * a subject-level COLLECTED puts each category at the holder;
--   * a subject-level SHARED or TRANSFERRED puts each category at the recipient;
--   * a BULK share or transfer from A to B (categories K, as of t, sent at t') puts at B, at t',
--     every (subject, category under K) that had arrived at A by t and was not erased at A
--     between its arrival and t. Hops chain: B's arrivals feed B's own bulk flows, and a hop only
--     carries what its source held at the time of the hop.
-- An erasure at holder H of (subject, categories K) at time x ends every arrival there of a
-- category under K that came at or before x (a bulk erasure: for every subject, of arrivals up to
-- its bulk_as_of).
CREATE OR REPLACE MACRO arrivals(subjects, as_of, holders := NULL) AS TABLE
WITH RECURSIVE
    ev AS (SELECT * FROM events WHERE occurred_at <= as_of),
    direct AS (
        SELECT
            subject_id AS subject,
            unnest(categories) AS category,
            CASE WHEN event_type = 'COLLECTED' THEN holder_name ELSE recipient_name END AS holder,
            occurred_at AS arrived_at,
            event_id AS via
        FROM ev
        WHERE scope = 'SUBJECT'
          AND event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED')
          AND (subjects IS NULL OR list_contains(subjects, subject_id))
          AND (holders IS NULL
               OR list_contains(holders, CASE WHEN event_type = 'COLLECTED' THEN holder_name ELSE recipient_name END))
    ),
    bulk AS (
        SELECT holder_name AS src, recipient_name AS dst, categories AS keys, bulk_as_of, occurred_at, event_id
        FROM ev
        WHERE scope = 'BULK' AND event_type IN ('SHARED', 'TRANSFERRED')
    ),
    er AS (SELECT * FROM erasures(as_of)),
    reached(subject, category, holder, arrived_at, via) AS (
        SELECT * FROM direct
        UNION
        SELECT a.subject, a.category, b.dst, b.occurred_at, b.event_id
        FROM reached AS a
        JOIN bulk AS b
          ON b.src = a.holder AND a.arrived_at <= b.bulk_as_of AND covers(a.category, b.keys)
        LEFT JOIN er AS x
          ON x.holder = a.holder
         AND covers(a.category, x.categories)
         AND x.erased_at >= a.arrived_at
         AND x.erased_at <= b.bulk_as_of
         AND ((x.scope = 'SUBJECT' AND x.subject_id = a.subject) OR (x.scope = 'BULK' AND a.arrived_at <= x.bulk_as_of))
        WHERE x.holder IS NULL
    )
SELECT * FROM reached;

-- Holdings: each arrival with the time an erasure ended it (NULL: still held as of `as_of`).
CREATE OR REPLACE MACRO holdings(subjects, as_of, holders := NULL) AS TABLE
SELECT
    a.subject, a.category, a.holder, a.arrived_at, a.via,
    min(x.erased_at) AS ended_at
FROM arrivals(subjects, as_of, holders := holders) AS a
LEFT JOIN erasures(as_of) AS x
  ON x.holder = a.holder
 AND covers(a.category, x.categories)
 AND x.erased_at >= a.arrived_at
 AND ((x.scope = 'SUBJECT' AND x.subject_id = a.subject) OR (x.scope = 'BULK' AND a.arrived_at <= x.bulk_as_of))
GROUP BY ALL;

-- The holders `nodes` and every holder whose bulk flows (sent by `as_of`) reach them, over any
-- number of hops: where data must have been for a breach of `nodes` to expose it.
CREATE OR REPLACE MACRO upstream(nodes, as_of) AS TABLE
WITH RECURSIVE up(holder) AS (
    SELECT unnest(nodes)
    UNION
    SELECT e.holder_name
    FROM up
    JOIN events AS e
      ON e.recipient_name = up.holder AND e.scope = 'BULK' AND e.event_type IN ('SHARED', 'TRANSFERRED')
     AND e.occurred_at <= as_of
)
SELECT holder FROM up;
