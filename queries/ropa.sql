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
    f AS (
        SELECT
            fe.*,
            fe.event_type <> 'COLLECTED' AS outgoing,
            CASE WHEN fe.event_type = 'COLLECTED' THEN fe.dst ELSE fe.src END AS controller,
            CASE WHEN fe.event_type = 'COLLECTED' THEN fe.dst_role ELSE fe.src_role END AS controller_role,
            CASE WHEN fe.event_type = 'COLLECTED' THEN fe.dst_region ELSE fe.src_region END AS controller_region,
            rs.zone AS src_zone,
            coalesce(crosses_border(rs.zone, rd.zone), false) AS crossing,
            p.jurisdiction,
            coalesce(p.minor, false) AS minor,
            coalesce(p.child, false) AS child
        FROM flow_events() AS fe
        LEFT JOIN people AS p ON p.subject_id = fe.subject_id
        LEFT JOIN regions AS rs ON rs.code = fe.src_region
        LEFT JOIN regions AS rd ON rd.code = fe.dst_region
        WHERE fe.occurred_at <= $as_of
    ),
    flagged AS (
        SELECT
            *,
            list_has_any(categories, $sensitive) OR child AS f_sensitive,
            coalesce(covers(purpose, $adm_purposes), false) AS f_automated,
            outgoing AND list_contains($entrusted_roles, dst_role) AS f_entrusted,
            outgoing AND list_contains($disclosure_roles, dst_role) AS f_disclosed,
            crossing AND src_zone = $pipl_zone AS f_abroad,
            {'src': src, 'dst': dst, 'role': dst_role, 'region': dst_region, 'crossing': crossing, 'mechanism': mechanism}
                AS flow
        FROM f
    )
SELECT
    controller,
    purpose,
    list_sort(list_distinct(list(DISTINCT controller_role))) AS controller_roles,
    list_sort(list_distinct(list(DISTINCT controller_region))) AS controller_regions,
    list_sort(list_distinct(list(DISTINCT legal_basis))) AS legal_bases,
    count(DISTINCT subject_id) AS subjects,
    count(DISTINCT subject_id) FILTER (WHERE minor) AS minors,
    count(DISTINCT subject_id) FILTER (WHERE child) AS children_under_14,
    list_sort(list_distinct(list(DISTINCT jurisdiction))) AS subject_jurisdictions,
    list_sort(list_distinct(flatten(list(DISTINCT categories)))) AS categories,
    list_sort(list_distinct(coalesce(list(dst) FILTER (WHERE outgoing), []))) AS recipients,
    list_sort(list_distinct(coalesce(list(dst_role) FILTER (WHERE outgoing), []))) AS recipient_roles,
    list_sort(list_distinct(coalesce(list(dst_region) FILTER (WHERE crossing), []))) AS third_countries,
    list_sort(list_distinct(coalesce(list(coalesce(mechanism, 'none')) FILTER (WHERE crossing), []))) AS transfer_mechanisms,
    list_sort(list_distinct(list(DISTINCT retention_days))) AS retention_days,
    count(*) AS events,
    count(*) FILTER (WHERE scope = 'BULK') AS bulk_events,
    min(occurred_at) AS first_seen,
    max(occurred_at) AS last_seen,
    count(*) FILTER (WHERE f_sensitive) AS sensitive_events,
    list(DISTINCT flow) FILTER (WHERE f_sensitive) AS sensitive_flows,
    min_by(event_id, occurred_at, $examples) FILTER (WHERE f_sensitive) AS sensitive_examples,
    count(*) FILTER (WHERE f_automated) AS automated_events,
    list(DISTINCT flow) FILTER (WHERE f_automated) AS automated_flows,
    min_by(event_id, occurred_at, $examples) FILTER (WHERE f_automated) AS automated_examples,
    count(*) FILTER (WHERE f_entrusted) AS entrusted_events,
    list(DISTINCT flow) FILTER (WHERE f_entrusted) AS entrusted_flows,
    min_by(event_id, occurred_at, $examples) FILTER (WHERE f_entrusted) AS entrusted_examples,
    count(*) FILTER (WHERE f_disclosed) AS disclosed_events,
    list(DISTINCT flow) FILTER (WHERE f_disclosed) AS disclosed_flows,
    min_by(event_id, occurred_at, $examples) FILTER (WHERE f_disclosed) AS disclosed_examples,
    count(*) FILTER (WHERE f_abroad) AS abroad_events,
    list(DISTINCT flow) FILTER (WHERE f_abroad) AS abroad_flows,
    min_by(event_id, occurred_at, $examples) FILTER (WHERE f_abroad) AS abroad_examples
FROM flagged
GROUP BY controller, purpose
ORDER BY controller, purpose
