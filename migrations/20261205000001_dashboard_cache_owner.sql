-- Everything the change tracking installs lives in the schema `dashboard_cache`, owned by the role
-- `dashboard_cache_owner`: NOLOGIN, no attribute, member of no role, holding rights on this schema's
-- own tables only. The trigger functions run as that role (SECURITY DEFINER), so a CRM writer needs no
-- right on the change tables, and what the functions can reach is exactly this schema.
--
-- Roles belong to the cluster: a second database of the same cluster reuses the role.
DO $$
BEGIN
    CREATE ROLE dashboard_cache_owner NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- it exists (another database of this cluster, or a migration running at the same moment)
END
$$;

-- A role of that name made by someone else must be as narrow as ours before it owns definer code.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles
                WHERE rolname = 'dashboard_cache_owner'
                  AND (rolsuper OR rolcanlogin OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls))
       OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                    JOIN pg_catalog.pg_roles r ON r.oid = m.member
                   WHERE r.rolname = 'dashboard_cache_owner') THEN
        RAISE EXCEPTION 'role dashboard_cache_owner has attributes or memberships beyond NOLOGIN'
            USING HINT = 'It would own SECURITY DEFINER functions: make it NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS, member of no role.';
    END IF;
    -- The migrating role creates the schema's objects as their owner (SET ROLE), so it is a member.
    IF NOT pg_catalog.pg_has_role(current_user, 'dashboard_cache_owner', 'MEMBER') THEN
        EXECUTE pg_catalog.format('GRANT dashboard_cache_owner TO %I', current_user);
    END IF;
END
$$;

CREATE SCHEMA dashboard_cache AUTHORIZATION dashboard_cache_owner;
REVOKE ALL ON SCHEMA dashboard_cache FROM PUBLIC;
