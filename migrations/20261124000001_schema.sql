-- Tenants and the five CRM tables the dashboard bundle reads.
-- Table and column names are read by other tools: do not rename them.

CREATE TABLE tenant (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug       text UNIQUE NOT NULL,
    name       text NOT NULL,
    status     text NOT NULL DEFAULT 'active',
    created_at timestamptz DEFAULT now()
);
-- The warmer pages through active tenants in id order.
CREATE INDEX tenant_active_id_idx ON tenant (id) WHERE status = 'active';

CREATE TABLE contacts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid REFERENCES tenant (id),
    is_test_data boolean DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_date timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    assigned_to  uuid,
    first_name   text,
    last_name    text,
    email        text
);

CREATE TABLE accounts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid REFERENCES tenant (id),
    is_test_data boolean DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_date timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    assigned_to  uuid,
    name         text NOT NULL
);

CREATE TABLE leads (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid REFERENCES tenant (id),
    is_test_data boolean DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_date timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    assigned_to  uuid,
    first_name   text,
    last_name    text,
    company      text,
    email        text,
    source       text,
    status       text DEFAULT 'new'
);

CREATE TABLE opportunities (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid REFERENCES tenant (id),
    is_test_data boolean DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_date timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    assigned_to  uuid,
    name         text NOT NULL,
    stage        text DEFAULT 'qualification',
    amount       numeric(15, 2)
);

CREATE TABLE activities (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid REFERENCES tenant (id),
    is_test_data boolean DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_date timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    assigned_to  uuid,
    type         text NOT NULL,
    subject      text,
    status       text DEFAULT 'pending'
);

-- One index per bundle query shape, each leading with tenant_id so that a tenant's bundle reads only
-- that tenant's index range. INCLUDE columns let the counts run as index-only scans.
CREATE INDEX contacts_tenant_idx ON contacts (tenant_id) INCLUDE (is_test_data);
CREATE INDEX accounts_tenant_idx ON accounts (tenant_id) INCLUDE (is_test_data);

CREATE INDEX leads_tenant_stats_idx ON leads (tenant_id)
    INCLUDE (is_test_data, status, created_date, created_at);
CREATE INDEX leads_tenant_recent_idx ON leads (tenant_id, (coalesce(created_date, created_at)) DESC, id);

CREATE INDEX opportunities_tenant_stats_idx ON opportunities (tenant_id)
    INCLUDE (is_test_data, stage, amount);
CREATE INDEX opportunities_tenant_recent_idx ON opportunities (tenant_id, updated_at DESC, id);

CREATE INDEX activities_tenant_recent_idx ON activities (tenant_id, created_at DESC, id);
CREATE INDEX activities_tenant_day_idx ON activities (tenant_id, (coalesce(created_date, created_at)))
    INCLUDE (is_test_data);
