-- The previous system's job table, as its runbook uses it: `SELECT last_run, next_run, metadata FROM
-- cron_job`, `UPDATE cron_job SET is_active = false ...` to stop the scheduled warms, `UPDATE cron_job
-- SET schedule = 'cron:0 2 * * *' ...` to move them. The deployment's schedule is a heartbeat (every
-- minute); each beat asks this table whether a firing of the job's schedule is due (warm-cache's
-- `job.rs`). warm-cache inserts its row on its first invocation, from the template's parameters.
--
-- The schedule is read here and only here: the database refuses an expression it cannot read, and
-- computes `next_run` whenever the schedule or its zone changes.

-- Created when the CRM has none (its comment says so, for scripts/uninstall.sql); a CRM's own table is
-- adopted, given the two columns and the unique key the warm job's row needs.
DO $$
BEGIN
    IF to_regclass('cron_job') IS NULL THEN
        CREATE TABLE cron_job (
            id                text PRIMARY KEY,
            name              text NOT NULL,
            -- `cron:M H DoM Mon DoW` (the previous system's form, Sunday 0 or 7) or EventBridge's
            -- `cron(M H DoM Mon DoW Year)` (Sunday 1, year `*`), read in `schedule_timezone`.
            schedule          text NOT NULL,
            function_name     text NOT NULL,
            is_active         boolean NOT NULL DEFAULT true,
            last_run          timestamptz,
            next_run          timestamptz,
            metadata          jsonb NOT NULL DEFAULT '{}'
        );
        COMMENT ON TABLE cron_job IS 'created by the dashboard bundle cache';
    END IF;
END
$$;
SET LOCAL lock_timeout = '1s';
ALTER TABLE cron_job
    ADD COLUMN IF NOT EXISTS schedule_timezone text NOT NULL DEFAULT 'UTC',
    -- The Scheduler execution that claimed the latest firing: its retry may claim it again.
    ADD COLUMN IF NOT EXISTS claimed_by text;
CREATE UNIQUE INDEX IF NOT EXISTS cron_job_function_name_key ON cron_job (function_name);

SET LOCAL ROLE dashboard_cache_owner;

-- The values one field of a cron expression allows, sorted: `*` (or `?`), `N`, `N-M`, each with an
-- optional `/step`, in a comma list; an error names the field otherwise.
CREATE FUNCTION dashboard_cache.cron_field(field text, name text, lo integer, hi integer)
RETURNS integer[] LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    part text;
    m text[];
    first integer;
    last integer;
    step integer;
    result integer[] := '{}';
BEGIN
    FOREACH part IN ARRAY pg_catalog.string_to_array(field, ',') LOOP
        m := pg_catalog.regexp_match(part, '^(?:([*?])|([0-9]{1,2})(?:-([0-9]{1,2}))?)(?:/([0-9]{1,2}))?$');
        IF m IS NULL THEN
            RAISE EXCEPTION 'cannot read the % field "%"', name, field
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Each field is *, a number, a range N-M, either with /step, or a comma list of them; names (MON, JAN) and L, W, # are not supported.';
        END IF;
        first := coalesce(m[2]::integer, lo);
        last := CASE WHEN m[3] IS NOT NULL THEN m[3]::integer
                     WHEN m[2] IS NOT NULL AND m[4] IS NULL THEN first
                     ELSE hi END;
        step := coalesce(m[4]::integer, 1);
        IF first < lo OR last > hi OR first > last OR step < 1 THEN
            RAISE EXCEPTION 'the % field "%" is outside %-%', name, field, lo, hi
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        result := result || ARRAY(SELECT pg_catalog.generate_series(first, last, step));
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT v FROM pg_catalog.unnest(result) v ORDER BY v);
END
$$;

-- The first time after `after` that `schedule` fires in `zone`; an error when it cannot be read, or
-- never fires in the next four years (e.g. `cron:0 0 30 2 *`).
CREATE FUNCTION dashboard_cache.cron_next_run(schedule text, zone text, after timestamptz)
RETURNS timestamptz LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eventbridge boolean := schedule ~ '^cron\(.*\)$';
    field_count integer := CASE WHEN schedule ~ '^cron\(.*\)$' THEN 6 ELSE 5 END;
    fields text[];
    minutes integer[];
    hours integer[];
    days integer[];
    months integer[];
    weekdays integer[];
    any_day boolean;
    any_weekday boolean;
    local_after timestamp;
    day date;
    h integer;
    mi integer;
    at timestamptz;
BEGIN
    IF eventbridge THEN
        fields := pg_catalog.regexp_split_to_array(pg_catalog.btrim(pg_catalog.substr(schedule, 6, pg_catalog.length(schedule) - 6)), '\s+');
    ELSIF schedule ~ '^cron:' THEN
        fields := pg_catalog.regexp_split_to_array(pg_catalog.btrim(pg_catalog.substr(schedule, 6)), '\s+');
    END IF;
    IF fields IS NULL
       OR pg_catalog.cardinality(fields) <> field_count
       OR (eventbridge AND fields[6] NOT IN ('*', '?')) THEN
        RAISE EXCEPTION 'cannot read the schedule "%"', schedule
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use cron:M H DoM Mon DoW (e.g. cron:0 2 * * * for 2 AM) or EventBridge''s cron(M H DoM Mon DoW *), read in schedule_timezone.';
    END IF;
    minutes := dashboard_cache.cron_field(fields[1], 'minute', 0, 59);
    hours := dashboard_cache.cron_field(fields[2], 'hour', 0, 23);
    days := dashboard_cache.cron_field(fields[3], 'day-of-month', 1, 31);
    months := dashboard_cache.cron_field(fields[4], 'month', 1, 12);
    -- Sunday is 0 (or 7) in the cron: form, 1 in EventBridge's; both become extract(dow)'s 0.
    IF eventbridge THEN
        weekdays := ARRAY(SELECT v - 1 FROM pg_catalog.unnest(dashboard_cache.cron_field(fields[5], 'day-of-week', 1, 7)) v);
    ELSE
        weekdays := ARRAY(SELECT DISTINCT v % 7 FROM pg_catalog.unnest(dashboard_cache.cron_field(fields[5], 'day-of-week', 0, 7)) v);
    END IF;
    -- As in cron: when both day fields are restricted, a day matching either fires; a field that
    -- starts with * (or ?) does not restrict.
    any_day := fields[3] ~ '^[*?]';
    any_weekday := fields[5] ~ '^[*?]';
    local_after := after AT TIME ZONE zone;
    FOR i IN 0..1461 LOOP
        day := local_after::date + i;
        CONTINUE WHEN NOT (pg_catalog.date_part('month', day)::integer = ANY (months));
        CONTINUE WHEN NOT CASE
            WHEN any_day AND any_weekday THEN true
            WHEN any_day THEN pg_catalog.date_part('dow', day)::integer = ANY (weekdays)
            WHEN any_weekday THEN pg_catalog.date_part('day', day)::integer = ANY (days)
            ELSE pg_catalog.date_part('day', day)::integer = ANY (days)
                 OR pg_catalog.date_part('dow', day)::integer = ANY (weekdays) END;
        FOREACH h IN ARRAY hours LOOP
            FOREACH mi IN ARRAY minutes LOOP
                at := (day + pg_catalog.make_time(h, mi, 0)) AT TIME ZONE zone;
                IF at > after THEN
                    RETURN at;
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
    RAISE EXCEPTION 'the schedule "%" never fires in the next four years', schedule
        USING ERRCODE = 'invalid_parameter_value';
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.cron_field(text, text, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION dashboard_cache.cron_next_run(text, text, timestamptz) FROM PUBLIC;

-- A changed schedule or zone is read (and refused when it cannot be) and moves next_run; a row
-- inserted without next_run gets one.
CREATE FUNCTION dashboard_cache.cron_job_schedule() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.next_run IS NOT NULL
       OR TG_OP = 'UPDATE' AND NEW.schedule IS NOT DISTINCT FROM OLD.schedule
                           AND NEW.schedule_timezone IS NOT DISTINCT FROM OLD.schedule_timezone THEN
        RETURN NEW;
    END IF;
    IF pg_catalog.length(NEW.schedule) > 200 THEN
        RAISE EXCEPTION 'the schedule is longer than 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names WHERE name = NEW.schedule_timezone) THEN
        RAISE EXCEPTION 'unknown schedule_timezone "%"', NEW.schedule_timezone
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an IANA zone name, e.g. UTC or Europe/Paris.';
    END IF;
    NEW.next_run := dashboard_cache.cron_next_run(NEW.schedule, NEW.schedule_timezone, pg_catalog.now());
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION dashboard_cache.cron_job_schedule() FROM PUBLIC;

RESET ROLE;

CREATE TRIGGER cron_job_schedule BEFORE INSERT OR UPDATE ON cron_job
    FOR EACH ROW WHEN (NEW.function_name = 'warmDashboardBundleCache')
    EXECUTE FUNCTION dashboard_cache.cron_job_schedule();
