-- no-transaction
-- A scoped recent list's index, built concurrently (see 20261205000015_activities_assignee_recent_idx.sql).
CREATE INDEX CONCURRENTLY IF NOT EXISTS opportunities_assignee_recent_idx ON opportunities
    (tenant_id, assigned_to, (CASE WHEN updated_at >= '0001-01-01T00:00:00Z'::timestamptz AND updated_at < '10000-01-01T00:00:00Z'::timestamptz THEN updated_at END) DESC NULLS LAST, id);
