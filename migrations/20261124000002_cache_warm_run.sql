-- One row per warm-cache invocation, inserted when it starts (a run that died shows finished_at NULL)
-- and completed when it ends.
CREATE TABLE cache_warm_run (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    trigger          text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'chunk')),
    -- The scheduled run that published this chunk.
    parent_run_id    uuid REFERENCES cache_warm_run (id) ON DELETE SET NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    tenants_total    integer NOT NULL DEFAULT 0,
    bundles_warmed   integer NOT NULL DEFAULT 0,
    failures         integer NOT NULL DEFAULT 0,
    skipped_deadline integer NOT NULL DEFAULT 0,
    chunks_published integer NOT NULL DEFAULT 0,
    error_summary    text
);
CREATE INDEX cache_warm_run_started_at_idx ON cache_warm_run (started_at DESC);
