-- no-transaction
-- A recent list's index, built concurrently (see 20261205000006_activities_tenant_recent_idx.sql).
CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_tenant_recent_idx ON leads
    (tenant_id, (coalesce(created_date, created_at)) DESC NULLS LAST, id);
