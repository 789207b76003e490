-- A tenant's bundle reads as functions (issue 25): its version, stats and breakdowns, the same
-- statements as the bundle's SQL in shared/src/bundle/ (the definitions the exactness check compares
-- these with), each a plpgsql RETURN QUERY, so that every server connection plans each statement once
-- and keeps the plan. Sent as text through a transaction-mode pooler, a plain statement is parsed and
-- planned on every read, which was over half of the database's work per warmed bundle.
--
-- Read-only and SECURITY INVOKER: a caller reads what its own grants let it read, as with the plain
-- statements, so EXECUTE stays PUBLIC's (PostgreSQL's default): a role that may read the tables (its
-- SELECT grants, or pg_read_all_data) and use this schema reads through them. Their
-- search_path is bound below to pg_catalog, the CRM's schema (where this migration finds `leads`,
-- as the views of 20261205000003 do; the other CRM tables must be there too) and pg_temp.
-- `#variable_conflict use_column`: a name that is a column of a table read and an output column of
-- the function is the table's column.
--
-- Each keeps one generic plan (plan_cache_mode): left to choose, PostgreSQL planned the stats anew on
-- every call, its test-data filter being cheaper to estimate with the value known. They read the
-- counters, whose rows per tenant are bounded whatever its data, by index ranges on the tenant (and
-- `tenant` by its key). The one statement that reads the CRM's data tables, the full scan of a window
-- the counters no longer hold, is planned on each call, for the tenant at hand. The recent lists stay statements sent as text: a
-- generic plan of one, where tenants are few, filters the cross-tenant list index (reading other
-- tenants' rows, as many as there are, for a small tenant) rather than reading the tenant's own.
SET LOCAL ROLE dashboard_cache_owner;

-- The data version and the stored time zone name of a tenant, no row if there is no such tenant
-- (version::TENANT_VERSION_AND_ZONE_SQL): what a bundle reads first.
CREATE FUNCTION dashboard_cache.tenant_version_and_zone(p_tenant uuid)
RETURNS TABLE (data_version int8, timezone text)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT ((SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_base
              WHERE kind = 'tenant' AND tenant_id = t.id AND bucket IS NULL)
          + (SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_delta
              WHERE tenant_id = t.id AND bucket IS NULL)
          + (SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_base WHERE kind = 'epoch')
          + (SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_delta WHERE epoch))::int8,
           t.timezone
      FROM tenant t
     WHERE t.id = p_tenant;
END
$$;

-- The eleven stats (`p_since`: the 30-day window's first instant): from the maintained counters
-- (Sql::maintained_stats of a tenant) when the window starts at or after the horizon of compaction, as
-- it always does unless the caller's clock is days behind the database's; otherwise by the full scan
-- (Sql::stats), which the statement would fall back to for the window's counts, planned for this
-- tenant on each call.
CREATE FUNCTION dashboard_cache.tenant_stats(p_tenant uuid, p_include_test boolean, p_since timestamptz)
RETURNS TABLE (total_contacts int8, total_accounts int8, total_leads int8, total_opportunities int8,
               open_leads int8, won_opportunities int8, open_opportunities int8,
               new_leads_last30_days int8, activities_last30_days int8,
               pipeline_value text, won_value text)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    window_kept boolean;
BEGIN
    SELECT p_since >= folded_before INTO window_kept FROM dashboard_cache.bundle_stats_horizon;
    IF window_kept IS NOT TRUE THEN
        RETURN QUERY EXECUTE $full_scan$
        SELECT (SELECT count(*) FROM contacts
                 WHERE tenant_id = $1 AND ($2 OR is_test_data IS NOT TRUE)) AS total_contacts,
               (SELECT count(*) FROM accounts
                 WHERE tenant_id = $1 AND ($2 OR is_test_data IS NOT TRUE)) AS total_accounts,
               l.total AS total_leads,
               o.total AS total_opportunities,
               l.open AS open_leads,
               o.won AS won_opportunities,
               o.open AS open_opportunities,
               l.recent AS new_leads_last30_days,
               (SELECT count(*) FROM activities
                 WHERE tenant_id = $1 AND ($2 OR is_test_data IS NOT TRUE)
                   AND coalesce(created_date, created_at) >= $3) AS activities_last30_days,
               o.pipeline::text AS pipeline_value,
               o.won_value::text AS won_value
          FROM (SELECT count(*) AS total,
                       count(*) FILTER (WHERE status IS NULL OR status NOT IN ('converted', 'lost')) AS open,
                       count(*) FILTER (WHERE coalesce(created_date, created_at) >= $3) AS recent
                  FROM leads
                 WHERE tenant_id = $1 AND ($2 OR is_test_data IS NOT TRUE)) AS l,
               (SELECT count(*) AS total,
                       count(*) FILTER (WHERE stage IN ('won', 'closed_won')) AS won,
                       count(*) FILTER (WHERE stage IS NULL
                                           OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost')) AS open,
                       round(coalesce(sum(amount) FILTER (
                           WHERE (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'))
                             AND amount <> 'NaN'::numeric AND amount > '-Infinity'::numeric
                             AND amount < 'Infinity'::numeric), 0), 2) AS pipeline,
                       round(coalesce(sum(amount) FILTER (
                           WHERE stage IN ('won', 'closed_won')
                             AND amount <> 'NaN'::numeric AND amount > '-Infinity'::numeric
                             AND amount < 'Infinity'::numeric), 0), 2) AS won_value
                  FROM opportunities
                 WHERE tenant_id = $1 AND ($2 OR is_test_data IS NOT TRUE)) AS o
        $full_scan$ USING p_tenant, p_include_test, p_since;
        RETURN;
    END IF;
    -- The statement of the definition, whose own fall-back to the tables is then never taken.
    RETURN QUERY
    WITH totals AS (
        SELECT contacts, accounts, leads, open_leads, opportunities, won_opportunities,
               open_opportunities, pipeline, won_value
          FROM dashboard_cache.bundle_stats_base
         WHERE kind = 'tenant' AND tenant_id = p_tenant AND bucket IS NULL AND (p_include_test OR NOT is_test)
        UNION ALL
        SELECT contacts, accounts, leads, open_leads, opportunities, won_opportunities,
               open_opportunities, pipeline, won_value
          FROM dashboard_cache.bundle_stats_delta
         WHERE tenant_id = p_tenant AND bucket IS NULL AND (p_include_test OR NOT is_test)
    ), recent AS (
        SELECT leads, activities
          FROM dashboard_cache.bundle_stats_base
         WHERE kind = 'tenant' AND tenant_id = p_tenant AND bucket >= p_since AND (p_include_test OR NOT is_test)
        UNION ALL
        SELECT leads, activities
          FROM dashboard_cache.bundle_stats_delta
         WHERE tenant_id = p_tenant AND bucket >= p_since AND (p_include_test OR NOT is_test)
    ), kept AS (
        -- Buckets before the horizon were folded by compaction: an earlier window start (a clock far
        -- behind the database's) is counted from the tables instead.
        SELECT p_since >= folded_before AS window_kept FROM dashboard_cache.bundle_stats_horizon
    )
    SELECT coalesce(sum(contacts), 0)::int8,
           coalesce(sum(accounts), 0)::int8,
           coalesce(sum(leads), 0)::int8,
           coalesce(sum(opportunities), 0)::int8,
           coalesce(sum(open_leads), 0)::int8,
           coalesce(sum(won_opportunities), 0)::int8,
           coalesce(sum(open_opportunities), 0)::int8,
           CASE WHEN (SELECT window_kept FROM kept)
                THEN (SELECT coalesce(sum(leads), 0)::int8 FROM recent)
                ELSE (SELECT count(*) FROM leads
                       WHERE tenant_id = p_tenant AND (p_include_test OR is_test_data IS NOT TRUE)
                         AND coalesce(created_date, created_at) >= p_since)
           END,
           CASE WHEN (SELECT window_kept FROM kept)
                THEN (SELECT coalesce(sum(activities), 0)::int8 FROM recent)
                ELSE (SELECT count(*) FROM activities
                       WHERE tenant_id = p_tenant AND (p_include_test OR is_test_data IS NOT TRUE)
                         AND coalesce(created_date, created_at) >= p_since)
           END,
           round(coalesce(sum(pipeline), 0), 2)::text,
           round(coalesce(sum(won_value), 0), 2)::text
      FROM totals;
END
$$;

-- The two breakdowns from the per-assignee counters, every assignee of the tenant: the 100 sources
-- with the most leads, by name; the 100 stages with the most opportunities, by name, the stageless last.
CREATE FUNCTION dashboard_cache.tenant_leads_by_source(p_tenant uuid, p_include_test boolean)
RETURNS TABLE (source text, leads int8)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT top.source, top.leads FROM (
        SELECT label AS source, sum(n)::int8 AS leads
          FROM (SELECT label, n FROM dashboard_cache.scope_stats_base
                 WHERE tenant_id = p_tenant AND facet = 'lead_source' AND (p_include_test OR NOT is_test)
                UNION ALL
                SELECT label, n FROM dashboard_cache.scope_stats_delta
                 WHERE tenant_id = p_tenant AND facet = 'lead_source' AND (p_include_test OR NOT is_test)) AS kept
         GROUP BY label HAVING sum(n) <> 0
         ORDER BY sum(n) DESC, label LIMIT 100) AS top
     ORDER BY top.source;
END
$$;

CREATE FUNCTION dashboard_cache.tenant_funnel(p_tenant uuid, p_include_test boolean)
RETURNS TABLE (stage text, count int8, amount text)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT top.stage, top.count, top.amount FROM (
        SELECT label AS stage, sum(n)::int8 AS count, round(sum(amount), 2)::text AS amount
          FROM (SELECT label, n, amount FROM dashboard_cache.scope_stats_base
                 WHERE tenant_id = p_tenant AND facet = 'opportunity_stage' AND (p_include_test OR NOT is_test)
                UNION ALL
                SELECT label, n, amount FROM dashboard_cache.scope_stats_delta
                 WHERE tenant_id = p_tenant AND facet = 'opportunity_stage' AND (p_include_test OR NOT is_test)) AS kept
         GROUP BY label HAVING sum(n) <> 0
         ORDER BY sum(n) DESC, label NULLS LAST LIMIT 100) AS top
     ORDER BY top.stage NULLS LAST;
END
$$;

-- Bound here, where the CRM's schema is known: whatever search_path a reader's session has, these
-- read the CRM's tables with pg_catalog's functions and operators (and no temporary object).
DO $$
DECLARE
    f text;
    crm_schema oid;
    elsewhere text;
BEGIN
    SELECT c.relnamespace INTO crm_schema
      FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) 'leads'::regclass;
    SELECT pg_catalog.string_agg(t::text, ', ') INTO elsewhere
      FROM (VALUES ('tenant'::regclass), ('contacts'::regclass), ('accounts'::regclass),
                   ('opportunities'::regclass), ('activities'::regclass)) AS crm (t)
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) crm.t
     WHERE c.relnamespace OPERATOR(pg_catalog.<>) crm_schema;
    IF elsewhere IS NOT NULL THEN
        RAISE EXCEPTION 'the CRM tables % are not in schema % with leads', elsewhere, crm_schema;
    END IF;
    FOREACH f IN ARRAY ARRAY[
        'tenant_version_and_zone(uuid)',
        'tenant_stats(uuid, boolean, timestamptz)',
        'tenant_leads_by_source(uuid, boolean)',
        'tenant_funnel(uuid, boolean)'
    ] LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION dashboard_cache.%s SET search_path = pg_catalog, %I, pg_temp',
                                  f, (SELECT n.nspname FROM pg_catalog.pg_namespace n
                                       WHERE n.oid OPERATOR(pg_catalog.=) crm_schema));
    END LOOP;
END
$$;

RESET ROLE;
