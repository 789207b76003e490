-- no-transaction
-- A scoped recent list's index, built concurrently (see 20261205000015_activities_assignee_recent_idx.sql).
CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_assignee_recent_idx ON leads
    (tenant_id, assigned_to, (coalesce(created_date, created_at)) DESC NULLS LAST, id);
