-- A tenant's own day. `timezone`: an IANA name (NULL = UTC); the bundle's 30-day figures, its
-- freshness day and the local-mode warm time count in it. A name the functions do not know is
-- counted as UTC and reported by the warmer (it is not refused here: Postgres's zone list and the
-- functions' can differ by a release). `warm_hour`: the local hour `WARM_MODE=local` warms this
-- tenant at (NULL = `WARM_LOCAL_HOUR`).
--
-- Adding a nullable column without a default changes only the catalog, but it needs a moment of
-- ACCESS EXCLUSIVE on the CRM's `tenant`: waiting longer than a second behind a long transaction would
-- hold every writer queued behind it, so the migration gives up instead (run it again).
SET LOCAL lock_timeout = '1s';
ALTER TABLE tenant
    ADD COLUMN timezone text CHECK (timezone IS NULL OR length(timezone) <= 64),
    ADD COLUMN warm_hour smallint CHECK (warm_hour BETWEEN 0 AND 23);

-- When the warmer last stored a tenant's bundles (a run that failed for it leaves the previous time,
-- so the next hourly run catches it up).
CREATE TABLE tenant_warm_state (
    tenant_id      uuid PRIMARY KEY REFERENCES tenant (id) ON DELETE CASCADE,
    last_warmed_at timestamptz NOT NULL
);
