-- The EventBridge Scheduler execution a scheduled run serves: a retry of the same execution (Lambda's
-- async retry after a timeout) finds the earlier attempt and does not redo its work.
ALTER TABLE cache_warm_run ADD COLUMN execution_id text;
CREATE INDEX cache_warm_run_execution_idx ON cache_warm_run (execution_id) WHERE execution_id IS NOT NULL;
-- Tenants such a retry found already warmed by the earlier attempt.
ALTER TABLE cache_warm_run ADD COLUMN skipped_fresh integer NOT NULL DEFAULT 0;
-- Whether the run did something (an attempt that warmed nothing returns an error so it is retried).
ALTER TABLE cache_warm_run ADD COLUMN succeeded boolean;
