-- Before the product installs anything: no role but a schema's owner may create objects in a schema of
-- the migrating role's search_path. Views, SQL-standard function bodies and the install procedure
-- resolve the functions and operators they use when the migration runs; a function or operator that
-- another role planted there (an overload matching more exactly than pg_catalog's) would be bound into
-- them and later run as whoever uses them: the owner role, the functions' roles, the migrator. This is
-- PostgreSQL 15's default for `public`; clusters upgraded from older versions keep `CREATE` for
-- PUBLIC there until it is revoked.
DO $$
DECLARE
    open_schemas text;
BEGIN
    SELECT pg_catalog.string_agg(DISTINCT n.nspname::text, ', ') INTO open_schemas
      FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
     WHERE n.nspname OPERATOR(pg_catalog.=) ANY (pg_catalog.current_schemas(false))
       AND n.nspname OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.name
       AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'::pg_catalog.text
       AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner;
    IF open_schemas IS NOT NULL THEN
        RAISE EXCEPTION 'roles other than the owner may CREATE in schema(s) % of the migration''s search_path',
              open_schemas
            USING HINT = 'Revoke it first (e.g. REVOKE CREATE ON SCHEMA public FROM PUBLIC), or migrate with a search_path of schemas only their owner writes.';
    END IF;
END
$$;
