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

-- Every CRM row's contribution to the bundle, and the full recomputation grouped as the base rows
-- are: the slow way, read by repair and the exactness check (the same predicates as the full-scan SQL
-- in shared/src/bundle_query.rs and as the trigger functions below). security_invoker: whoever reads
-- them needs SELECT on the CRM tables themselves.
CREATE VIEW dashboard_cache.bundle_stats_rows WITH (security_invoker = true) AS
SELECT tenant_id, is_test_data IS TRUE AS is_test, NULL::timestamptz AS ts,
       1 AS contacts, 0 AS accounts, 0 AS leads, 0 AS open_leads, 0 AS opportunities, 0 AS won_opportunities,
       0 AS open_opportunities, 0::numeric AS pipeline, 0::numeric AS won_value, 0 AS activities
  FROM contacts
UNION ALL
SELECT tenant_id, is_test_data IS TRUE, NULL, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0
  FROM accounts
UNION ALL
SELECT tenant_id, is_test_data IS TRUE, coalesce(created_date, created_at), 0, 0, 1,
       CASE WHEN (status IS NULL OR status NOT IN ('converted', 'lost')) THEN 1 ELSE 0 END, 0, 0, 0, 0, 0, 0
  FROM leads
UNION ALL
SELECT tenant_id, is_test_data IS TRUE, NULL, 0, 0, 0, 0, 1,
       CASE WHEN stage IN ('won', 'closed_won') THEN 1 ELSE 0 END,
       CASE WHEN (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost')) THEN 1 ELSE 0 END,
       CASE WHEN (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost')) AND (amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity') THEN amount ELSE 0 END,
       CASE WHEN stage IN ('won', 'closed_won') AND (amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity') THEN amount ELSE 0 END,
       0
  FROM opportunities
UNION ALL
SELECT tenant_id, is_test_data IS TRUE, coalesce(created_date, created_at), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
  FROM activities;

CREATE VIEW dashboard_cache.bundle_stats_truth WITH (security_invoker = true) AS
SELECT tenant_id, is_test, NULL::timestamptz AS bucket,
       sum(contacts)::int8 AS contacts, sum(accounts)::int8 AS accounts, sum(leads)::int8 AS leads,
       sum(open_leads)::int8 AS open_leads, sum(opportunities)::int8 AS opportunities,
       sum(won_opportunities)::int8 AS won_opportunities, sum(open_opportunities)::int8 AS open_opportunities,
       sum(pipeline) AS pipeline, sum(won_value) AS won_value, sum(activities)::int8 AS activities
  FROM dashboard_cache.bundle_stats_rows
 GROUP BY tenant_id, is_test
UNION ALL
SELECT tenant_id, is_test, dashboard_cache.bundle_bucket(ts), 0, 0, sum(leads)::int8, 0, 0, 0, 0, 0, 0,
       sum(activities)::int8
  FROM dashboard_cache.bundle_stats_rows
 WHERE ts IS NOT NULL
 GROUP BY tenant_id, is_test, dashboard_cache.bundle_bucket(ts);

-- The trigger functions, one per table and operation, each one statement that appends, per touched
-- (tenant, test-data flag), a totals row (`changes = 1`, the statement's effect on that table's
-- counters) and, for leads and activities, a row per touched 15-minute bucket. Inserts and deletes
-- count the transition table directly; updates net the new rows against the old ones, so an update
-- that moves a row between tenants, flags, stages or buckets moves exactly those counters.

-- contacts and accounts: a count each.
CREATE FUNCTION dashboard_cache.track_contacts_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, contacts)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           count(*)
      FROM new_rows GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_contacts_insert() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_contacts_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, contacts)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           -count(*)
      FROM old_rows GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_contacts_delete() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_contacts_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH r AS (
        SELECT 1 AS s, tenant_id, is_test_data IS TRUE AS is_test FROM new_rows
        UNION ALL
        SELECT -1, tenant_id, is_test_data IS TRUE FROM old_rows
    )
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, contacts)
    SELECT tenant_id, is_test, NULL, 1, sum(s) FROM r GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_contacts_update() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_accounts_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, accounts)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           count(*)
      FROM new_rows GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_accounts_insert() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_accounts_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, accounts)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           -count(*)
      FROM old_rows GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_accounts_delete() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_accounts_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH r AS (
        SELECT 1 AS s, tenant_id, is_test_data IS TRUE AS is_test FROM new_rows
        UNION ALL
        SELECT -1, tenant_id, is_test_data IS TRUE FROM old_rows
    )
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, accounts)
    SELECT tenant_id, is_test, NULL, 1, sum(s) FROM r GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_accounts_update() FROM PUBLIC;

-- leads: leads and open leads, and each lead in the bucket of its day.
CREATE FUNCTION dashboard_cache.track_leads_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, leads, open_leads)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           count(*),
           count(*) FILTER (WHERE (status IS NULL OR status NOT IN ('converted', 'lost')))
      FROM new_rows GROUP BY 1, 2
    UNION ALL
    SELECT tenant_id, is_test_data IS TRUE, dashboard_cache.bundle_bucket(coalesce(created_date, created_at)), 0,
           count(*), 0
      FROM new_rows GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_leads_insert() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_leads_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, leads, open_leads)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           -count(*),
           -count(*) FILTER (WHERE (status IS NULL OR status NOT IN ('converted', 'lost')))
      FROM old_rows GROUP BY 1, 2
    UNION ALL
    SELECT tenant_id, is_test_data IS TRUE, dashboard_cache.bundle_bucket(coalesce(created_date, created_at)), 0,
           -count(*), 0
      FROM old_rows GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_leads_delete() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_leads_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH r AS (
        SELECT 1 AS s, tenant_id, is_test_data IS TRUE AS is_test, status, coalesce(created_date, created_at) AS ts
          FROM new_rows
        UNION ALL
        SELECT -1, tenant_id, is_test_data IS TRUE, status, coalesce(created_date, created_at) FROM old_rows
    )
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, leads, open_leads)
    SELECT tenant_id, is_test, NULL, 1, sum(s), coalesce(sum(s) FILTER (WHERE (status IS NULL OR status NOT IN ('converted', 'lost'))), 0)
      FROM r GROUP BY 1, 2
    UNION ALL
    SELECT tenant_id, is_test, dashboard_cache.bundle_bucket(ts), 0, sum(s), 0
      FROM r GROUP BY 1, 2, 3 HAVING sum(s) <> 0;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_leads_update() FROM PUBLIC;

-- opportunities: counts by stage and the pipeline and won sums (NaN and infinite amounts in no sum).
CREATE FUNCTION dashboard_cache.track_opportunities_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, opportunities, won_opportunities, open_opportunities, pipeline, won_value)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           count(*),
           count(*) FILTER (WHERE stage IN ('won', 'closed_won')),
           count(*) FILTER (WHERE (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'))),
           coalesce(sum(amount) FILTER (WHERE (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'))
                                       AND amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity'), 0),
           coalesce(sum(amount) FILTER (WHERE stage IN ('won', 'closed_won') AND amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity'), 0)
      FROM new_rows GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_opportunities_insert() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_opportunities_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, opportunities, won_opportunities, open_opportunities, pipeline, won_value)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           -count(*),
           -count(*) FILTER (WHERE stage IN ('won', 'closed_won')),
           -count(*) FILTER (WHERE (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'))),
           -coalesce(sum(amount) FILTER (WHERE (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'))
                                       AND amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity'), 0),
           -coalesce(sum(amount) FILTER (WHERE stage IN ('won', 'closed_won') AND amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity'), 0)
      FROM old_rows GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_opportunities_delete() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_opportunities_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH r AS (
        SELECT 1 AS s, tenant_id, is_test_data IS TRUE AS is_test, stage, amount FROM new_rows
        UNION ALL
        SELECT -1, tenant_id, is_test_data IS TRUE, stage, amount FROM old_rows
    )
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, opportunities, won_opportunities, open_opportunities, pipeline, won_value)
    SELECT tenant_id, is_test, NULL, 1, sum(s),
           coalesce(sum(s) FILTER (WHERE stage IN ('won', 'closed_won')), 0),
           coalesce(sum(s) FILTER (WHERE (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'))), 0),
           coalesce(sum(s * amount) FILTER (WHERE (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'))
                                            AND amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity'), 0),
           coalesce(sum(s * amount) FILTER (WHERE stage IN ('won', 'closed_won') AND amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity'), 0)
      FROM r GROUP BY 1, 2;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_opportunities_update() FROM PUBLIC;

-- activities: a count, and each activity in the bucket of its day.
CREATE FUNCTION dashboard_cache.track_activities_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, activities)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           count(*)
      FROM new_rows GROUP BY 1, 2
    UNION ALL
    SELECT tenant_id, is_test_data IS TRUE, dashboard_cache.bundle_bucket(coalesce(created_date, created_at)), 0,
           count(*)
      FROM new_rows GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_activities_insert() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_activities_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, activities)
    SELECT tenant_id, is_test_data IS TRUE, NULL, 1,
           -count(*)
      FROM old_rows GROUP BY 1, 2
    UNION ALL
    SELECT tenant_id, is_test_data IS TRUE, dashboard_cache.bundle_bucket(coalesce(created_date, created_at)), 0,
           -count(*)
      FROM old_rows GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_activities_delete() FROM PUBLIC;

CREATE FUNCTION dashboard_cache.track_activities_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH r AS (
        SELECT 1 AS s, tenant_id, is_test_data IS TRUE AS is_test, coalesce(created_date, created_at) AS ts
          FROM new_rows
        UNION ALL
        SELECT -1, tenant_id, is_test_data IS TRUE, coalesce(created_date, created_at) FROM old_rows
    )
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, changes, activities)
    SELECT tenant_id, is_test, NULL, 1, sum(s) FROM r GROUP BY 1, 2
    UNION ALL
    SELECT tenant_id, is_test, dashboard_cache.bundle_bucket(ts), 0, sum(s)
      FROM r GROUP BY 1, 2, 3 HAVING sum(s) <> 0;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_activities_update() FROM PUBLIC;

-- TRUNCATE has no transition table. It holds an ACCESS EXCLUSIVE lock, so every earlier write to the
-- table has committed, and in READ COMMITTED each statement here sees them all: the table's part of the
-- maintained stats is cancelled by negating what is visible, and the epoch moves every version. An
-- older snapshot (REPEATABLE READ, SERIALIZABLE) may miss writes committed just before the lock, which
-- would leave the counters wrong for good: refused. One function for the five tables.
CREATE FUNCTION dashboard_cache.track_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text := TG_TABLE_NAME;
BEGIN
    IF t NOT IN ('contacts', 'accounts', 'leads', 'opportunities', 'activities') THEN
        RAISE EXCEPTION 'dashboard_cache.track_truncate does not track %', TG_TABLE_NAME;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'TRUNCATE %.% refused in a % transaction', TG_TABLE_SCHEMA, TG_TABLE_NAME,
              current_setting('transaction_isolation')
            USING ERRCODE = '0A000',
                  HINT = 'The dashboard counters follow a TRUNCATE only when it sees every committed write: run it in a READ COMMITTED transaction (the default).';
    END IF;
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, epoch, changes) VALUES (NULL, false, true, 1);
    INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, bucket, contacts, accounts, leads, open_leads,
                opportunities, won_opportunities, open_opportunities, pipeline, won_value, activities)
    SELECT tenant_id, is_test, bucket,
           CASE WHEN t = 'contacts' THEN -sum(contacts) ELSE 0 END,
           CASE WHEN t = 'accounts' THEN -sum(accounts) ELSE 0 END,
           CASE WHEN t = 'leads' THEN -sum(leads) ELSE 0 END,
           CASE WHEN t = 'leads' THEN -sum(open_leads) ELSE 0 END,
           CASE WHEN t = 'opportunities' THEN -sum(opportunities) ELSE 0 END,
           CASE WHEN t = 'opportunities' THEN -sum(won_opportunities) ELSE 0 END,
           CASE WHEN t = 'opportunities' THEN -sum(open_opportunities) ELSE 0 END,
           CASE WHEN t = 'opportunities' THEN -sum(pipeline) ELSE 0 END,
           CASE WHEN t = 'opportunities' THEN -sum(won_value) ELSE 0 END,
           CASE WHEN t = 'activities' THEN -sum(activities) ELSE 0 END
      FROM (SELECT tenant_id, is_test, bucket, contacts, accounts, leads, open_leads, opportunities,
                   won_opportunities, open_opportunities, pipeline, won_value, activities
              FROM dashboard_cache.bundle_stats_base WHERE kind IN ('tenant', 'no_tenant')
            UNION ALL
            SELECT tenant_id, is_test, bucket, contacts, accounts, leads, open_leads, opportunities,
                   won_opportunities, open_opportunities, pipeline, won_value, activities
              FROM dashboard_cache.bundle_stats_delta WHERE NOT epoch) AS kept
     GROUP BY tenant_id, is_test, bucket
    HAVING CASE t
             WHEN 'contacts' THEN sum(contacts) <> 0
             WHEN 'accounts' THEN sum(accounts) <> 0
             WHEN 'leads' THEN sum(leads) <> 0 OR sum(open_leads) <> 0
             WHEN 'opportunities' THEN sum(opportunities) <> 0 OR sum(won_opportunities) <> 0
                  OR sum(open_opportunities) <> 0 OR sum(pipeline) <> 0 OR sum(won_value) <> 0
             ELSE sum(activities) <> 0
           END;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.track_truncate() FROM PUBLIC;

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

-- The five CRM tables the bundle counts, bound when this migration runs.
CREATE VIEW dashboard_cache.crm_tables AS
SELECT t FROM (VALUES ('contacts'::regclass), ('accounts'::regclass), ('leads'::regclass),
                      ('opportunities'::regclass), ('activities'::regclass)) AS crm (t);

-- Tables whose rows the triggers never see: inheritance children and partitions of the five CRM tables
-- (a statement on a child fires the child's triggers, not the parent's). The exactness check of each
-- warm run reports them by name.
CREATE VIEW dashboard_cache.untracked_tables WITH (security_invoker = true) AS
WITH RECURSIVE child (relid, parent) AS (
    SELECT i.inhrelid, i.inhparent
      FROM pg_catalog.pg_inherits i JOIN dashboard_cache.crm_tables c ON i.inhparent = c.t
    UNION
    SELECT i.inhrelid, c.parent
      FROM pg_catalog.pg_inherits i JOIN child c ON i.inhparent = c.relid
)
SELECT relid::regclass::text AS table_name, parent::regclass::text AS parent
  FROM child;

RESET ROLE;
