-- Change tracking for cache revalidation: a per-tenant data version that moves whenever a row of
-- contacts, accounts, leads, opportunities or activities of that tenant is inserted, updated or
-- deleted. Statement-level triggers with transition tables bump each touched tenant once per statement,
-- whatever the number of rows, so no writer can forget it and bulk writes stay cheap.
--
-- Rows are never deleted from this table and versions only grow, so the sum of all versions is the
-- global version of the superadmin view: any change anywhere raises it, and no single hot row is
-- locked by every tenant's writes.

CREATE TABLE tenant_data_version (
    -- The nil UUID stands for rows whose tenant_id is NULL (they count in the global view only).
    tenant_id  uuid PRIMARY KEY,
    version    bigint NOT NULL DEFAULT 1,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION bump_tenant_data_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Tenants in a fixed order, so concurrent statements lock version rows in the same order.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tenant_data_version AS v (tenant_id)
        SELECT DISTINCT coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid) FROM new_rows ORDER BY 1
        ON CONFLICT (tenant_id) DO UPDATE SET version = v.version + 1, changed_at = now();
    ELSIF TG_OP = 'UPDATE' THEN
        -- A row moved to another tenant changes both tenants.
        INSERT INTO tenant_data_version AS v (tenant_id)
        SELECT coalesce(t, '00000000-0000-0000-0000-000000000000'::uuid)
          FROM (SELECT tenant_id FROM new_rows UNION SELECT tenant_id FROM old_rows) AS touched (t)
         ORDER BY 1
        ON CONFLICT (tenant_id) DO UPDATE SET version = v.version + 1, changed_at = now();
    ELSE
        INSERT INTO tenant_data_version AS v (tenant_id)
        SELECT DISTINCT coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid) FROM old_rows ORDER BY 1
        ON CONFLICT (tenant_id) DO UPDATE SET version = v.version + 1, changed_at = now();
    END IF;
    RETURN NULL;
END
$$;

-- TRUNCATE has no transition table: it may have emptied every tenant, so every version moves.
CREATE FUNCTION bump_all_data_versions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tenant_data_version SET version = version + 1, changed_at = now();
    INSERT INTO tenant_data_version (tenant_id) VALUES ('00000000-0000-0000-0000-000000000000')
    ON CONFLICT (tenant_id) DO UPDATE SET version = tenant_data_version.version + 1, changed_at = now();
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['contacts', 'accounts', 'leads', 'opportunities', 'activities'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_version_insert AFTER INSERT ON %1$I
                          REFERENCING NEW TABLE AS new_rows
                          FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_data_version()', t);
        EXECUTE format('CREATE TRIGGER %1$s_version_update AFTER UPDATE ON %1$I
                          REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                          FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_data_version()', t);
        EXECUTE format('CREATE TRIGGER %1$s_version_delete AFTER DELETE ON %1$I
                          REFERENCING OLD TABLE AS old_rows
                          FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_data_version()', t);
        EXECUTE format('CREATE TRIGGER %1$s_version_truncate AFTER TRUNCATE ON %1$I
                          FOR EACH STATEMENT EXECUTE FUNCTION bump_all_data_versions()', t);
    END LOOP;
END
$$;
