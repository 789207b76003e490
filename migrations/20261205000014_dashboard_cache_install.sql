-- no-transaction
-- Switches the change tracking on (see dashboard_cache.install): short lock per table, then the
-- backfill in batches. One statement alone in its file: a procedure commits only when called outside a
-- transaction. It runs with search_path = pg_catalog, pg_temp (the CRM's schema passed by name), and
-- the migrating session's search_path is put back afterwards.
DO $$
DECLARE
    crm_schema text := pg_catalog.current_schema();
    search_path text := pg_catalog.current_setting('search_path');
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false);
    CALL dashboard_cache.install(crm_schema);
    PERFORM pg_catalog.set_config('search_path', search_path, false);
END
$$;
