-- Removes the dashboard bundle cache from a CRM database: every trigger, function, view, table, index
-- and column its migrations installed, and their record in _sqlx_migrations. The CRM's own tables and
-- their rows stay as they are. Run it as the role that migrated, with psql (the index drops run
-- outside a transaction, so not through a migration tool):
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f scripts/uninstall.sql
--
-- Each step waits at most a second for its lock (dropping a trigger or a column takes ACCESS EXCLUSIVE
-- on that CRM table for a moment): when one gives up, run the script again; what is gone stays gone.
SET lock_timeout = '1s';

-- The triggers first, one table at a time, each in its own short transaction.
DROP TRIGGER IF EXISTS contacts_bundle_insert ON contacts;
DROP TRIGGER IF EXISTS contacts_bundle_update ON contacts;
DROP TRIGGER IF EXISTS contacts_bundle_delete ON contacts;
DROP TRIGGER IF EXISTS contacts_bundle_truncate ON contacts;
DROP TRIGGER IF EXISTS accounts_bundle_insert ON accounts;
DROP TRIGGER IF EXISTS accounts_bundle_update ON accounts;
DROP TRIGGER IF EXISTS accounts_bundle_delete ON accounts;
DROP TRIGGER IF EXISTS accounts_bundle_truncate ON accounts;
DROP TRIGGER IF EXISTS leads_bundle_insert ON leads;
DROP TRIGGER IF EXISTS leads_bundle_update ON leads;
DROP TRIGGER IF EXISTS leads_bundle_delete ON leads;
DROP TRIGGER IF EXISTS leads_bundle_truncate ON leads;
DROP TRIGGER IF EXISTS opportunities_bundle_insert ON opportunities;
DROP TRIGGER IF EXISTS opportunities_bundle_update ON opportunities;
DROP TRIGGER IF EXISTS opportunities_bundle_delete ON opportunities;
DROP TRIGGER IF EXISTS opportunities_bundle_truncate ON opportunities;
DROP TRIGGER IF EXISTS activities_bundle_insert ON activities;
DROP TRIGGER IF EXISTS activities_bundle_update ON activities;
DROP TRIGGER IF EXISTS activities_bundle_delete ON activities;
DROP TRIGGER IF EXISTS activities_bundle_truncate ON activities;
DROP TRIGGER IF EXISTS tenant_timezone_version ON tenant;
DROP TRIGGER IF EXISTS contacts_scopes_insert ON contacts;
DROP TRIGGER IF EXISTS contacts_scopes_update ON contacts;
DROP TRIGGER IF EXISTS contacts_scopes_delete ON contacts;
DROP TRIGGER IF EXISTS contacts_scopes_truncate ON contacts;
DROP TRIGGER IF EXISTS accounts_scopes_insert ON accounts;
DROP TRIGGER IF EXISTS accounts_scopes_update ON accounts;
DROP TRIGGER IF EXISTS accounts_scopes_delete ON accounts;
DROP TRIGGER IF EXISTS accounts_scopes_truncate ON accounts;
DROP TRIGGER IF EXISTS leads_scopes_insert ON leads;
DROP TRIGGER IF EXISTS leads_scopes_update ON leads;
DROP TRIGGER IF EXISTS leads_scopes_delete ON leads;
DROP TRIGGER IF EXISTS leads_scopes_truncate ON leads;
DROP TRIGGER IF EXISTS opportunities_scopes_insert ON opportunities;
DROP TRIGGER IF EXISTS opportunities_scopes_update ON opportunities;
DROP TRIGGER IF EXISTS opportunities_scopes_delete ON opportunities;
DROP TRIGGER IF EXISTS opportunities_scopes_truncate ON opportunities;
DROP TRIGGER IF EXISTS activities_scopes_insert ON activities;
DROP TRIGGER IF EXISTS activities_scopes_update ON activities;
DROP TRIGGER IF EXISTS activities_scopes_delete ON activities;
DROP TRIGGER IF EXISTS activities_scopes_truncate ON activities;
DROP TRIGGER IF EXISTS team_members_version_insert ON team_members;
DROP TRIGGER IF EXISTS team_members_version_update ON team_members;
DROP TRIGGER IF EXISTS team_members_version_delete ON team_members;
DROP TRIGGER IF EXISTS team_members_version_truncate ON team_members;
DROP TRIGGER IF EXISTS cron_job_schedule ON cron_job;

-- The product's own objects: nothing of the CRM depends on them.
DROP SCHEMA IF EXISTS dashboard_cache CASCADE;
DROP TABLE IF EXISTS tenant_warm_state, cache_warm_run;
-- The warm job's row; the table too if the product created it and it holds no other job (a CRM's own
-- cron_job keeps its rows, and the two columns and the unique index the product added to it).
DO $$
BEGIN
    IF to_regclass('cron_job') IS NOT NULL THEN
        DELETE FROM cron_job WHERE function_name = 'warmDashboardBundleCache';
        IF obj_description('cron_job'::regclass, 'pg_class') = 'created by the dashboard bundle cache'
           AND NOT EXISTS (SELECT FROM cron_job) THEN
            DROP TABLE cron_job;
        END IF;
    END IF;
END
$$;

-- The columns it added to the CRM's tenant table (a tenant's zone and warm hour: the product's data).
ALTER TABLE tenant DROP COLUMN IF EXISTS timezone, DROP COLUMN IF EXISTS warm_hour;

-- The bundle's list indexes on the CRM tables, without blocking writers.
DROP INDEX CONCURRENTLY IF EXISTS activities_tenant_recent_idx;
DROP INDEX CONCURRENTLY IF EXISTS leads_tenant_recent_idx;
DROP INDEX CONCURRENTLY IF EXISTS opportunities_tenant_recent_idx;
DROP INDEX CONCURRENTLY IF EXISTS activities_recent_idx;
DROP INDEX CONCURRENTLY IF EXISTS leads_recent_idx;
DROP INDEX CONCURRENTLY IF EXISTS opportunities_recent_idx;
DROP INDEX CONCURRENTLY IF EXISTS activities_assignee_recent_idx;
DROP INDEX CONCURRENTLY IF EXISTS leads_assignee_recent_idx;
DROP INDEX CONCURRENTLY IF EXISTS opportunities_assignee_recent_idx;

-- The migration record. The CRM's own tables (migrations/20261124000001_crm_schema.sql, team_members
-- included) stay: they were the CRM's before the product came.
DROP TABLE IF EXISTS _sqlx_migrations;

-- The owner role belongs to the cluster: it goes once no other database has the product installed.
DO $$
BEGIN
    DROP ROLE IF EXISTS dashboard_cache_owner;
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'dashboard_cache_owner kept: another database of this cluster still has the product installed';
END
$$;
