//! What the warm-cache function reads from the environment, once per cold start. It verifies no
//! tokens, so it needs no JWT secret.

use std::time::Duration;

use shared::env::ConfigError;
use shared::env::Env;
use shared::platform::db::DatabaseConfig;
use shared::serving::Freshness;
use shared::store::keys::Keys;
use shared::store::RedisConfig;

use crate::plan::{Mode, Policy};

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub keys: Keys,
    pub freshness: Freshness,
    pub warm: WarmConfig,
}

/// Bounds the scoped bundles warmed per tenant: each is a computation within the tenant's time bound.
pub const MAX_WARM_SCOPES_PER_TENANT: usize = 500;

/// How runs are paced and bounded.
#[derive(Debug, Clone)]
pub struct WarmConfig {
    /// Tenants warmed at once (`WARM_CONCURRENCY`), by default the Postgres pool size.
    pub concurrency: usize,
    /// Redis expiry of a warmed entry (`WARM_TTL_SECONDS`): long enough to reach the next run.
    pub expire_after: Duration,
    /// Above this many active tenants, a scheduled run fans out in chunks (`WARM_FANOUT_THRESHOLD`).
    pub fanout_threshold: u64,
    /// Tenants per fan-out event (`WARM_CHUNK_SIZE`, at most [`MAX_WARM_CHUNK_SIZE`]).
    pub chunk_size: usize,
    /// Scoped bundles (an employee's, a team's, a widget selection) warmed per tenant beside its two
    /// whole ones: the most read in the read history's window (`WARM_SCOPES_PER_TENANT`, at most
    /// [`MAX_WARM_SCOPES_PER_TENANT`]; 0: none).
    pub scopes_per_tenant: usize,
    /// The EventBridge bus chunk events go to (`WARM_EVENT_BUS_NAME`); no fan-out without it.
    pub event_bus_name: Option<String>,
    /// Bound on warming one tenant's two bundles together (`WARM_TENANT_TIMEOUT_MS`).
    pub tenant_timeout: Duration,
    /// No new tenant is started when less than this remains before the invocation's deadline
    /// (`WARM_DEADLINE_MARGIN_MS`); at least the tenant bound, so a tenant started just before the
    /// margin still ends before the deadline.
    pub deadline_margin: Duration,
    /// Which tenants a scheduled run warms (`WARM_MODE`, `WARM_LOCAL_HOUR`, `WARM_IDLE_DAYS`,
    /// `WARM_PREDICTIVE`, `WARM_LEAD_MINUTES`).
    pub policy: Policy,
    /// The job's initial schedule in `cron_job` (`WARM_SCHEDULE`; by default the mode's: midnight UTC
    /// for `all`, hourly for `local`). Once the row exists, `cron_job.schedule` rules.
    pub schedule: String,
    /// The IANA zone `schedule` is read in (`WARM_SCHEDULE_TIMEZONE`, default UTC), also initial.
    pub schedule_timezone: String,
    /// Answer `POST /api/cron/execute` HTTP events (`WARM_CRON_ROUTE`, `make dev` only).
    pub cron_route: bool,
    /// Active tenants a scheduled run recomputes the slow way to check the maintained stats
    /// (`WARM_CHECK_SAMPLE`; 0: no check).
    pub check_sample: u32,
}

/// The schedules the template uses for each mode.
pub const MIDNIGHT_SCHEDULE: &str = "cron(0 0 * * ? *)";
pub const HOURLY_SCHEDULE: &str = "cron(0 * * * ? *)";

/// 500 tenant ids make a ~20 KB event; ten of them stay under PutEvents' 256 KB request limit.
pub const MAX_WARM_CHUNK_SIZE: usize = 500;

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let database = DatabaseConfig::from_env(env)?;
        let warm = WarmConfig::from_env(env, database.max_connections as usize)?;
        Ok(Self {
            database,
            redis: RedisConfig::from_env(env)?,
            keys: Keys::from_env(env)?,
            freshness: Freshness::from_env(env)?,
            warm,
        })
    }
}

impl WarmConfig {
    fn from_env(env: &Env, pool_size: usize) -> Result<Self, ConfigError> {
        let invalid = |name, reason: String| ConfigError::Invalid { name, reason };
        let chunk_size = env.parsed("WARM_CHUNK_SIZE", 250)?;
        if chunk_size == 0 || chunk_size > MAX_WARM_CHUNK_SIZE {
            return Err(invalid(
                "WARM_CHUNK_SIZE",
                format!("must be between 1 and {MAX_WARM_CHUNK_SIZE}"),
            ));
        }
        let concurrency = env.parsed("WARM_CONCURRENCY", pool_size)?;
        if concurrency == 0 {
            return Err(invalid("WARM_CONCURRENCY", "must be at least 1".into()));
        }
        let tenant_timeout = env.millis("WARM_TENANT_TIMEOUT_MS", 10_000)?;
        let deadline_margin = env.millis("WARM_DEADLINE_MARGIN_MS", 15_000)?;
        if deadline_margin < tenant_timeout {
            return Err(invalid(
                "WARM_DEADLINE_MARGIN_MS",
                format!("must be at least WARM_TENANT_TIMEOUT_MS ({tenant_timeout:?})"),
            ));
        }
        let policy = policy_from_env(env)?;
        let schedule = env.optional("WARM_SCHEDULE").unwrap_or_else(|| {
            match policy.mode {
                Mode::All => MIDNIGHT_SCHEDULE,
                Mode::Local => HOURLY_SCHEDULE,
            }
            .to_owned()
        });
        Ok(Self {
            policy,
            schedule,
            schedule_timezone: env
                .optional("WARM_SCHEDULE_TIMEZONE")
                .unwrap_or_else(|| "UTC".to_owned()),
            cron_route: env.parsed("WARM_CRON_ROUTE", false)?,
            concurrency,
            expire_after: Duration::from_secs(env.parsed("WARM_TTL_SECONDS", 25 * 3600)?),
            fanout_threshold: env.parsed("WARM_FANOUT_THRESHOLD", 2_000)?,
            chunk_size,
            scopes_per_tenant: match env.parsed("WARM_SCOPES_PER_TENANT", 50)? {
                n if n <= MAX_WARM_SCOPES_PER_TENANT => n,
                _ => {
                    return Err(invalid(
                        "WARM_SCOPES_PER_TENANT",
                        format!("must be at most {MAX_WARM_SCOPES_PER_TENANT}"),
                    ))
                }
            },
            event_bus_name: env.optional("WARM_EVENT_BUS_NAME"),
            tenant_timeout,
            deadline_margin,
            check_sample: env.parsed("WARM_CHECK_SAMPLE", 20)?,
        })
    }
}

fn policy_from_env(env: &Env) -> Result<Policy, ConfigError> {
    let invalid = |name, reason: &str| ConfigError::Invalid {
        name,
        reason: reason.to_owned(),
    };
    let mode = match env.optional("WARM_MODE").as_deref().map(str::trim) {
        None | Some("all") => Mode::All,
        Some("local") => Mode::Local,
        Some(_) => return Err(invalid("WARM_MODE", "must be all or local")),
    };
    let local_hour: u32 = env.parsed("WARM_LOCAL_HOUR", 5)?;
    if local_hour > 23 {
        return Err(invalid("WARM_LOCAL_HOUR", "must be an hour from 0 to 23"));
    }
    let idle_days: Option<u32> = match env.optional("WARM_IDLE_DAYS") {
        None => None,
        Some(_) => Some(env.parsed("WARM_IDLE_DAYS", 0)?),
    };
    if idle_days == Some(0) || idle_days.is_some_and(|d| d > 28) {
        return Err(invalid(
            "WARM_IDLE_DAYS",
            "must be 1 to 28 days (the read history's window), or unset to warm everyone",
        ));
    }
    let lead_minutes: i64 = env.parsed("WARM_LEAD_MINUTES", 60)?;
    if !(0..=720).contains(&lead_minutes) {
        return Err(invalid("WARM_LEAD_MINUTES", "must be 0 to 720"));
    }
    Ok(Policy {
        mode,
        local_hour,
        idle_days,
        predictive: env.parsed("WARM_PREDICTIVE", true)?,
        lead: chrono::TimeDelta::minutes(lead_minutes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| match name {
            "DATABASE_URL" => Some("postgres://x".to_owned()),
            "REDIS_URL" => Some("redis://r".to_owned()),
            _ => extra.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()),
        }
    }

    #[test]
    fn needs_no_jwt_secret() {
        let config = Config::from_env(&Env::new(vars(&[]))).unwrap();
        assert_eq!(config.warm.concurrency, 4);
    }

    #[test]
    fn a_margin_shorter_than_one_tenant_is_refused() {
        let err = Config::from_env(&Env::new(vars(&[
            ("WARM_TENANT_TIMEOUT_MS", "30000"),
            ("WARM_DEADLINE_MARGIN_MS", "15000"),
        ])))
        .unwrap_err();
        assert!(err.to_string().contains("WARM_DEADLINE_MARGIN_MS"), "{err}");
    }

    #[test]
    fn the_default_is_the_midnight_warm_of_everyone() {
        let config = Config::from_env(&Env::new(vars(&[]))).unwrap();
        assert_eq!(config.warm.policy.mode, Mode::All);
        assert_eq!(config.warm.policy.idle_days, None);
        assert_eq!(config.warm.schedule, MIDNIGHT_SCHEDULE);
    }

    #[test]
    fn local_mode_runs_hourly_and_bad_values_are_refused() {
        let config = Config::from_env(&Env::new(vars(&[("WARM_MODE", "local")]))).unwrap();
        assert_eq!(
            (config.warm.policy.local_hour, config.warm.schedule.as_str()),
            (5, HOURLY_SCHEDULE)
        );
        for (name, value) in [
            ("WARM_MODE", "tenant"),
            ("WARM_LOCAL_HOUR", "24"),
            ("WARM_IDLE_DAYS", "0"),
            ("WARM_PREDICTIVE", "maybe"),
        ] {
            let err = Config::from_env(&Env::new(|n: &str| match n {
                "DATABASE_URL" => Some("postgres://x".to_owned()),
                "REDIS_URL" => Some("redis://r".to_owned()),
                n if n == name => Some(value.to_owned()),
                _ => None,
            }))
            .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn oversized_chunks_are_refused() {
        let err = Config::from_env(&Env::new(vars(&[("WARM_CHUNK_SIZE", "501")]))).unwrap_err();
        assert!(err.to_string().contains("WARM_CHUNK_SIZE"), "{err}");
    }
}
