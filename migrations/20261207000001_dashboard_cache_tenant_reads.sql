-- A tenant's bundle reads as functions (issue 25): the same statements as the bundle's SQL in
-- shared/src/bundle/sql.rs and assignee_sql.rs (the definitions the exactness check compares these
-- with), each a plpgsql RETURN QUERY, so that every server connection plans each statement once and
-- keeps the plan. Sent as text through a transaction-mode pooler, a plain statement is parsed and
-- planned on every read, which was over half of the database's work per warmed bundle.
--
-- Read-only and SECURITY INVOKER: a caller reads what its own grants let it read, as with the plain
-- statements, so EXECUTE stays PUBLIC's (PostgreSQL's default): a role that may read the tables (its
-- SELECT grants, or pg_read_all_data) and use this schema reads through them. Their
-- search_path is bound below to pg_catalog, the CRM's schema (where this migration finds `leads`,
-- as the views of 20261205000003 do) and pg_temp. `#variable_conflict use_column`: a name that is a
-- column of a table read and an output column of the function is the table's column.
--
-- Each keeps one generic plan (plan_cache_mode): left to choose, PostgreSQL planned the stats anew on
-- every call, its test-data filter being cheaper to estimate with the value known. The statements are
-- written for their generic plans, an index range on the tenant (see the plan tests in
-- shared/tests/it/bundle_queries.rs, which read them so).
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

-- The eleven stats from the maintained counters (Sql::maintained_stats of a tenant). `p_since`: the
-- 30-day window's first instant.
CREATE FUNCTION dashboard_cache.tenant_stats(p_tenant uuid, p_include_test boolean, p_since timestamptz)
RETURNS TABLE (total_contacts int8, total_accounts int8, total_leads int8, total_opportunities int8,
               open_leads int8, won_opportunities int8, open_opportunities int8,
               new_leads_last30_days int8, activities_last30_days int8,
               pipeline_value text, won_value text)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
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

-- The three recent lists, in their indexes' order: activities and opportunities order by their output
-- timestamps (named as the output columns, as the list indexes of 20261205000006 and 08 hold). Text is cut to 500 characters; a timestamp that
-- is infinite or outside years 1-9999 is NULL; an amount JSON cannot carry (NaN, infinite) is NULL.
CREATE FUNCTION dashboard_cache.tenant_recent_activities(p_tenant uuid, p_include_test boolean)
RETURNS TABLE (id uuid, kind text, subject text, status text,
               created_at timestamptz, created_date timestamptz, assigned_to uuid)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT id, left(type, 500) AS kind, left(subject, 500) AS subject, left(status, 500) AS status,
           CASE WHEN created_at >= '0001-01-01T00:00:00Z'::timestamptz
                 AND created_at < '10000-01-01T00:00:00Z'::timestamptz THEN created_at END AS created_at,
           CASE WHEN created_date >= '0001-01-01T00:00:00Z'::timestamptz
                 AND created_date < '10000-01-01T00:00:00Z'::timestamptz THEN created_date END AS created_date,
           assigned_to
      FROM activities
     WHERE tenant_id = p_tenant AND (p_include_test OR is_test_data IS NOT TRUE)
     ORDER BY created_at DESC NULLS LAST, id ASC
     LIMIT 10;
END
$$;

CREATE FUNCTION dashboard_cache.tenant_recent_leads(p_tenant uuid, p_include_test boolean)
RETURNS TABLE (id uuid, first_name text, last_name text, company text,
               created_date timestamptz, status text, listed_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT id, left(first_name, 500), left(last_name, 500), left(company, 500),
           CASE WHEN created_date >= '0001-01-01T00:00:00Z'::timestamptz
                 AND created_date < '10000-01-01T00:00:00Z'::timestamptz THEN created_date END,
           left(status, 500),
           coalesce(created_date, created_at)
      FROM leads
     WHERE tenant_id = p_tenant AND (p_include_test OR is_test_data IS NOT TRUE)
     ORDER BY coalesce(created_date, created_at) DESC NULLS LAST, id ASC
     LIMIT 5;
END
$$;

CREATE FUNCTION dashboard_cache.tenant_recent_opportunities(p_tenant uuid, p_include_test boolean)
RETURNS TABLE (id uuid, name text, amount text, stage text, updated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT id, left(name, 500) AS name,
           CASE WHEN amount <> 'NaN'::numeric AND amount > '-Infinity'::numeric
                 AND amount < 'Infinity'::numeric THEN amount::text END AS amount,
           left(stage, 500) AS stage,
           CASE WHEN updated_at >= '0001-01-01T00:00:00Z'::timestamptz
                 AND updated_at < '10000-01-01T00:00:00Z'::timestamptz THEN updated_at END AS updated_at
      FROM opportunities
     WHERE tenant_id = p_tenant AND (p_include_test OR is_test_data IS NOT TRUE)
     ORDER BY updated_at DESC NULLS LAST, id ASC
     LIMIT 5;
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
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'tenant_version_and_zone(uuid)',
        'tenant_stats(uuid, boolean, timestamptz)',
        'tenant_recent_activities(uuid, boolean)',
        'tenant_recent_leads(uuid, boolean)',
        'tenant_recent_opportunities(uuid, boolean)',
        'tenant_leads_by_source(uuid, boolean)',
        'tenant_funnel(uuid, boolean)'
    ] LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION dashboard_cache.%s SET search_path = pg_catalog, %I, pg_temp',
                                  f, pg_catalog.current_schema());
    END LOOP;
END
$$;

RESET ROLE;
