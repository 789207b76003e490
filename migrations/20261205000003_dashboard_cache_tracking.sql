-- The change-tracking trigger functions, and the views that name the CRM's tables.
--
-- One schema rule: functions name only objects of `dashboard_cache`, schema-qualified, and run with
-- `search_path = pg_catalog, pg_temp` (pg_temp last and explicit: otherwise PostgreSQL searches the
-- session's temporary schema first, and any role may create temporary tables). The CRM's tables are
-- named only in views of `dashboard_cache`, which PostgreSQL binds to the tables when this migration
-- runs (in the migration's schema). Transition tables (`new_rows`, `old_rows`) cannot be shadowed.
--
-- The trigger functions are SECURITY DEFINER, owned by dashboard_cache_owner (which holds rights on
-- this schema's tables only), with EXECUTE revoked from PUBLIC: a CRM writer needs no right here.
-- The triggers themselves are created by the install migration, one table at a time.
SET LOCAL ROLE dashboard_cache_owner;

DO $do$
DECLARE
    tables text[] := ARRAY['contacts', 'accounts', 'leads', 'opportunities', 'activities'];
    -- Each row's contribution to the bundle: the single definition the triggers, the backfill and
    -- the exactness check share (the same predicates as the full-scan SQL in shared/src/bundle_query.rs).
    finite text := '(amount <> ''NaN''::numeric AND amount > ''-Infinity''::numeric AND amount < ''Infinity''::numeric)';
    open_stage text := '(stage IS NULL OR stage NOT IN (''won'', ''closed_won'', ''lost'', ''closed_lost''))';
    won_stage text := '(stage IN (''won'', ''closed_won''))';
    projections text[];
    cols text := 'contacts, accounts, leads, open_leads, opportunities, won_opportunities, open_opportunities, pipeline, won_value, activities';
    head text := 'tenant_id, is_test_data IS TRUE AS is_test, ';
    no_ts text := 'NULL::timestamptz AS ts, ';
    day_ts text := 'coalesce(created_date, created_at) AS ts, ';
    zero_sums text := '0::numeric AS pipeline, 0::numeric AS won_value, ';
    rows_view text := '';
    t text;
    i int;
    source text;
    body text;
    op text;
BEGIN
    projections := ARRAY[
        head || no_ts || '1 AS contacts, 0 AS accounts, 0 AS leads, 0 AS open_leads, 0 AS opportunities,
            0 AS won_opportunities, 0 AS open_opportunities, ' || zero_sums || '0 AS activities',
        head || no_ts || '0 AS contacts, 1 AS accounts, 0 AS leads, 0 AS open_leads, 0 AS opportunities,
            0 AS won_opportunities, 0 AS open_opportunities, ' || zero_sums || '0 AS activities',
        head || day_ts || '0 AS contacts, 0 AS accounts, 1 AS leads,
            CASE WHEN status IS NULL OR status NOT IN (''converted'', ''lost'') THEN 1 ELSE 0 END AS open_leads,
            0 AS opportunities, 0 AS won_opportunities, 0 AS open_opportunities, ' || zero_sums || '0 AS activities',
        head || no_ts || '0 AS contacts, 0 AS accounts, 0 AS leads, 0 AS open_leads, 1 AS opportunities,
            CASE WHEN ' || won_stage || ' THEN 1 ELSE 0 END AS won_opportunities,
            CASE WHEN ' || open_stage || ' THEN 1 ELSE 0 END AS open_opportunities,
            CASE WHEN ' || open_stage || ' AND ' || finite || ' THEN amount ELSE 0 END AS pipeline,
            CASE WHEN ' || won_stage || ' AND ' || finite || ' THEN amount ELSE 0 END AS won_value,
            0 AS activities',
        head || day_ts || '0 AS contacts, 0 AS accounts, 0 AS leads, 0 AS open_leads, 0 AS opportunities,
            0 AS won_opportunities, 0 AS open_opportunities, ' || zero_sums || '1 AS activities'
    ];

    -- Every CRM row's contribution, and the full recomputation grouped as the base rows are: the slow
    -- way. security_invoker: whoever reads them needs SELECT on the CRM tables themselves.
    FOR i IN 1 .. 5 LOOP
        rows_view := rows_view || CASE WHEN i > 1 THEN ' UNION ALL ' ELSE '' END
                  || 'SELECT ' || projections[i] || ' FROM ' || tables[i];
    END LOOP;
    EXECUTE 'CREATE VIEW dashboard_cache.bundle_stats_rows WITH (security_invoker = true) AS ' || rows_view;
    EXECUTE 'CREATE VIEW dashboard_cache.bundle_stats_truth WITH (security_invoker = true) AS
        SELECT tenant_id, is_test, NULL::timestamptz AS bucket,
               sum(contacts)::int8 AS contacts, sum(accounts)::int8 AS accounts, sum(leads)::int8 AS leads,
               sum(open_leads)::int8 AS open_leads, sum(opportunities)::int8 AS opportunities,
               sum(won_opportunities)::int8 AS won_opportunities,
               sum(open_opportunities)::int8 AS open_opportunities,
               sum(pipeline) AS pipeline, sum(won_value) AS won_value, sum(activities)::int8 AS activities
          FROM dashboard_cache.bundle_stats_rows GROUP BY tenant_id, is_test
        UNION ALL
        SELECT tenant_id, is_test, dashboard_cache.bundle_bucket(ts), 0, 0, sum(leads)::int8, 0, 0, 0, 0, 0, 0,
               sum(activities)::int8
          FROM dashboard_cache.bundle_stats_rows WHERE ts IS NOT NULL
         GROUP BY tenant_id, is_test, dashboard_cache.bundle_bucket(ts)';

    FOR i IN 1 .. 5 LOOP
        t := tables[i];
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            source := CASE op
                WHEN 'insert' THEN 'SELECT 1 AS s, ' || projections[i] || ' FROM new_rows'
                WHEN 'delete' THEN 'SELECT -1 AS s, ' || projections[i] || ' FROM old_rows'
                ELSE 'SELECT 1 AS s, ' || projections[i] || ' FROM new_rows UNION ALL SELECT -1 AS s, '
                     || projections[i] || ' FROM old_rows'
            END;
            body := 'WITH r AS (' || source || ')
                INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, ' || cols || ')
                SELECT tenant_id, is_test, NULL, 1, sum(s * contacts), sum(s * accounts), sum(s * leads),
                       sum(s * open_leads), sum(s * opportunities), sum(s * won_opportunities),
                       sum(s * open_opportunities), sum(s * pipeline), sum(s * won_value), sum(s * activities)
                  FROM r GROUP BY tenant_id, is_test';
            IF t IN ('leads', 'activities') THEN
                body := body || '
                UNION ALL
                SELECT tenant_id, is_test, dashboard_cache.bundle_bucket(ts), 0, 0, 0, sum(s * leads), 0, 0, 0, 0,
                       0, 0, sum(s * activities)
                  FROM r GROUP BY tenant_id, is_test, dashboard_cache.bundle_bucket(ts)
                HAVING sum(s * leads) <> 0 OR sum(s * activities) <> 0';
            END IF;
            EXECUTE format(
                'CREATE FUNCTION dashboard_cache.track_%1$s_%2$s() RETURNS trigger
                 LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
                 BEGIN
                     %3$s;
                     RETURN NULL;
                 END $f$', t, op, body);
            EXECUTE format('REVOKE ALL ON FUNCTION dashboard_cache.track_%1$s_%2$s() FROM PUBLIC', t, op);
        END LOOP;

        -- TRUNCATE has no transition table. It holds an ACCESS EXCLUSIVE lock, so every earlier write to
        -- the table has committed, and in READ COMMITTED each statement here sees them all: the table's
        -- part of the maintained stats is cancelled by negating what is visible, and the epoch moves
        -- every version. An older snapshot (REPEATABLE READ, SERIALIZABLE) may miss writes committed
        -- just before the lock, which would leave the counters wrong for good: refused.
        body := CASE t
            WHEN 'contacts' THEN 'contacts'
            WHEN 'accounts' THEN 'accounts'
            WHEN 'leads' THEN 'leads, open_leads'
            WHEN 'opportunities' THEN 'opportunities, won_opportunities, open_opportunities, pipeline, won_value'
            ELSE 'activities'
        END;
        EXECUTE format(
            'CREATE FUNCTION dashboard_cache.track_%1$s_truncate() RETURNS trigger
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
             BEGIN
                 IF current_setting(''transaction_isolation'') <> ''read committed'' THEN
                     RAISE EXCEPTION ''TRUNCATE %%.%% refused in a %% transaction'', TG_TABLE_SCHEMA, TG_TABLE_NAME,
                           current_setting(''transaction_isolation'')
                         USING ERRCODE = ''0A000'',
                               HINT = ''The dashboard counters follow a TRUNCATE only when it sees every committed write: run it in a READ COMMITTED transaction (the default).'';
                 END IF;
                 INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, epoch, changes)
                 VALUES (NULL, false, true, 1);
                 INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, %2$s)
                 SELECT tenant_id, is_test, bucket, %3$s
                   FROM (SELECT tenant_id, is_test, bucket, %2$s
                           FROM dashboard_cache.bundle_stats_base WHERE kind IN (0, 1)
                         UNION ALL
                         SELECT tenant_id, is_test, bucket, %2$s
                           FROM dashboard_cache.bundle_stats_delta WHERE NOT epoch) AS kept
                  GROUP BY tenant_id, is_test, bucket
                 HAVING %4$s;
                 RETURN NULL;
             END $f$',
            t, body,
            (SELECT string_agg(format('-sum(%s)', c), ', ') FROM unnest(string_to_array(body, ', ')) AS c),
            (SELECT string_agg(format('sum(%s) <> 0', c), ' OR ') FROM unnest(string_to_array(body, ', ')) AS c));
        EXECUTE format('REVOKE ALL ON FUNCTION dashboard_cache.track_%1$s_truncate() FROM PUBLIC', t);
    END LOOP;
END
$do$;

-- A tenant's zone decides its bundle's 30-day window and its freshness day: changing `timezone` moves
-- the tenant's data version, so a cached bundle of the old day is recomputed at the next check instead
-- of being revalidated as current. One delta row, as every other change (no shared row is locked).
CREATE FUNCTION dashboard_cache.track_tenant_timezone() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, changes)
    SELECT n.id, false, 1
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE n.timezone IS DISTINCT FROM o.timezone;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_tenant_timezone() FROM PUBLIC;

-- The CRM's tenants, for functions that loop over them.
CREATE VIEW dashboard_cache.tenants WITH (security_invoker = true) AS SELECT id FROM tenant;

-- Tables whose rows the triggers never see: inheritance children and partitions of the five CRM tables
-- (a statement on a child fires the child's triggers, not the parent's). The exactness check of each
-- warm run reports them by name.
CREATE VIEW dashboard_cache.untracked_tables WITH (security_invoker = true) AS
WITH RECURSIVE child (relid, parent) AS (
    SELECT i.inhrelid, i.inhparent
      FROM pg_catalog.pg_inherits i
     WHERE i.inhparent IN ('contacts'::regclass, 'accounts'::regclass, 'leads'::regclass,
                           'opportunities'::regclass, 'activities'::regclass)
    UNION
    SELECT i.inhrelid, c.parent
      FROM pg_catalog.pg_inherits i JOIN child c ON i.inhparent = c.relid
)
SELECT relid::regclass::text AS table_name, parent::regclass::text AS parent
  FROM child;

RESET ROLE;
