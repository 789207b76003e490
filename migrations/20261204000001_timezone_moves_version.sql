-- A tenant's zone decides its bundle's 30-day window and its freshness day: changing `timezone` moves
-- the tenant's data version, so a cached bundle of the old day is recomputed at the next check instead
-- of being revalidated as current. One delta row, as every other change (no shared row is locked).
CREATE FUNCTION bundle_track_tenant_timezone() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO bundle_stats_delta (tenant_id, is_test, changes)
    SELECT n.id, false, 1
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE n.timezone IS DISTINCT FROM o.timezone;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION bundle_track_tenant_timezone() FROM PUBLIC;

CREATE TRIGGER tenant_timezone_version AFTER UPDATE ON tenant
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bundle_track_tenant_timezone();
