-- Upkeep of the maintained counters: compaction (deltas folded into base rows, old buckets aged), the
-- exactness repair of one tenant, and the resync after writes that bypassed the triggers.
--
-- bundle_stats_compact only touches this schema's tables, so it runs as their owner (SECURITY
-- DEFINER): the warmer needs EXECUTE, not write rights on the base rows. Repair and resync read the
-- CRM's tables, on which dashboard_cache_owner has no right: they run as their caller (SECURITY
-- INVOKER), who needs SELECT on the CRM tables and INSERT on bundle_stats_delta.
SET LOCAL ROLE dashboard_cache_owner;

-- Folds up to `max_rows` deltas into the base rows, in one statement: a snapshot sees either those
-- deltas or their fold, never both or neither, so what a reader computes never changes. Once a day it
-- also folds the base buckets older than 35 days into their group's -infinity bucket (and moves the
-- horizon in the same transaction), so storage follows the 30-day window, not the history. Returns
-- the number of deltas folded, or NULL when another compaction holds the lock (it will fold them).
CREATE FUNCTION dashboard_cache.bundle_stats_compact(max_rows integer DEFAULT 50000) RETURNS int8
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    folded int8;
    horizon timestamptz := date_bin('1 day', now() - interval '35 days', '1970-01-01 00:00:00+00');
BEGIN
    -- One compaction at a time: a row lock only the owner can take (an advisory lock could be held by
    -- any role that can connect, stopping compaction for good).
    PERFORM FROM dashboard_cache.bundle_stats_horizon FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    UPDATE dashboard_cache.bundle_stats_horizon SET folded_before = horizon WHERE folded_before < horizon;
    IF FOUND THEN
        WITH aged AS (
            DELETE FROM dashboard_cache.bundle_stats_base
             WHERE bucket < horizon AND bucket > '-infinity'
            RETURNING kind, tenant_id, is_test, leads, activities
        )
        INSERT INTO dashboard_cache.bundle_stats_base AS b (kind, tenant_id, is_test, bucket, leads, activities)
        SELECT kind, tenant_id, is_test, '-infinity', sum(leads), sum(activities)
          FROM aged GROUP BY kind, tenant_id, is_test
        ON CONFLICT (kind, tenant_id, bucket, is_test) DO UPDATE SET
            leads = b.leads + excluded.leads,
            activities = b.activities + excluded.activities;
        PERFORM dashboard_cache.scope_stats_age(horizon);
    ELSE
        SELECT folded_before INTO horizon FROM dashboard_cache.bundle_stats_horizon;
    END IF;

    WITH moved AS (
        DELETE FROM dashboard_cache.bundle_stats_delta
         WHERE ctid = ANY (ARRAY(SELECT ctid FROM dashboard_cache.bundle_stats_delta LIMIT max_rows))
        RETURNING *
    ), keyed AS (
        SELECT CASE WHEN epoch THEN 'epoch' WHEN tenant_id IS NULL THEN 'no_tenant' ELSE 'tenant'
               END::dashboard_cache.stats_kind AS kind,
               CASE WHEN epoch THEN NULL ELSE tenant_id END AS tenant_id,
               CASE WHEN epoch THEN false ELSE is_test END AS is_test,
               CASE WHEN epoch THEN NULL WHEN bucket < horizon THEN '-infinity' ELSE bucket END AS bucket,
               changes, contacts, accounts, leads, open_leads, opportunities, won_opportunities,
               open_opportunities, pipeline, won_value, activities
          FROM moved
        UNION ALL
        SELECT 'global', NULL, is_test, CASE WHEN bucket < horizon THEN '-infinity' ELSE bucket END,
               changes, contacts, accounts, leads, open_leads, opportunities,
               won_opportunities, open_opportunities, pipeline, won_value, activities
          FROM moved WHERE NOT epoch
    ), stored AS (
        INSERT INTO dashboard_cache.bundle_stats_base AS b (kind, tenant_id, is_test, bucket, changes,
                    contacts, accounts, leads, open_leads, opportunities, won_opportunities,
                    open_opportunities, pipeline, won_value, activities)
        SELECT kind, tenant_id, is_test, bucket, sum(changes), sum(contacts), sum(accounts), sum(leads),
               sum(open_leads), sum(opportunities), sum(won_opportunities), sum(open_opportunities),
               sum(pipeline), sum(won_value), sum(activities)
          FROM keyed GROUP BY kind, tenant_id, is_test, bucket
        ON CONFLICT (kind, tenant_id, bucket, is_test) DO UPDATE SET
            changes = b.changes + excluded.changes,
            contacts = b.contacts + excluded.contacts,
            accounts = b.accounts + excluded.accounts,
            leads = b.leads + excluded.leads,
            open_leads = b.open_leads + excluded.open_leads,
            opportunities = b.opportunities + excluded.opportunities,
            won_opportunities = b.won_opportunities + excluded.won_opportunities,
            open_opportunities = b.open_opportunities + excluded.open_opportunities,
            pipeline = b.pipeline + excluded.pipeline,
            won_value = b.won_value + excluded.won_value,
            activities = b.activities + excluded.activities
        RETURNING 1
    )
    SELECT count(*) INTO folded FROM moved;
    -- The per-assignee counters (20261205000013_dashboard_cache_scope_upkeep.sql), under the same lock.
    RETURN folded + dashboard_cache.scope_stats_fold(max_rows, horizon);
END
$$;

-- Waits until no other repair of `p_tenant` (NULL: the rows without a tenant) is running, and keeps
-- the others waiting until this transaction ends. A row lock in a table only the owner writes.
CREATE FUNCTION dashboard_cache.lock_tenant_repair(p_tenant uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key uuid := coalesce(p_tenant, '00000000-0000-0000-0000-000000000000');
BEGIN
    INSERT INTO dashboard_cache.repair_lock (tenant_id) VALUES (key) ON CONFLICT DO NOTHING;
    PERFORM FROM dashboard_cache.repair_lock WHERE tenant_id = key FOR UPDATE;
END
$$;

-- Piece `part` of `parts` pieces of `total`: the difference of two roundings at the total's own scale,
-- so that the pieces sum to it exactly. Repair appends a correction larger than one delta row may hold
-- (the deltas' checks) in such pieces, so that whatever was appended, the next repair undoes it.
-- Inlined where it is called (so no SET clause: the body is bound to pg_catalog when created).
CREATE FUNCTION dashboard_cache.delta_part(total pg_catalog.numeric, part pg_catalog.int8, parts pg_catalog.int8)
RETURNS pg_catalog.numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
         WHEN parts OPERATOR(pg_catalog.=) 1 THEN total
         ELSE pg_catalog.round(total OPERATOR(pg_catalog.*) part::pg_catalog.numeric
                                 OPERATOR(pg_catalog./) parts::pg_catalog.numeric, pg_catalog.scale(total))
              OPERATOR(pg_catalog.-)
              pg_catalog.round(total OPERATOR(pg_catalog.*) (part OPERATOR(pg_catalog.-) 1)::pg_catalog.numeric
                                 OPERATOR(pg_catalog./) parts::pg_catalog.numeric, pg_catalog.scale(total))
       END;

-- Compares the maintained stats of one tenant (NULL: the rows without a tenant) with a full
-- recomputation in one statement, so in one snapshot, and appends the difference as a delta (with a
-- version change); then the tenant's per-assignee counters the same way: exact again whatever writers do meanwhile. Repairs of one tenant are serialised
-- (lock_tenant_repair), and each takes its snapshot after the lock, so a second repair sees the first
-- one's correction instead of adding it again: hence READ COMMITTED only. Returns the number of
-- drifted groups (a group: the totals or one bucket, with or without test data, or one scope row).
CREATE FUNCTION dashboard_cache.bundle_stats_repair(p_tenant uuid) RETURNS int8
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
-- No JIT: a correction's pieces (generate_series over a column) are estimated at a thousand rows
-- per drifted group, a cost that would have Postgres compile the statement for a second or more.
SET jit = off AS $$
DECLARE
    drifted int8;
    horizon timestamptz;
    scope text := CASE WHEN p_tenant IS NULL THEN 'tenant_id IS NULL' ELSE 'tenant_id = $1' END;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'bundle_stats_repair needs a READ COMMITTED transaction, not %',
              current_setting('transaction_isolation')
            USING ERRCODE = '0A000',
                  HINT = 'Its snapshot must start after the per-tenant lock, or a concurrent repair is counted twice.';
    END IF;
    -- Row-level security would hide rows from the recomputation, which would then "correct" the
    -- counters to what this role may see.
    IF EXISTS (SELECT FROM dashboard_cache.crm_tables c WHERE row_security_active(c.t)) THEN
        RAISE EXCEPTION 'bundle_stats_repair cannot see every row: row-level security is active on a CRM table for %',
              current_user
            USING ERRCODE = '42501',
                  HINT = 'Run it as a role that bypasses row-level security on the CRM tables (BYPASSRLS or their owner).';
    END IF;
    PERFORM dashboard_cache.lock_tenant_repair(p_tenant);
    -- Buckets before the horizon are folded into -infinity on both sides.
    SELECT folded_before INTO horizon FROM dashboard_cache.bundle_stats_horizon;
    EXECUTE format($sql$
        WITH truth AS (
            SELECT is_test, CASE WHEN bucket < $2 THEN '-infinity' ELSE bucket END AS bucket,
                   sum(contacts) AS contacts, sum(accounts) AS accounts, sum(leads) AS leads,
                   sum(open_leads) AS open_leads, sum(opportunities) AS opportunities,
                   sum(won_opportunities) AS won_opportunities, sum(open_opportunities) AS open_opportunities,
                   sum(pipeline) AS pipeline, sum(won_value) AS won_value, sum(activities) AS activities
              FROM dashboard_cache.bundle_stats_truth
             WHERE %1$s
             GROUP BY 1, 2
        ), kept AS (
            SELECT is_test, CASE WHEN bucket < $2 THEN '-infinity' ELSE bucket END AS bucket,
                   sum(contacts) AS contacts, sum(accounts) AS accounts, sum(leads) AS leads,
                   sum(open_leads) AS open_leads, sum(opportunities) AS opportunities,
                   sum(won_opportunities) AS won_opportunities, sum(open_opportunities) AS open_opportunities,
                   sum(pipeline) AS pipeline, sum(won_value) AS won_value, sum(activities) AS activities
              FROM (SELECT is_test, bucket, contacts, accounts, leads, open_leads, opportunities,
                           won_opportunities, open_opportunities, pipeline, won_value, activities
                      FROM dashboard_cache.bundle_stats_base WHERE kind = %2$L AND %1$s
                    UNION ALL
                    SELECT is_test, bucket, contacts, accounts, leads, open_leads, opportunities,
                           won_opportunities, open_opportunities, pipeline, won_value, activities
                      FROM dashboard_cache.bundle_stats_delta WHERE NOT epoch AND %1$s) AS k
             GROUP BY 1, 2
        ), diff AS (
            SELECT coalesce(t.is_test, k.is_test) AS is_test, coalesce(t.bucket, k.bucket) AS bucket,
                   coalesce(t.contacts, 0) - coalesce(k.contacts, 0) AS contacts,
                   coalesce(t.accounts, 0) - coalesce(k.accounts, 0) AS accounts,
                   coalesce(t.leads, 0) - coalesce(k.leads, 0) AS leads,
                   coalesce(t.open_leads, 0) - coalesce(k.open_leads, 0) AS open_leads,
                   coalesce(t.opportunities, 0) - coalesce(k.opportunities, 0) AS opportunities,
                   coalesce(t.won_opportunities, 0) - coalesce(k.won_opportunities, 0) AS won_opportunities,
                   coalesce(t.open_opportunities, 0) - coalesce(k.open_opportunities, 0) AS open_opportunities,
                   coalesce(t.pipeline, 0) - coalesce(k.pipeline, 0) AS pipeline,
                   coalesce(t.won_value, 0) - coalesce(k.won_value, 0) AS won_value,
                   coalesce(t.activities, 0) - coalesce(k.activities, 0) AS activities
              FROM truth t FULL JOIN kept k
                ON t.is_test = k.is_test AND t.bucket IS NOT DISTINCT FROM k.bucket
        ), drift AS (
            SELECT * FROM diff
             WHERE contacts <> 0 OR accounts <> 0 OR leads <> 0 OR open_leads <> 0 OR opportunities <> 0
                OR won_opportunities <> 0 OR open_opportunities <> 0 OR pipeline <> 0 OR won_value <> 0
                OR activities <> 0
        ), split AS (
            -- In as many pieces (delta_part) as the deltas' check needs.
            SELECT *, generate_series(1, parts) AS i
              FROM (SELECT d.*, greatest(1,
                             ceil(greatest(abs(contacts), abs(accounts), abs(leads), abs(open_leads), abs(opportunities),
                                           abs(won_opportunities), abs(open_opportunities), abs(activities)) / (1e12 - 10)),
                             ceil(greatest(abs(pipeline), abs(won_value)) / (1e30 - 1)))::int8 AS parts
                      FROM drift d) AS sized
        ), fixed AS (
            INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, contacts,
                        accounts, leads, open_leads, opportunities, won_opportunities, open_opportunities,
                        pipeline, won_value, activities)
            SELECT $1, is_test, bucket, 0,
                   dashboard_cache.delta_part(contacts, i, parts), dashboard_cache.delta_part(accounts, i, parts),
                   dashboard_cache.delta_part(leads, i, parts), dashboard_cache.delta_part(open_leads, i, parts),
                   dashboard_cache.delta_part(opportunities, i, parts),
                   dashboard_cache.delta_part(won_opportunities, i, parts),
                   dashboard_cache.delta_part(open_opportunities, i, parts),
                   dashboard_cache.delta_part(pipeline, i, parts), dashboard_cache.delta_part(won_value, i, parts),
                   dashboard_cache.delta_part(activities, i, parts)
              FROM split
            RETURNING 1
        )
        SELECT count(*) FROM drift $sql$, scope, CASE WHEN p_tenant IS NULL THEN 'no_tenant' ELSE 'tenant' END)
    INTO drifted USING p_tenant, horizon;
    IF p_tenant IS NOT NULL THEN
        drifted := drifted + dashboard_cache.scope_stats_repair(p_tenant, horizon);
    END IF;
    IF drifted > 0 THEN
        INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, changes) VALUES (p_tenant, false, 1);
    END IF;
    RETURN drifted;
END
$$;

-- After writes that bypassed the triggers (session_replication_role = replica, pg_restore, COPY or
-- bulk loads with triggers disabled): repairs every tenant's stats and the rows without a tenant, and
-- moves every version. Returns the number of drifted groups found.
CREATE FUNCTION dashboard_cache.bundle_stats_resync() RETURNS int8
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    total int8 := 0;
    each_tenant uuid;
BEGIN
    FOR each_tenant IN SELECT id FROM dashboard_cache.tenants ORDER BY id LOOP
        total := total + dashboard_cache.bundle_stats_repair(each_tenant);
    END LOOP;
    total := total + dashboard_cache.bundle_stats_repair(NULL);
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, epoch, changes) VALUES (NULL, false, true, 1);
    RETURN total;
END
$$;

REVOKE ALL ON FUNCTION dashboard_cache.bundle_stats_compact(integer), dashboard_cache.bundle_stats_repair(uuid),
    dashboard_cache.bundle_stats_resync(), dashboard_cache.lock_tenant_repair(uuid) FROM PUBLIC;

RESET ROLE;
