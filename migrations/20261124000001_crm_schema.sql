-- The CRM's own tables, as the CRM ships them: the tenants and the five tables the dashboard bundle
-- reads. On a customer's database they exist already (IF NOT EXISTS: nothing is changed); tests and
-- `make dev` get them here. Table and column names are read by other tools: do not rename them.

CREATE TABLE IF NOT EXISTS tenant (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug       text UNIQUE NOT NULL,
    name       text NOT NULL,
    status     text NOT NULL DEFAULT 'active',
    created_at timestamptz DEFAULT now()
);
-- The warmer pages through active tenants in id order.
CREATE INDEX IF NOT EXISTS tenant_active_id_idx ON tenant (id) WHERE status = 'active';

CREATE TABLE IF NOT EXISTS contacts (
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

CREATE TABLE IF NOT EXISTS accounts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid REFERENCES tenant (id),
    is_test_data boolean DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_date timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    assigned_to  uuid,
    name         text NOT NULL
);

CREATE TABLE IF NOT EXISTS leads (
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

CREATE TABLE IF NOT EXISTS opportunities (
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

CREATE TABLE IF NOT EXISTS activities (
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

-- The CRM's tenant indexes (a tenant's rows in one index range; INCLUDE columns let the full-scan
-- counts of the exactness check run as index-only scans). The bundle's list indexes are the
-- product's, built concurrently by later migrations.
CREATE INDEX IF NOT EXISTS contacts_tenant_idx ON contacts (tenant_id) INCLUDE (is_test_data);
CREATE INDEX IF NOT EXISTS accounts_tenant_idx ON accounts (tenant_id) INCLUDE (is_test_data);

CREATE INDEX IF NOT EXISTS leads_tenant_stats_idx ON leads (tenant_id)
    INCLUDE (is_test_data, status, created_date, created_at);

CREATE INDEX IF NOT EXISTS opportunities_tenant_stats_idx ON opportunities (tenant_id)
    INCLUDE (is_test_data, stage, amount);

CREATE INDEX IF NOT EXISTS activities_tenant_day_idx ON activities (tenant_id, (coalesce(created_date, created_at)))
    INCLUDE (is_test_data);

-- The CRM's teams (its later versions): who belongs to which team. A team's dashboard counts the
-- records assigned to its members.
CREATE TABLE IF NOT EXISTS team_members (
    tenant_id   uuid NOT NULL,
    team_id     uuid NOT NULL,
    employee_id uuid NOT NULL
);
CREATE INDEX IF NOT EXISTS team_members_team_idx ON team_members (tenant_id, team_id, employee_id);
CREATE INDEX IF NOT EXISTS team_members_employee_idx ON team_members (tenant_id, employee_id);
