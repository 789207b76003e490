-- The maintained bundle counters (issue 12), owned by dashboard_cache_owner.
--
-- Writers only ever INSERT into bundle_stats_delta (no upsert, no UPDATE, no row lock shared with any
-- other writer): each write statement appends, per touched (tenant, test-data flag), one totals row with
-- `changes = 1` and that statement's effect on the bundle's counters and sums, and for leads and
-- activities one row per touched 15-minute bucket of coalesce(created_date, created_at).
--
-- A reader's data version is the sum of `changes` over what its snapshot sees (base rows + unfolded
-- deltas + the epoch): rows are only ever added, so a transaction that commits late still raises every
-- later snapshot's sum, whatever the commit order (unlike max(sequence)). Its stats are the same kind
-- of sum. bundle_stats_compact() folds deltas into bundle_stats_base in one statement (every snapshot
-- sees either the deltas or the fold), serialised by a row lock on bundle_stats_horizon; storage stays
-- bounded.
SET LOCAL ROLE dashboard_cache_owner;

-- The bucket of the 30-day counts: 15-minute UTC intervals, so that a window starting at any local
-- midnight (every IANA offset is a multiple of 15 minutes) is a whole number of buckets. Timestamps
-- outside years 1000-8999 (±infinity included) go to ±infinity, which compare like the timestamps they
-- stand for with any window start inside those years; date_bin can then never overflow in a writer.
-- A SQL-standard body, bound when this migration runs, with every function, operator and type named
-- in pg_catalog: no search_path, then or later, can change what it calls.
CREATE FUNCTION dashboard_cache.bundle_bucket(ts pg_catalog.timestamptz) RETURNS pg_catalog.timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
         WHEN ts OPERATOR(pg_catalog.>=) '1000-01-01 00:00:00+00'::pg_catalog.timestamptz
          AND ts OPERATOR(pg_catalog.<) '9000-01-01 00:00:00+00'::pg_catalog.timestamptz
           THEN pg_catalog.date_bin('15 minutes'::pg_catalog.interval, ts,
                                    '1970-01-01 00:00:00+00'::pg_catalog.timestamptz)
         WHEN ts OPERATOR(pg_catalog.>=) '9000-01-01 00:00:00+00'::pg_catalog.timestamptz
           THEN 'infinity'::pg_catalog.timestamptz
         ELSE '-infinity'::pg_catalog.timestamptz
       END;

CREATE TABLE dashboard_cache.bundle_stats_delta (
    -- NULL: rows without a tenant (they count in the global view only).
    tenant_id          uuid,
    -- is_test_data IS TRUE.
    is_test            boolean NOT NULL,
    -- NULL: the totals row; else the bucket whose leads and activities this row counts.
    bucket             timestamptz,
    -- A TRUNCATE or an invalidation: `changes` moves every version.
    epoch              boolean NOT NULL DEFAULT false,
    changes            int8 NOT NULL DEFAULT 0,
    contacts           int8 NOT NULL DEFAULT 0,
    accounts           int8 NOT NULL DEFAULT 0,
    leads              int8 NOT NULL DEFAULT 0,
    open_leads         int8 NOT NULL DEFAULT 0,
    opportunities      int8 NOT NULL DEFAULT 0,
    won_opportunities  int8 NOT NULL DEFAULT 0,
    open_opportunities int8 NOT NULL DEFAULT 0,
    pipeline           numeric NOT NULL DEFAULT 0,
    won_value          numeric NOT NULL DEFAULT 0,
    activities         int8 NOT NULL DEFAULT 0
);
-- What a legitimate change looks like: versions never go back, finite sums, an epoch row moves every
-- version by one, counts stay far from int8's limits (so that no sum of them can overflow). Only the
-- trigger functions and repairs append here; this bounds what a role that may append (warm-cache,
-- for its repairs) can do: no version goes back, and what it adds to a counter the next repair undoes.
ALTER TABLE dashboard_cache.bundle_stats_delta ADD CONSTRAINT bundle_stats_delta_sane CHECK (
    changes >= 0
    AND (NOT epoch OR (tenant_id IS NULL AND changes = 1))
    AND pipeline BETWEEN -1e30 AND 1e30 AND won_value BETWEEN -1e30 AND 1e30
    AND contacts BETWEEN -1e12 AND 1e12 AND accounts BETWEEN -1e12 AND 1e12
    AND leads BETWEEN -1e12 AND 1e12 AND open_leads BETWEEN -1e12 AND 1e12
    AND opportunities BETWEEN -1e12 AND 1e12 AND won_opportunities BETWEEN -1e12 AND 1e12
    AND open_opportunities BETWEEN -1e12 AND 1e12 AND activities BETWEEN -1e12 AND 1e12
);
CREATE INDEX bundle_stats_delta_tenant_idx ON dashboard_cache.bundle_stats_delta (tenant_id, bucket);
CREATE INDEX bundle_stats_delta_epoch_idx ON dashboard_cache.bundle_stats_delta (changes) WHERE epoch;
-- Every compaction deletes what it folds: vacuumed early, so that reads of the few live deltas do not
-- wade through dead ones.
ALTER TABLE dashboard_cache.bundle_stats_delta
    SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);

-- Whose counters a base row holds.
CREATE TYPE dashboard_cache.stats_kind AS ENUM (
    'tenant',     -- one tenant's rows
    'no_tenant',  -- the rows whose tenant_id is NULL (they count in the global view only)
    'global',     -- every row: the global view then reads a few hundred rows, not one per tenant
    'epoch'       -- TRUNCATEs and invalidations: part of every version, so it also moves tenants
                  -- that have no row yet
);

CREATE TABLE dashboard_cache.bundle_stats_base (
    kind               dashboard_cache.stats_kind NOT NULL,
    tenant_id          uuid CHECK ((kind = 'tenant') = (tenant_id IS NOT NULL)),
    is_test            boolean NOT NULL,
    bucket             timestamptz,
    changes            int8 NOT NULL DEFAULT 0,
    contacts           int8 NOT NULL DEFAULT 0,
    accounts           int8 NOT NULL DEFAULT 0,
    leads              int8 NOT NULL DEFAULT 0,
    open_leads         int8 NOT NULL DEFAULT 0,
    opportunities      int8 NOT NULL DEFAULT 0,
    won_opportunities  int8 NOT NULL DEFAULT 0,
    open_opportunities int8 NOT NULL DEFAULT 0,
    pipeline           numeric NOT NULL DEFAULT 0,
    won_value          numeric NOT NULL DEFAULT 0,
    activities         int8 NOT NULL DEFAULT 0,
    -- Bucket before the flag: a 30-day count reads one index range.
    CONSTRAINT bundle_stats_base_key UNIQUE NULLS NOT DISTINCT (kind, tenant_id, bucket, is_test)
);
-- The 30-day counts read up to 2 × 96 buckets a day: an index-only range.
CREATE INDEX bundle_stats_base_recent_idx ON dashboard_cache.bundle_stats_base (kind, tenant_id, bucket)
    INCLUDE (is_test, leads, activities) WHERE bucket IS NOT NULL;
ALTER TABLE dashboard_cache.bundle_stats_base SET (autovacuum_vacuum_scale_factor = 0.02);

-- Buckets before `folded_before` have been folded into each group's -infinity bucket by compaction
-- (their leads and activities are in the totals already; only 30-day windows read buckets), so a
-- group keeps about 35 days of buckets whatever its history. A window starting earlier is counted by
-- the full scan instead (the bundle's stats statement reads this row in its own snapshot).
CREATE TABLE dashboard_cache.bundle_stats_horizon (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    folded_before timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO dashboard_cache.bundle_stats_horizon DEFAULT VALUES;

-- Repairs of one tenant wait for each other on a row here (the nil UUID for the rows without a tenant): a row
-- lock only the owner can take, where an advisory lock could be held by any role that can connect.
-- Compaction locks the horizon row the same way.
CREATE TABLE dashboard_cache.repair_lock (
    tenant_id uuid PRIMARY KEY
);

RESET ROLE;
