-- One row per warm-cache invocation, inserted when it starts (a run that died shows finished_at NULL)
-- and completed when it ends: what it did, and why it left tenants alone.
CREATE TABLE cache_warm_run (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    trigger           text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'chunk')),
    -- The scheduled run that published this chunk. Not a foreign key: a chunk whose parent's row was
    -- deleted meanwhile still warms, and still says which run it belongs to.
    parent_run_id     uuid,
    -- The EventBridge Scheduler execution a scheduled run serves: a retry of the same execution
    -- (Lambda's async retry after a timeout) finds the earlier attempt and does not redo its work.
    execution_id      text,
    mode              text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    -- Whether the run did something (an attempt that warmed nothing returns an error so it is retried).
    succeeded         boolean,
    tenants_total     integer NOT NULL DEFAULT 0,
    tenants_warmed    integer NOT NULL DEFAULT 0,
    tenants_skipped   integer NOT NULL DEFAULT 0,
    -- {"not_due": n, "idle": n, "not_expected": n}: tenants a run looked at and did not warm, by reason.
    skip_reasons      jsonb NOT NULL DEFAULT '{}',
    -- Tenants whose timezone is not a known IANA name (counted in UTC).
    invalid_zones     integer NOT NULL DEFAULT 0,
    global_warmed     boolean,
    bundles_warmed    integer NOT NULL DEFAULT 0,
    failures          integer NOT NULL DEFAULT 0,
    skipped_deadline  integer NOT NULL DEFAULT 0,
    -- Tenants a retry of the same execution found already warmed by the earlier attempt.
    skipped_fresh     integer NOT NULL DEFAULT 0,
    chunks_published  integer NOT NULL DEFAULT 0,
    -- What the upkeep of the maintained counters did: deltas folded, tenants checked against a full
    -- recomputation, tenants found drifted (and repaired), and tables whose rows the change tracking
    -- cannot see (inheritance children and partitions of the CRM tables).
    deltas_compacted  bigint NOT NULL DEFAULT 0,
    stats_checked     integer NOT NULL DEFAULT 0,
    stats_drifted     integer NOT NULL DEFAULT 0,
    untracked_tables  text[] NOT NULL DEFAULT '{}',
    error_summary     text,
    -- Why a firing of the schedule did nothing (the job is off: `cron_job.is_active` is false).
    skipped           text
);
CREATE INDEX cache_warm_run_started_at_idx ON cache_warm_run (started_at DESC);
CREATE INDEX cache_warm_run_execution_idx ON cache_warm_run (execution_id) WHERE execution_id IS NOT NULL;
