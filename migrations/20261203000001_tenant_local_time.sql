-- A tenant's own day. `timezone`: an IANA name (NULL = UTC); the bundle's 30-day figures, its
-- freshness day and the local-mode warm time count in it. A name the functions do not know is
-- counted as UTC and reported by the warmer (it is not refused here: Postgres's zone list and the
-- functions' can differ by a release). `warm_hour`: the local hour `WARM_MODE=local` warms this
-- tenant at (NULL = `WARM_LOCAL_HOUR`).
ALTER TABLE tenant ADD COLUMN timezone text CHECK (timezone IS NULL OR length(timezone) <= 64);
ALTER TABLE tenant ADD COLUMN warm_hour smallint CHECK (warm_hour BETWEEN 0 AND 23);

-- When the warmer last stored a tenant's bundles (a run that failed for it leaves the previous time,
-- so the next hourly run catches it up).
CREATE TABLE tenant_warm_state (
    tenant_id      uuid PRIMARY KEY REFERENCES tenant (id) ON DELETE CASCADE,
    last_warmed_at timestamptz NOT NULL
);

-- What each run did and why it left tenants alone.
ALTER TABLE cache_warm_run ADD COLUMN mode text;
ALTER TABLE cache_warm_run ADD COLUMN tenants_warmed integer NOT NULL DEFAULT 0;
ALTER TABLE cache_warm_run ADD COLUMN tenants_skipped integer NOT NULL DEFAULT 0;
-- {"not_due": n, "idle": n, "not_expected": n}: tenants a run looked at and did not warm, by reason.
ALTER TABLE cache_warm_run ADD COLUMN skip_reasons jsonb NOT NULL DEFAULT '{}';
-- Tenants whose timezone is not a known IANA name (counted in UTC).
ALTER TABLE cache_warm_run ADD COLUMN invalid_zones integer NOT NULL DEFAULT 0;
ALTER TABLE cache_warm_run ADD COLUMN global_warmed boolean;
