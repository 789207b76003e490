-- no-transaction
-- A scoped bundle's recent lists (issue 26): one index range per (tenant, assignee), in the list's
-- order, built concurrently (see 20261205000006_activities_tenant_recent_idx.sql).
CREATE INDEX CONCURRENTLY IF NOT EXISTS activities_assignee_recent_idx ON activities
    (tenant_id, assigned_to, (CASE WHEN created_at >= '0001-01-01T00:00:00Z'::timestamptz AND created_at < '10000-01-01T00:00:00Z'::timestamptz THEN created_at END) DESC NULLS LAST, id);
