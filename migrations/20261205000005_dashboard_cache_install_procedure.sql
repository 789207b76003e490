-- Switching the change tracking on, on a live CRM: triggers first, one table at a time, each in a
-- transaction of its own that waits at most `lock_wait` for its lock (CREATE TRIGGER takes SHARE ROW
-- EXCLUSIVE: writers queue behind it while it waits, so a long wait is given up and tried again);
-- then the backfill, tenant by tenant, committed in batches; then compaction. No step holds a lock on
-- a CRM table beyond creating one table's triggers.
--
-- The backfill is the exactness repair: for each tenant, in one snapshot, what the tables hold minus
-- what the counters already say (the deltas the new triggers appended since they were created). A
-- write committed after that snapshot appends its own delta, so the counters are exact whatever
-- writers do meanwhile; a TRUNCATE negates what is visible, before or after the tenant's repair alike.
--
-- SECURITY INVOKER (its caller creates the triggers, so owns the CRM tables) and without a SET clause
-- (a procedure with one cannot COMMIT): every name in it is schema-qualified, and the install migration
-- calls it with search_path = pg_catalog, pg_temp, so that no operator or function another role
-- planted in the caller's schemas runs as the caller. Idempotent: a run that failed half-way is run
-- again (call it the same way).
SET LOCAL ROLE dashboard_cache_owner;

CREATE PROCEDURE dashboard_cache.install(
    crm_schema text DEFAULT current_schema(),
    lock_wait text DEFAULT '1s',
    attempts integer DEFAULT 60,
    batch integer DEFAULT 100
)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    t text;
    triggers text[];
    scopes_function text;
    attempt integer;
    done boolean;
    each_tenant uuid;
    repaired integer := 0;
    folded int8;
BEGIN
    FOREACH t IN ARRAY ARRAY['contacts', 'accounts', 'leads', 'opportunities', 'activities', 'tenant', 'team_members'] LOOP
        scopes_function := CASE WHEN t IN ('contacts', 'accounts') THEN 'track_count_scopes'
                                ELSE pg_catalog.format('track_%s_scopes', t) END;
        triggers := CASE
        WHEN t = 'tenant' THEN ARRAY[pg_catalog.format(
            'CREATE OR REPLACE TRIGGER tenant_timezone_version AFTER UPDATE ON %1$I.tenant
               REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_tenant_timezone()', crm_schema)]
        WHEN t = 'team_members' THEN ARRAY[
            pg_catalog.format('CREATE OR REPLACE TRIGGER team_members_version_insert AFTER INSERT ON %1$I.team_members
               REFERENCING NEW TABLE AS new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_team_members()', crm_schema),
            pg_catalog.format('CREATE OR REPLACE TRIGGER team_members_version_update AFTER UPDATE ON %1$I.team_members
               REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_team_members()', crm_schema),
            pg_catalog.format('CREATE OR REPLACE TRIGGER team_members_version_delete AFTER DELETE ON %1$I.team_members
               REFERENCING OLD TABLE AS old_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_team_members()', crm_schema),
            pg_catalog.format('CREATE OR REPLACE TRIGGER team_members_version_truncate AFTER TRUNCATE ON %1$I.team_members
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_team_members()', crm_schema)]
        ELSE ARRAY[
            pg_catalog.format('CREATE OR REPLACE TRIGGER %2$s_bundle_insert AFTER INSERT ON %1$I.%2$I
               REFERENCING NEW TABLE AS new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_%2$s_insert()', crm_schema, t),
            pg_catalog.format('CREATE OR REPLACE TRIGGER %2$s_bundle_update AFTER UPDATE ON %1$I.%2$I
               REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_%2$s_update()', crm_schema, t),
            pg_catalog.format('CREATE OR REPLACE TRIGGER %2$s_bundle_delete AFTER DELETE ON %1$I.%2$I
               REFERENCING OLD TABLE AS old_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_%2$s_delete()', crm_schema, t),
            pg_catalog.format('CREATE OR REPLACE TRIGGER %2$s_bundle_truncate AFTER TRUNCATE ON %1$I.%2$I
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_truncate()', crm_schema, t),
            -- The per-assignee counters (20261205000012_dashboard_cache_scopes.sql).
            pg_catalog.format('CREATE OR REPLACE TRIGGER %2$s_scopes_insert AFTER INSERT ON %1$I.%2$I
               REFERENCING NEW TABLE AS new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.%3$I()', crm_schema, t, scopes_function),
            pg_catalog.format('CREATE OR REPLACE TRIGGER %2$s_scopes_update AFTER UPDATE ON %1$I.%2$I
               REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.%3$I()', crm_schema, t, scopes_function),
            pg_catalog.format('CREATE OR REPLACE TRIGGER %2$s_scopes_delete AFTER DELETE ON %1$I.%2$I
               REFERENCING OLD TABLE AS old_rows
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.%3$I()', crm_schema, t, scopes_function),
            pg_catalog.format('CREATE OR REPLACE TRIGGER %2$s_scopes_truncate AFTER TRUNCATE ON %1$I.%2$I
               FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.track_scopes_truncate()', crm_schema, t)]
        END;
        attempt := 0;
        LOOP
            attempt := attempt + 1;
            BEGIN
                PERFORM pg_catalog.set_config('lock_timeout', lock_wait, true);
                -- CREATE OR REPLACE makes a second run idempotent; a trigger of one of these names that
                -- calls anything but this schema's functions is the CRM's own: never replaced.
                IF EXISTS (SELECT FROM pg_catalog.pg_trigger g
                             JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) g.tgfoid
                            WHERE g.tgrelid OPERATOR(pg_catalog.=)
                                  pg_catalog.format('%I.%I', crm_schema, t)::pg_catalog.regclass::pg_catalog.oid
                              AND p.pronamespace OPERATOR(pg_catalog.<>)
                                  'dashboard_cache'::pg_catalog.regnamespace::pg_catalog.oid
                              AND g.tgname::pg_catalog.text OPERATOR(pg_catalog.=) ANY (
                                  SELECT pg_catalog.substring(ddl, 'TRIGGER (\S+) AFTER')
                                    FROM pg_catalog.unnest(triggers) AS ddl)) THEN
                    RAISE EXCEPTION 'table %.% has a trigger of a name the dashboard cache installs, calling another function',
                          crm_schema, t
                        USING HINT = 'Rename that trigger; the dashboard cache never replaces a trigger of the CRM.';
                END IF;
                EXECUTE pg_catalog.array_to_string(triggers, '; ');
                done := true;
            EXCEPTION WHEN lock_not_available THEN
                done := false;
            END;
            COMMIT;
            EXIT WHEN done;
            IF attempt >= attempts THEN
                RAISE EXCEPTION 'could not lock %.% for % attempts of %: long transactions keep writing to it',
                      crm_schema, t, attempts, lock_wait
                    USING HINT = 'Run the migration again when they have ended; what is done stays done.';
            END IF;
            PERFORM pg_catalog.pg_sleep(0.2);
        END LOOP;
    END LOOP;

    FOR each_tenant IN SELECT id FROM dashboard_cache.tenants ORDER BY id LOOP
        PERFORM dashboard_cache.bundle_stats_repair(each_tenant);
        repaired := repaired + 1;
        IF repaired % batch = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
    PERFORM dashboard_cache.bundle_stats_repair(NULL);
    COMMIT;

    LOOP
        folded := dashboard_cache.bundle_stats_compact(50000);
        COMMIT;
        EXIT WHEN folded IS NULL OR folded < 50000;
    END LOOP;
END
$$;
REVOKE ALL ON PROCEDURE dashboard_cache.install(text, text, integer, integer) FROM PUBLIC;

RESET ROLE;
