-- no-transaction
-- The recent lists, in their exact order, per tenant and across tenants for the global view (one
-- index per migration: CREATE INDEX CONCURRENTLY runs outside a transaction, one statement at a time).
-- Built concurrently: CRM writes go on while it builds. The activities and opportunities lists order
-- by their output columns, the timestamps as the bundle shows them (NULL when infinite): the indexes
-- hold the same expression. A parameterised test-data filter is a row filter on these: test data is the
-- rare case. A build that failed leaves an INVALID index: drop it and migrate again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS activities_tenant_recent_idx ON activities
    (tenant_id, (CASE WHEN created_at >= '0001-01-01T00:00:00Z'::timestamptz AND created_at < '10000-01-01T00:00:00Z'::timestamptz THEN created_at END) DESC NULLS LAST, id);
