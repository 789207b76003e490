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
-- (Operators are pg_catalog's by name here: see 20261124000002_migrator_search_path.sql.)
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles
                WHERE rolname = 'dashboard_cache_owner'
                  AND (rolsuper OR rolcanlogin OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls))
       -- member of a role (it would hold that role's rights)
       OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                   WHERE m.member OPERATOR(pg_catalog.=) 'dashboard_cache_owner'::pg_catalog.regrole::pg_catalog.oid)
       -- with members other than the migrating role (they could act as the owner of definer code)
       OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                   WHERE m.roleid OPERATOR(pg_catalog.=) 'dashboard_cache_owner'::pg_catalog.regrole::pg_catalog.oid
                     AND m.member OPERATOR(pg_catalog.<>) current_user::pg_catalog.regrole::pg_catalog.oid)
       -- with default privileges (they would grant others rights on what it creates here)
       OR EXISTS (SELECT FROM pg_catalog.pg_default_acl d
                   WHERE d.defaclrole OPERATOR(pg_catalog.=) 'dashboard_cache_owner'::pg_catalog.regrole::pg_catalog.oid)
       -- owning or granted anything in this database already
       OR EXISTS (SELECT FROM pg_catalog.pg_shdepend d
                   WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_authid'::pg_catalog.regclass::pg_catalog.oid
                     AND d.refobjid OPERATOR(pg_catalog.=) 'dashboard_cache_owner'::pg_catalog.regrole::pg_catalog.oid
                     AND d.dbid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
                                                        WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))
    THEN
        RAISE EXCEPTION 'role dashboard_cache_owner has attributes, memberships, members, default privileges or objects beyond a new NOLOGIN role'
            USING HINT = 'It would own SECURITY DEFINER functions: make it NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS, member of no role, with no other member than the migrating role and no default privileges.';
    END IF;
    -- The migrating role creates the schema's objects as their owner (SET ROLE), so it is a member.
    IF NOT pg_catalog.pg_has_role(current_user, 'dashboard_cache_owner', 'MEMBER') THEN
        EXECUTE pg_catalog.format('GRANT dashboard_cache_owner TO %I', current_user);
    END IF;
END
$$;

CREATE SCHEMA dashboard_cache AUTHORIZATION dashboard_cache_owner;
REVOKE ALL ON SCHEMA dashboard_cache FROM PUBLIC;
