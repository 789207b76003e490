-- Upkeep of the per-assignee counters (20261205000012_dashboard_cache_scopes.sql), called by the tenant
-- counters' own (20261205000004_dashboard_cache_upkeep.sql): compaction folds and ages them under its
-- lock and in its transaction, repair corrects a tenant's under the tenant's repair lock.
SET LOCAL ROLE dashboard_cache_owner;

-- Compaction's part for the scopes, called by bundle_stats_compact under its lock and in its
-- transaction: folds up to `max_rows` deltas in one statement. Days before `horizon` go to their
-- facet's -infinity bucket, as scope_stats_age folds them (a reader counts a window as the total minus
-- the days before it); quarter hours before it are read by no kept window and are dropped. Returns the
-- number folded.
CREATE FUNCTION dashboard_cache.scope_stats_fold(max_rows integer, horizon timestamptz) RETURNS int8
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    folded int8;
BEGIN
    WITH moved AS (
        DELETE FROM dashboard_cache.scope_stats_delta
         WHERE ctid = ANY (ARRAY(SELECT ctid FROM dashboard_cache.scope_stats_delta LIMIT max_rows))
        RETURNING *
    ), stored AS (
        INSERT INTO dashboard_cache.scope_stats_base AS b (tenant_id, assignee, is_test, facet, label, bucket, n, amount)
        SELECT tenant_id, assignee, is_test, facet, label, bucket, sum(n), sum(amount)
          FROM (SELECT tenant_id, assignee, is_test, facet, label,
                       CASE WHEN bucket < horizon THEN '-infinity' ELSE bucket END AS bucket, n, amount
                  FROM moved
                 WHERE bucket IS NULL OR bucket >= horizon OR facet IN ('leads_day', 'activities_day')) AS kept
         GROUP BY tenant_id, assignee, is_test, facet, label, bucket
        ON CONFLICT (tenant_id, assignee, facet, label, bucket, is_test) DO UPDATE SET
            n = b.n + excluded.n,
            amount = b.amount + excluded.amount
        RETURNING 1
    )
    SELECT count(*) INTO folded FROM moved;
    RETURN folded;
END
$$;

-- Once a day, with the horizon's move: folds the days before it into their facet's -infinity bucket
-- (what every window starts after), drops the quarter hours before it and the rows that count nothing
-- (labels no record has any more), so storage follows the 30-day window and the live labels.
CREATE FUNCTION dashboard_cache.scope_stats_age(horizon timestamptz) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH aged AS (
        DELETE FROM dashboard_cache.scope_stats_base
         WHERE bucket < horizon AND bucket > '-infinity'
        RETURNING tenant_id, assignee, is_test, facet, n
    )
    INSERT INTO dashboard_cache.scope_stats_base AS b (tenant_id, assignee, is_test, facet, bucket, n)
    SELECT tenant_id, assignee, is_test, facet, '-infinity', sum(n)
      FROM aged WHERE facet IN ('leads_day', 'activities_day')
     GROUP BY tenant_id, assignee, is_test, facet
    ON CONFLICT (tenant_id, assignee, facet, label, bucket, is_test) DO UPDATE SET n = b.n + excluded.n;

    DELETE FROM dashboard_cache.scope_stats_base WHERE n = 0 AND amount = 0;
$$;

-- Repair's part for the scopes of tenant `p_tenant`, called by bundle_stats_repair under the tenant's
-- repair lock: the tables' facets minus the kept ones, in one statement, appended as a delta (in pieces
-- where one row could not hold it). Returns the number of drifted rows.
CREATE FUNCTION dashboard_cache.scope_stats_repair(p_tenant uuid, horizon timestamptz) RETURNS int8
LANGUAGE sql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
-- No JIT: a correction's pieces (generate_series over a column) are estimated at a thousand rows
-- per drifted group, a cost that would have Postgres compile the statement for a second or more.
SET jit = off AS $$
    WITH truth AS (
        SELECT assignee, is_test, facet, label,
               CASE WHEN bucket < horizon THEN '-infinity' ELSE bucket END AS bucket, count(*) AS n,
               sum(amount) AS amount
          FROM dashboard_cache.scope_stats_rows
         WHERE tenant_id = p_tenant
           AND (bucket IS NULL OR bucket >= horizon OR facet IN ('leads_day', 'activities_day'))
         GROUP BY 1, 2, 3, 4, 5
    ), kept AS (
        SELECT assignee, is_test, facet, label,
               CASE WHEN bucket < horizon THEN '-infinity' ELSE bucket END AS bucket, sum(n) AS n,
               sum(amount) AS amount
          FROM (SELECT assignee, is_test, facet, label, bucket, n, amount
                  FROM dashboard_cache.scope_stats_base WHERE tenant_id = p_tenant
                UNION ALL
                SELECT assignee, is_test, facet, label, bucket, n, amount
                  FROM dashboard_cache.scope_stats_delta WHERE tenant_id = p_tenant) AS k
         WHERE bucket IS NULL OR bucket >= horizon OR facet IN ('leads_day', 'activities_day')
         GROUP BY 1, 2, 3, 4, 5
    ), drift AS (
        SELECT coalesce(t.assignee, k.assignee) AS assignee, coalesce(t.is_test, k.is_test) AS is_test,
               coalesce(t.facet, k.facet) AS facet, coalesce(t.label, k.label) AS label,
               coalesce(t.bucket, k.bucket) AS bucket,
               coalesce(t.n, 0) - coalesce(k.n, 0) AS n,
               coalesce(t.amount, 0) - coalesce(k.amount, 0) AS amount
          FROM truth t FULL JOIN kept k
            ON t.assignee IS NOT DISTINCT FROM k.assignee AND t.is_test = k.is_test AND t.facet = k.facet
           AND t.label IS NOT DISTINCT FROM k.label AND t.bucket IS NOT DISTINCT FROM k.bucket
    ), split AS (
        -- In as many pieces (delta_part) as the deltas' check needs.
        SELECT *, generate_series(1, parts) AS i
          FROM (SELECT d.*, greatest(1, ceil(abs(n) / (1e12 - 10)), ceil(abs(amount) / (1e30 - 1)))::int8 AS parts
                  FROM drift d WHERE n <> 0 OR amount <> 0) AS sized
    ), fixed AS (
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, bucket, n, amount)
        SELECT p_tenant, assignee, is_test, facet, label, bucket,
               dashboard_cache.delta_part(n, i, parts), dashboard_cache.delta_part(amount, i, parts)
          FROM split
        RETURNING 1
    )
    SELECT count(*) FROM split WHERE i = 1;
$$;

REVOKE ALL ON FUNCTION dashboard_cache.scope_stats_fold(integer, timestamptz),
    dashboard_cache.scope_stats_age(timestamptz), dashboard_cache.scope_stats_repair(uuid, timestamptz)
    FROM PUBLIC;

RESET ROLE;
