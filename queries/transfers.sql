-- Cross-border transfer register (PIPL Art. 38-39, GDPR Chapter V): flows whose recipient is in
-- another transfer zone than the sender, by source and destination region, recipient, mechanism and
-- calendar year, with the number of individuals (subject-level and carried by bulk exports) and of
-- individuals whose data sensitive under any regime (PIPL, GDPR or CPRA) went. PIPL counts (2024 CAC
-- Provisions) are per calendar year of everything leaving PIPL's zone (mainland China): see the
-- pipl_year_* columns, whose sensitive count is PIPL's alone (Art. 28): a category only GDPR-special
-- or only CPRA-sensitive (political opinion, union membership ...) does not raise the PIPL tier.
-- Needs the `regions` and `sensitive_categories` tables (Store.connect(taxonomy) creates them).
-- Parameters: $as_of; $pipl_zone and $pipl_sensitive (PIPL-sensitive category keys), the rules from
-- lineage.contract (law.PIPL_ZONE, Taxonomy.pipl_sensitive_keys).
WITH
    -- a run never spans two calendar years (lineage/holdings): its first arrival's year is its year
    h AS (SELECT * FROM runs($as_of)),
    x AS (
        SELECT
            h.source_region AS from_region, rs.zone AS from_zone, h.holder_region AS to_region,
            h.holder AS recipient, h.mechanism, year(h.arrived_at) AS year, h.subject,
            h.category IN (SELECT key FROM sensitive_categories) AS sensitive,
            list_contains($pipl_sensitive, h.category) AS pipl_sensitive
        FROM h
        JOIN regions AS rs ON rs.code = h.source_region
        JOIN regions AS rd ON rd.code = h.holder_region
        -- one region lies in one zone: runs that stay in their region never cross, and leaving them
        -- out first spares the joins most rows (they cost 4 of this query's 6 s at 1M subjects)
        WHERE h.via_type IN ('SHARED', 'TRANSFERRED') AND h.source_region <> h.holder_region
          AND crosses_border(rs.zone, rd.zone)
    ),
    pipl_year AS (
        SELECT year, count(DISTINCT subject) AS individuals,
               count(DISTINCT subject) FILTER (WHERE pipl_sensitive) AS sensitive_individuals
        FROM x WHERE from_zone = $pipl_zone GROUP BY year
    )
SELECT
    x.year, x.from_region, x.to_region, x.recipient, x.mechanism,
    count(DISTINCT x.subject) AS individuals,
    count(DISTINCT x.subject) FILTER (WHERE x.sensitive) AS sensitive_individuals,
    x.mechanism IS NULL AS lacks_mechanism,
    any_value(pipl_year.individuals) AS pipl_year_individuals,
    any_value(pipl_year.sensitive_individuals) AS pipl_year_sensitive_individuals
FROM x
LEFT JOIN pipl_year ON pipl_year.year = x.year AND x.from_zone = $pipl_zone
GROUP BY x.year, x.from_region, x.to_region, x.recipient, x.mechanism
ORDER BY x.year, x.from_region, x.to_region, x.recipient, x.mechanism
