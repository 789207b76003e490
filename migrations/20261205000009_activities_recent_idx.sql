-- no-transaction
-- A recent list's index, built concurrently (see 20261205000006_activities_tenant_recent_idx.sql).
CREATE INDEX CONCURRENTLY IF NOT EXISTS activities_recent_idx ON activities
    ((CASE WHEN created_at >= '0001-01-01T00:00:00Z'::timestamptz AND created_at < '10000-01-01T00:00:00Z'::timestamptz THEN created_at END) DESC NULLS LAST, id);
