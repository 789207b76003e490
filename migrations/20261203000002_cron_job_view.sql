-- The warm job as the previous system's runbook queries it (`SELECT id, name, last_run, next_run,
-- metadata FROM cron_job WHERE function_name = 'warmDashboardBundleCache'`). The schedule lives in the
-- deployment (template parameters, env `WARM_SCHEDULE`); each scheduled or runbook run records it
-- here with the next time it fires.
CREATE TABLE warm_job_config (
    id                boolean PRIMARY KEY DEFAULT true CHECK (id),
    schedule          text NOT NULL,
    schedule_timezone text NOT NULL,
    next_run          timestamptz,
    settings          jsonb NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW cron_job AS
SELECT 'warm-dashboard-bundle-cache'::text AS id,
       'Warm Dashboard Bundle Cache'::text AS name,
       coalesce(c.schedule, 'cron(0 0 * * ? *)') AS schedule,
       coalesce(c.schedule_timezone, 'UTC') AS schedule_timezone,
       'warmDashboardBundleCache'::text AS function_name,
       true AS is_active,
       r.started_at AS last_run,
       c.next_run,
       coalesce(c.settings, '{}'::jsonb) || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
           'last_run_id', r.id,
           'last_trigger', r.trigger,
           'last_finished_at', r.finished_at,
           'succeeded', r.succeeded,
           'tenants_total', r.tenants_total,
           'tenants_warmed', r.tenants_warmed,
           'tenants_skipped', r.tenants_skipped,
           'skip_reasons', r.skip_reasons,
           'bundles_warmed', r.bundles_warmed,
           'failures', r.failures,
           'invalid_zones', r.invalid_zones)) AS metadata
  FROM (SELECT true AS one) o
  LEFT JOIN warm_job_config c ON c.id
  LEFT JOIN LATERAL (
        SELECT * FROM cache_warm_run
         WHERE trigger IN ('schedule', 'manual')
         ORDER BY started_at DESC LIMIT 1) r ON true;
