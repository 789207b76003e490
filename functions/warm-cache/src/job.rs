//! The warm job as the previous system's `cron_job` table showed it: each scheduled (or runbook)
//! run records the configured schedule, mode and the next time the schedule fires in
//! `warm_job_config`; the `cron_job` view joins it with `cache_warm_run`.

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use serde_json::json;
use shared::bundle::tenant_time::Zone;
use shared::platform::db::Database;

use crate::config::WarmConfig;

/// The next time `cron(M H * * ? *)` fires after `now` in `zone` (`H` may be `*`: hourly). Other
/// expressions (day fields, lists, ranges, `rate(...)`) give `None`: shown as an unknown next run.
pub fn next_run(expression: &str, zone: Zone, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let inner = expression.trim().strip_prefix("cron(")?.strip_suffix(')')?;
    let fields: Vec<&str> = inner.split_whitespace().collect();
    let [minute, hour, day, month, weekday, year] = fields.as_slice() else {
        return None;
    };
    let every = |f: &str| f == "*" || f == "?";
    if !(every(day) && every(month) && every(weekday) && every(year)) {
        return None;
    }
    let minute: u32 = minute.parse().ok().filter(|m| *m < 60)?;
    let hour: Option<u32> = match *hour {
        "*" => None,
        h => Some(h.parse().ok().filter(|h| *h < 24)?),
    };
    // Walk forward a minute at a time through local wall-clock time (at most two days).
    let tz = zone.tz();
    let mut at = now.with_second(0)?.with_nanosecond(0)? + TimeDelta::minutes(1);
    for _ in 0..(2 * 24 * 60) {
        let local = at.with_timezone(&tz);
        if local.minute() == minute && hour.is_none_or(|h| local.hour() == h) && local.year() > 0 {
            return Some(at);
        }
        at += TimeDelta::minutes(1);
    }
    None
}

/// Upserts the job's configuration row as of `now`.
pub async fn record(db: &Database, config: &WarmConfig, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let zone = Zone::parse(Some(&config.schedule_timezone));
    let next = next_run(&config.schedule, zone, now);
    let settings = json!({
        "mode": config.policy.mode.as_str(),
        "run_time": match config.policy.mode {
            crate::plan::Mode::All => "midnight_utc".to_owned(),
            crate::plan::Mode::Local => format!("{:02}:00 tenant-local", config.policy.local_hour),
        },
        "local_hour": config.policy.local_hour,
        "idle_days": config.policy.idle_days,
        "predictive": config.policy.predictive,
    });
    db.transaction(async |tx| {
        sqlx::query(
            "INSERT INTO warm_job_config (id, schedule, schedule_timezone, next_run, settings, updated_at)
             VALUES (true, $1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET schedule = excluded.schedule,
                schedule_timezone = excluded.schedule_timezone, next_run = excluded.next_run,
                settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .persistent(db.persistent())
        .bind(&config.schedule)
        .bind(&config.schedule_timezone)
        .bind(next)
        .bind(sqlx::types::Json(&settings))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap()
    }

    #[test]
    fn midnight_and_hourly_schedules_have_a_next_run() {
        assert_eq!(
            next_run("cron(0 0 * * ? *)", Zone::Utc, utc(10, 13, 5)),
            Some(utc(11, 0, 0))
        );
        assert_eq!(
            next_run("cron(0 * * * ? *)", Zone::Utc, utc(10, 13, 5)),
            Some(utc(10, 14, 0))
        );
        let paris = Zone::parse(Some("Europe/Paris"));
        assert_eq!(
            next_run("cron(0 2 * * ? *)", paris, utc(10, 13, 5)),
            Some(utc(11, 1, 0))
        );
        assert_eq!(next_run("rate(1 hour)", Zone::Utc, utc(10, 13, 5)), None);
        assert_eq!(next_run("cron(0 0 ? * MON *)", Zone::Utc, utc(10, 13, 5)), None);
    }
}
