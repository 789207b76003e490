-- Scoped dashboards (issue 26): the counters of each assignee of each tenant, so that an employee's
-- bundle (their records and the unassigned ones) or a team's (its members' records) costs the same at
-- any data size, plus the two breakdowns every scope shows: leads by source and opportunities by stage.
--
-- Same rules as the tenant counters (20261205000002_dashboard_cache_tables.sql): writers only append
-- to scope_stats_delta, compaction folds the deltas into scope_stats_base in one statement, repair
-- appends the difference with the tables. One narrow row per (tenant, assignee, test flag, facet,
-- label, bucket): a facet is one thing counted, its label the value it is counted by. The data version
-- stays the tenant's: every write that moves a scope moves its tenant, and so does a change of a
-- team's members (track_team_members below).
SET LOCAL ROLE dashboard_cache_owner;

-- The UTC day of a timestamp, with bundle_bucket's range rule. A 30-day window counts the total minus
-- the days before its first UTC midnight (those since the horizon, and the fold of the older ones), plus
-- the part of its first day per 15-minute bucket: an assignee's 30-day count reads about 14 rows, not
-- 2,880.
CREATE FUNCTION dashboard_cache.bundle_day(ts pg_catalog.timestamptz) RETURNS pg_catalog.timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
         WHEN ts OPERATOR(pg_catalog.>=) '1000-01-01 00:00:00+00'::pg_catalog.timestamptz
          AND ts OPERATOR(pg_catalog.<) '9000-01-01 00:00:00+00'::pg_catalog.timestamptz
           THEN pg_catalog.date_bin('1 day'::pg_catalog.interval, ts,
                                    '1970-01-01 00:00:00+00'::pg_catalog.timestamptz)
         WHEN ts OPERATOR(pg_catalog.>=) '9000-01-01 00:00:00+00'::pg_catalog.timestamptz
           THEN 'infinity'::pg_catalog.timestamptz
         ELSE '-infinity'::pg_catalog.timestamptz
       END;

-- In this order: the facets that are no buckets first, then the days, then the quarter hours, so that
-- each group is one range of the base rows' key (readers select them with <= and IN).
CREATE TYPE dashboard_cache.scope_facet AS ENUM (
    'contacts',
    'accounts',
    'lead_status',        -- label: the status (leads and open leads)
    'lead_source',        -- label: the source, 'other' when NULL or empty (leadsBySource)
    'opportunity_stage',  -- label: the stage; amount: the finite amounts (counts, sums and the funnel)
    'activities',
    'leads_day',          -- bucket: the UTC day of the lead's date
    'activities_day',
    'leads_quarter',      -- bucket: its 15-minute bucket
    'activities_quarter'
);

-- What one CRM row counts in, per table: (facet, label, bucket, amount). Labels are cut to 200
-- characters (a label is a JSON key of the response), which keeps every label the bundle compares with
-- ('won', 'lost', ...) intact.
CREATE FUNCTION dashboard_cache.lead_facets(status text, source text, at timestamptz)
RETURNS TABLE (facet dashboard_cache.scope_facet, label text, bucket timestamptz, amount numeric)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT f.facet, f.label, f.bucket, 0::numeric
      FROM (VALUES ('lead_status'::dashboard_cache.scope_facet, left(status, 200), NULL::timestamptz),
                   ('lead_source', CASE WHEN source IS NULL OR source = '' THEN 'other' ELSE left(source, 200) END, NULL),
                   ('leads_day', NULL, dashboard_cache.bundle_day(at)),
                   ('leads_quarter', NULL, dashboard_cache.bundle_bucket(at))) AS f (facet, label, bucket);
END;

CREATE FUNCTION dashboard_cache.opportunity_facets(stage text, amount numeric)
RETURNS TABLE (facet dashboard_cache.scope_facet, label text, bucket timestamptz, amount numeric)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT 'opportunity_stage'::dashboard_cache.scope_facet, left(stage, 200), NULL::timestamptz,
           CASE WHEN amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity' THEN amount ELSE 0 END;
END;

CREATE FUNCTION dashboard_cache.activity_facets(at timestamptz)
RETURNS TABLE (facet dashboard_cache.scope_facet, label text, bucket timestamptz, amount numeric)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT f.facet, NULL::text, f.bucket, 0::numeric
      FROM (VALUES ('activities'::dashboard_cache.scope_facet, NULL::timestamptz),
                   ('activities_day', dashboard_cache.bundle_day(at)),
                   ('activities_quarter', dashboard_cache.bundle_bucket(at))) AS f (facet, bucket);
END;

CREATE TABLE dashboard_cache.scope_stats_delta (
    tenant_id uuid NOT NULL,
    -- NULL: the unassigned records (part of every employee's scope).
    assignee  uuid,
    is_test   boolean NOT NULL,
    facet     dashboard_cache.scope_facet NOT NULL,
    label     text,
    bucket    timestamptz,
    n         int8 NOT NULL,
    amount    numeric NOT NULL DEFAULT 0,
    -- What a legitimate change looks like (the triggers' and repairs' rows; the warmer's role may append
    -- for its repairs): finite, bounded figures, labels as the facet functions cut them, a bucket
    -- exactly on the bucket facets and a label only on the labelled ones. A row outside this could
    -- fail every later fold (an index row too large, a NaN sum) or a response (an infinite amount).
    CONSTRAINT scope_stats_delta_sane CHECK (
        n BETWEEN -1e12 AND 1e12
        AND amount BETWEEN -1e30 AND 1e30
        AND (label IS NULL OR length(label) <= 200)
        AND (bucket IS NOT NULL) = (facet >= 'leads_day')
        AND (label IS NULL OR facet IN ('lead_status', 'lead_source', 'opportunity_stage'))
        AND (amount = 0 OR facet = 'opportunity_stage')
    )
);
CREATE INDEX scope_stats_delta_scope_idx ON dashboard_cache.scope_stats_delta (tenant_id, assignee);
ALTER TABLE dashboard_cache.scope_stats_delta
    SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);

CREATE TABLE dashboard_cache.scope_stats_base (
    tenant_id uuid NOT NULL,
    assignee  uuid,
    is_test   boolean NOT NULL,
    facet     dashboard_cache.scope_facet NOT NULL,
    label     text,
    bucket    timestamptz,
    n         int8 NOT NULL DEFAULT 0,
    amount    numeric NOT NULL DEFAULT 0,
    -- An assignee's rows in one index range, each facet's in one range of it; with the counts, so
    -- that a team's read (a range per member) is an index-only scan.
    CONSTRAINT scope_stats_base_key UNIQUE NULLS NOT DISTINCT (tenant_id, assignee, facet, label, bucket, is_test)
        INCLUDE (n, amount),
    CONSTRAINT scope_stats_base_sane CHECK (amount <> 'NaN' AND amount > '-Infinity' AND amount < 'Infinity')
);
-- A tenant's breakdowns (its whole dashboard's leadsBySource and funnel): every assignee's labels.
CREATE INDEX scope_stats_base_breakdown_idx ON dashboard_cache.scope_stats_base (tenant_id, facet)
    INCLUDE (label, is_test, n, amount) WHERE facet IN ('lead_source', 'opportunity_stage');
ALTER TABLE dashboard_cache.scope_stats_base SET (autovacuum_vacuum_scale_factor = 0.02);

-- The reference: every CRM row's facets (rows without a tenant are in no scope). Read by repair and
-- the tests; security_invoker, like bundle_stats_rows.
CREATE VIEW dashboard_cache.scope_stats_rows WITH (security_invoker = true) AS
SELECT tenant_id, assigned_to AS assignee, is_test_data IS TRUE AS is_test,
       'contacts'::dashboard_cache.scope_facet AS facet, NULL::text AS label, NULL::timestamptz AS bucket,
       0::numeric AS amount
  FROM contacts WHERE tenant_id IS NOT NULL
UNION ALL
SELECT tenant_id, assigned_to, is_test_data IS TRUE, 'accounts', NULL, NULL, 0
  FROM accounts WHERE tenant_id IS NOT NULL
UNION ALL
SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, f.bucket, f.amount
  FROM leads r, dashboard_cache.lead_facets(r.status, r.source, coalesce(r.created_date, r.created_at)) f
 WHERE r.tenant_id IS NOT NULL
UNION ALL
SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, f.bucket, f.amount
  FROM opportunities r, dashboard_cache.opportunity_facets(r.stage, r.amount) f
 WHERE r.tenant_id IS NOT NULL
UNION ALL
SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, f.bucket, f.amount
  FROM activities r, dashboard_cache.activity_facets(coalesce(r.created_date, r.created_at)) f
 WHERE r.tenant_id IS NOT NULL;

-- The trigger functions: one per table (contacts and accounts share one) for its inserts, updates and
-- deletes, each branch one
-- statement that appends the statement's effect per (tenant, assignee, flag, facet, label, bucket).
-- Updates net the new rows against the old ones: a reassigned record moves from one assignee to the
-- other, an update that moves nothing the scopes count appends nothing.
-- contacts and accounts: a count each, the facet named as the table is (one function for both).
CREATE FUNCTION dashboard_cache.track_count_scopes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    counted dashboard_cache.scope_facet;
BEGIN
    IF TG_TABLE_NAME NOT IN ('contacts', 'accounts') THEN
        RAISE EXCEPTION 'dashboard_cache.track_count_scopes does not track %', TG_TABLE_NAME;
    END IF;
    counted := TG_TABLE_NAME::text::dashboard_cache.scope_facet;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, n)
        SELECT tenant_id, assigned_to, is_test_data IS TRUE, counted, count(*)
          FROM new_rows WHERE tenant_id IS NOT NULL GROUP BY 1, 2, 3;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, n)
        SELECT tenant_id, assigned_to, is_test_data IS TRUE, counted, -count(*)
          FROM old_rows WHERE tenant_id IS NOT NULL GROUP BY 1, 2, 3;
    ELSE
        WITH r AS (
            SELECT 1 AS s, tenant_id, assigned_to, is_test_data FROM new_rows
            UNION ALL
            SELECT -1, tenant_id, assigned_to, is_test_data FROM old_rows
        )
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, n)
        SELECT tenant_id, assigned_to, is_test_data IS TRUE, counted, sum(s)
          FROM r WHERE tenant_id IS NOT NULL GROUP BY 1, 2, 3 HAVING sum(s) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION dashboard_cache.track_leads_scopes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, bucket, n)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, f.bucket, count(*)
          FROM new_rows r, dashboard_cache.lead_facets(r.status, r.source, coalesce(r.created_date, r.created_at)) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, bucket, n)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, f.bucket, -count(*)
          FROM old_rows r, dashboard_cache.lead_facets(r.status, r.source, coalesce(r.created_date, r.created_at)) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6;
    ELSE
        WITH r AS (
            SELECT 1 AS s, tenant_id, assigned_to, is_test_data, status, source, coalesce(created_date, created_at) AS at
              FROM new_rows
            UNION ALL
            SELECT -1, tenant_id, assigned_to, is_test_data, status, source, coalesce(created_date, created_at)
              FROM old_rows
        )
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, bucket, n)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, f.bucket, sum(r.s)
          FROM r, dashboard_cache.lead_facets(r.status, r.source, r.at) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(r.s) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION dashboard_cache.track_opportunities_scopes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, n, amount)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, count(*), sum(f.amount)
          FROM new_rows r, dashboard_cache.opportunity_facets(r.stage, r.amount) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, n, amount)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, -count(*), -sum(f.amount)
          FROM old_rows r, dashboard_cache.opportunity_facets(r.stage, r.amount) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
    ELSE
        WITH r AS (
            SELECT 1 AS s, tenant_id, assigned_to, is_test_data, stage, amount FROM new_rows
            UNION ALL
            SELECT -1, tenant_id, assigned_to, is_test_data, stage, amount FROM old_rows
        )
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, n, amount)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.label, sum(r.s), sum(r.s * f.amount)
          FROM r, dashboard_cache.opportunity_facets(r.stage, r.amount) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5
        HAVING sum(r.s) <> 0 OR sum(r.s * f.amount) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION dashboard_cache.track_activities_scopes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, bucket, n)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.bucket, count(*)
          FROM new_rows r, dashboard_cache.activity_facets(coalesce(r.created_date, r.created_at)) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, bucket, n)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.bucket, -count(*)
          FROM old_rows r, dashboard_cache.activity_facets(coalesce(r.created_date, r.created_at)) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
    ELSE
        WITH r AS (
            SELECT 1 AS s, tenant_id, assigned_to, is_test_data, coalesce(created_date, created_at) AS at FROM new_rows
            UNION ALL
            SELECT -1, tenant_id, assigned_to, is_test_data, coalesce(created_date, created_at) FROM old_rows
        )
        INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, bucket, n)
        SELECT r.tenant_id, r.assigned_to, r.is_test_data IS TRUE, f.facet, f.bucket, sum(r.s)
          FROM r, dashboard_cache.activity_facets(r.at) f
         WHERE r.tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5 HAVING sum(r.s) <> 0;
    END IF;
    RETURN NULL;
END
$$;

-- TRUNCATE of a CRM table: cancels what its facets hold, as track_truncate does for the tenant
-- counters (which it runs after, in the same READ COMMITTED statement order, and which moves every
-- version through the epoch).
CREATE FUNCTION dashboard_cache.track_scopes_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    facets dashboard_cache.scope_facet[] := CASE TG_TABLE_NAME
        WHEN 'contacts' THEN '{contacts}'
        WHEN 'accounts' THEN '{accounts}'
        WHEN 'leads' THEN '{lead_status,lead_source,leads_day,leads_quarter}'
        WHEN 'opportunities' THEN '{opportunity_stage}'
        WHEN 'activities' THEN '{activities,activities_day,activities_quarter}'
    END;
BEGIN
    IF facets IS NULL THEN
        RAISE EXCEPTION 'dashboard_cache.track_scopes_truncate does not track %', TG_TABLE_NAME;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'TRUNCATE %.% refused in a % transaction', TG_TABLE_SCHEMA, TG_TABLE_NAME,
              current_setting('transaction_isolation')
            USING ERRCODE = '0A000',
                  HINT = 'The dashboard counters follow a TRUNCATE only when it sees every committed write: run it in a READ COMMITTED transaction (the default).';
    END IF;
    INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, bucket, n, amount)
    SELECT tenant_id, assignee, is_test, facet, label, bucket, -sum(n), -sum(amount)
      FROM (SELECT tenant_id, assignee, is_test, facet, label, bucket, n, amount
              FROM dashboard_cache.scope_stats_base WHERE facet = ANY (facets)
            UNION ALL
            SELECT tenant_id, assignee, is_test, facet, label, bucket, n, amount
              FROM dashboard_cache.scope_stats_delta WHERE facet = ANY (facets)) AS kept
     GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(n) <> 0 OR sum(amount) <> 0;
    RETURN NULL;
END
$$;

-- A change of who is in a team moves the version of the team's tenant (every scope of a tenant shares
-- its version). One delta row per touched tenant; a TRUNCATE moves the epoch.
CREATE FUNCTION dashboard_cache.track_team_members() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, epoch, changes) VALUES (NULL, false, true, 1);
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, changes)
        SELECT DISTINCT tenant_id, false, 1 FROM new_rows WHERE tenant_id IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, changes)
        SELECT DISTINCT tenant_id, false, 1 FROM old_rows WHERE tenant_id IS NOT NULL;
    ELSE
        INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, changes)
        SELECT tenant_id, false, 1
          FROM (SELECT tenant_id FROM new_rows UNION SELECT tenant_id FROM old_rows) AS t
         WHERE tenant_id IS NOT NULL;
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION dashboard_cache.track_count_scopes(), dashboard_cache.track_leads_scopes(), dashboard_cache.track_opportunities_scopes(),
    dashboard_cache.track_activities_scopes(), dashboard_cache.track_scopes_truncate(),
    dashboard_cache.track_team_members() FROM PUBLIC;

RESET ROLE;
