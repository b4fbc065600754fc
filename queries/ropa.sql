-- Record of processing activities (GDPR Art. 30(1)), generated from the observed flows up to $as_of:
-- one row per activity, i.e. per controller (the holder that collects or sends the data) and
-- purpose, with what the record lists (subjects, categories, recipients, crossings, retention) and,
-- per situation in which PIPL Art. 55 asks for an impact assessment, the events and flows that show it.
-- Flows come from flow_events() (the events view), never from the holdings: the record describes
-- what was done, not what is still held. Bulk flows name no subject, so subject counts, minors and
-- jurisdictions come from subject-level events.
-- The rules come in as parameters from lineage.contract (rules.py, law.py), and crossings use the
-- crosses_border macro over the `regions` table (Store.connect(taxonomy) creates it).
-- A list aggregate over no rows is NULL, hence the coalesce(..., []) around the filtered ones.
-- Cost: two passes over the flows, each grouping early. Subjects are counted from distinct
-- (activity, subject) pairs; everything else from a few flow shapes (one row per distinct set of
-- what the record reads of an event, with its count, time span and earliest events). An earlier
-- form joined every event to its subject's facts and kept a DISTINCT aggregate per column: 108 s
-- at 1M subjects / 20M events. `f` is NOT MATERIALIZED: scanning the files twice is cheaper than
-- buffering 20M rows. The earliest events of a flag are ordered by time, then id.
-- Parameters: $as_of, $sensitive (PIPL-sensitive category keys), $minor_bands and $child_bands (age
-- bands under 18 and under 14), $entrusted_roles, $disclosure_roles (recipient roles), $pipl_zone,
-- $adm_purposes (purpose keys of automated decision-making), $examples (event ids named per flag).
WITH
    -- each subject's residence (the latest declared) and whether any event declared them a minor
    people AS (
        SELECT
            subject_id,
            arg_max(subject_jurisdiction, occurred_at) FILTER (WHERE subject_jurisdiction IS NOT NULL) AS jurisdiction,
            bool_or(list_contains($minor_bands, age_band)) AS minor,
            bool_or(list_contains($child_bands, age_band)) AS child
        FROM events
        WHERE scope = 'SUBJECT' AND occurred_at <= $as_of
        GROUP BY subject_id
    ),
    f AS NOT MATERIALIZED (
        SELECT
            fe.*,
            fe.event_type <> 'COLLECTED' AS outgoing,
            CASE WHEN fe.event_type = 'COLLECTED' THEN fe.dst ELSE fe.src END AS controller,
            CASE WHEN fe.event_type = 'COLLECTED' THEN fe.dst_role ELSE fe.src_role END AS controller_role,
            CASE WHEN fe.event_type = 'COLLECTED' THEN fe.dst_region ELSE fe.src_region END AS controller_region
        FROM flow_events() AS fe
        WHERE fe.occurred_at <= $as_of
    ),
    -- what the record counts per subject: each (activity, subject) once, with the subject's facts.
    -- (Grouping first, then joining, keeps the join to one row per pair, not one per event.)
    pairs AS (
        SELECT controller, purpose, subject_id FROM f WHERE subject_id IS NOT NULL GROUP BY ALL
    ),
    counted AS (
        SELECT
            pairs.controller, pairs.purpose,
            count(*) AS subjects,
            count(*) FILTER (WHERE p.minor) AS minors,
            count(*) FILTER (WHERE p.child) AS children_under_14,
            list_sort(list_distinct(list(p.jurisdiction))) AS subject_jurisdictions
        FROM pairs LEFT JOIN people AS p ON p.subject_id = pairs.subject_id
        GROUP BY ALL
    ),
    -- every event in few rows: one per distinct flow shape (whatever the record reads of an event
    -- but its time, id and subject), with the count, time span and earliest events of each
    shapes AS (
        SELECT
            controller, purpose, controller_role, controller_region, legal_basis, categories, outgoing,
            src, src_region, dst, dst_role, dst_region, mechanism, retention_days, scope,
            coalesce(subject_id IN (SELECT subject_id FROM people WHERE child), false) AS child,
            count(*) AS n,
            min(occurred_at) AS first_seen,
            max(occurred_at) AS last_seen,
            min_by({'at': occurred_at, 'id': event_id}, occurred_at, $examples) AS earliest
        FROM f
        GROUP BY ALL
    ),
    flagged AS (
        SELECT
            s.*,
            coalesce(crosses_border(rs.zone, rd.zone), false) AS crossing,
            list_has_any(categories, $sensitive) OR child AS f_sensitive,
            coalesce(covers(purpose, $adm_purposes), false) AS f_automated,
            outgoing AND list_contains($entrusted_roles, dst_role) AS f_entrusted,
            outgoing AND list_contains($disclosure_roles, dst_role) AS f_disclosed,
            coalesce(crosses_border(rs.zone, rd.zone), false) AND rs.zone = $pipl_zone AS f_abroad
        FROM shapes AS s
        LEFT JOIN regions AS rs ON rs.code = s.src_region
        LEFT JOIN regions AS rd ON rd.code = s.dst_region
    ),
    activities AS (
        SELECT
            controller,
            purpose,
            list_sort(list_distinct(list(controller_role))) AS controller_roles,
            list_sort(list_distinct(list(controller_region))) AS controller_regions,
            list_sort(list_distinct(list(legal_basis))) AS legal_bases,
            list_sort(list_distinct(flatten(list(categories)))) AS categories,
            list_sort(list_distinct(coalesce(list(dst) FILTER (WHERE outgoing), []))) AS recipients,
            list_sort(list_distinct(coalesce(list(dst_role) FILTER (WHERE outgoing), []))) AS recipient_roles,
            list_sort(list_distinct(coalesce(list(dst_region) FILTER (WHERE crossing), []))) AS third_countries,
            list_sort(list_distinct(coalesce(list(coalesce(mechanism, 'none')) FILTER (WHERE crossing), []))) AS transfer_mechanisms,
            list_sort(list_distinct(list(retention_days))) AS retention_days,
            sum(n)::BIGINT AS events,
            coalesce(sum(n) FILTER (WHERE scope = 'BULK'), 0)::BIGINT AS bulk_events,
            min(first_seen) AS first_seen,
            max(last_seen) AS last_seen,
            coalesce(sum(n) FILTER (WHERE f_sensitive), 0)::BIGINT AS sensitive_events,
            list(DISTINCT flow) FILTER (WHERE f_sensitive) AS sensitive_flows,
            list_transform(list_slice(list_sort(flatten(list(earliest) FILTER (WHERE f_sensitive))), 1, $examples), lambda e: e.id) AS sensitive_examples,
            coalesce(sum(n) FILTER (WHERE f_automated), 0)::BIGINT AS automated_events,
            list(DISTINCT flow) FILTER (WHERE f_automated) AS automated_flows,
            list_transform(list_slice(list_sort(flatten(list(earliest) FILTER (WHERE f_automated))), 1, $examples), lambda e: e.id) AS automated_examples,
            coalesce(sum(n) FILTER (WHERE f_entrusted), 0)::BIGINT AS entrusted_events,
            list(DISTINCT flow) FILTER (WHERE f_entrusted) AS entrusted_flows,
            list_transform(list_slice(list_sort(flatten(list(earliest) FILTER (WHERE f_entrusted))), 1, $examples), lambda e: e.id) AS entrusted_examples,
            coalesce(sum(n) FILTER (WHERE f_disclosed), 0)::BIGINT AS disclosed_events,
            list(DISTINCT flow) FILTER (WHERE f_disclosed) AS disclosed_flows,
            list_transform(list_slice(list_sort(flatten(list(earliest) FILTER (WHERE f_disclosed))), 1, $examples), lambda e: e.id) AS disclosed_examples,
            coalesce(sum(n) FILTER (WHERE f_abroad), 0)::BIGINT AS abroad_events,
            list(DISTINCT flow) FILTER (WHERE f_abroad) AS abroad_flows,
            list_transform(list_slice(list_sort(flatten(list(earliest) FILTER (WHERE f_abroad))), 1, $examples), lambda e: e.id) AS abroad_examples
        FROM (
            SELECT *, {'src': src, 'dst': dst, 'role': dst_role, 'region': dst_region, 'crossing': crossing, 'mechanism': mechanism} AS flow
            FROM flagged
        )
        GROUP BY controller, purpose
    )
SELECT
    a.controller, a.purpose, a.controller_roles, a.controller_regions, a.legal_bases,
    coalesce(c.subjects, 0) AS subjects,
    coalesce(c.minors, 0) AS minors,
    coalesce(c.children_under_14, 0) AS children_under_14,
    coalesce(c.subject_jurisdictions, []) AS subject_jurisdictions,
    a.* EXCLUDE (controller, purpose, controller_roles, controller_regions, legal_bases)
FROM activities AS a
LEFT JOIN counted AS c ON c.controller IS NOT DISTINCT FROM a.controller AND c.purpose IS NOT DISTINCT FROM a.purpose
ORDER BY a.controller, a.purpose
