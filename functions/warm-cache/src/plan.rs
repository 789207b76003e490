//! Which tenants a scheduled run warms, and why it leaves the others: a pure function of the tenant's
//! zone, warm hour, last warm, read history and the run's clock, shared by the warmer and the
//! benchmark's simulation.
//!
//! - `WARM_MODE=all`: every active tenant, every run (the midnight warm).
//! - `WARM_MODE=local` (an hourly schedule): a tenant is due once per local day, at the first run at
//!   or after its target time that day and not yet warmed since that day began. A missed run is thus
//!   caught up by the next one, and a 23- or 25-hour day warms once. The target is the local
//!   `warm_hour` (`tenant.warm_hour`, else `WARM_LOCAL_HOUR`), or, with `WARM_PREDICTIVE` and at least
//!   [`MIN_ACTIVE_DAYS`] days of reads in the window, `WARM_LEAD_MINUTES` before the earliest local
//!   hour of a first read on days of the same kind (weekday or weekend), never before local midnight.
//! - Either mode, with `WARM_IDLE_DAYS`: a tenant with no read in that many days is skipped, once
//!   reads have been recorded that long (a fresh deployment knows nothing and skips nobody).
//! - Local predictive mode also skips a tenant on a kind of day (weekday, weekend) it has not been
//!   read on in the whole window, once reads have been recorded for [`ESTABLISHED_DAYS`].

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use shared::bundle::tenant_time::{is_weekend, Zone};
use shared::store::read_history::ReadHistory;
use uuid::Uuid;

/// Fewer days with reads than this in the window: too little history, the fixed hour is used.
pub const MIN_ACTIVE_DAYS: usize = 3;
/// Reads recorded for at least this long before "never read on weekends" is believed.
pub const ESTABLISHED_DAYS: i64 = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    All,
    Local,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::Local => "local",
        }
    }
}

/// The selection settings of [`crate::config::WarmConfig`].
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub mode: Mode,
    /// `WARM_LOCAL_HOUR`.
    pub local_hour: u32,
    /// `WARM_IDLE_DAYS`; `None`: warm everyone.
    pub idle_days: Option<u32>,
    /// `WARM_PREDICTIVE`: in local mode, warm before the usual first read.
    pub predictive: bool,
    /// `WARM_LEAD_MINUTES`: how long before the usual first read's hour.
    pub lead: TimeDelta,
}

impl Policy {
    /// Whether decisions need read histories (so the run loads them).
    pub fn needs_history(&self) -> bool {
        self.idle_days.is_some() || (self.mode == Mode::Local && self.predictive)
    }
}

/// What a scheduled run knows of one tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub zone: Zone,
    pub warm_hour: Option<u32>,
    pub last_warmed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// Local mode: its time today has not come, or it was warmed today already.
    NotDue,
    /// No read in `WARM_IDLE_DAYS`.
    Idle,
    /// Never read on this kind of day (weekday or weekend) in the window.
    NotExpected,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NotDue => "not_due",
            Skip::Idle => "idle",
            Skip::NotExpected => "not_expected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Warm,
    Skip(Skip),
}

/// Reads as the run sees them: the tenant's history (`None` when Redis could not say), and since
/// when reads have been recorded at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reads<'a> {
    pub history: Option<&'a ReadHistory>,
    pub recorded_since: Option<DateTime<Utc>>,
}

impl Reads<'_> {
    fn recorded_for(&self, now: DateTime<Utc>) -> TimeDelta {
        self.recorded_since.map_or(TimeDelta::zero(), |since| now - since)
    }
}

/// Whether a scheduled run at `now` warms `tenant`.
pub fn decide(policy: &Policy, now: DateTime<Utc>, tenant: &Tenant, reads: Reads<'_>) -> Decision {
    if let (Some(days), Some(history)) = (policy.idle_days, reads.history) {
        let idle_for = TimeDelta::days(i64::from(days));
        let quiet = history.last_read().is_none_or(|at| now - at >= idle_for);
        if quiet && reads.recorded_for(now) >= idle_for {
            return Decision::Skip(Skip::Idle);
        }
    }
    if policy.mode == Mode::All {
        return Decision::Warm;
    }
    let zone = tenant.zone;
    let today = zone.date_at(now);
    if tenant
        .last_warmed_at
        .is_some_and(|at| at >= zone.day_start(today))
    {
        return Decision::Skip(Skip::NotDue);
    }
    let target = match target_time(policy, now, tenant, reads) {
        Ok(target) => target,
        Err(skip) => return Decision::Skip(skip),
    };
    if now >= target {
        Decision::Warm
    } else {
        Decision::Skip(Skip::NotDue)
    }
}

/// When `tenant` should be warm today (local), or why it should not be warmed today at all.
pub fn target_time(
    policy: &Policy,
    now: DateTime<Utc>,
    tenant: &Tenant,
    reads: Reads<'_>,
) -> Result<DateTime<Utc>, Skip> {
    let zone = tenant.zone;
    let today = zone.date_at(now);
    let fixed = zone.at_hour(today, tenant.warm_hour.unwrap_or(policy.local_hour));
    let Some(history) = reads.history.filter(|_| policy.predictive) else {
        return Ok(fixed);
    };
    let days = history.first_read_hours(zone, ReadHistory::window_start(today), today);
    if days.len() < MIN_ACTIVE_DAYS {
        return Ok(fixed);
    }
    let weekend = is_weekend(today);
    let same_kind: Vec<u32> = days
        .iter()
        .filter(|(date, _)| is_weekend(**date) == weekend)
        .map(|(_, hour)| *hour)
        .collect();
    if same_kind.is_empty() && reads.recorded_for(now) >= TimeDelta::days(ESTABLISHED_DAYS) {
        return Err(Skip::NotExpected);
    }
    let earliest = if same_kind.len() >= 2 {
        same_kind.into_iter().min()
    } else {
        days.values().copied().min()
    };
    let Some(hour) = earliest else {
        return Ok(fixed);
    };
    Ok((zone.at_hour(today, hour) - policy.lead).max(zone.day_start(today)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn local() -> Policy {
        Policy {
            mode: Mode::Local,
            local_hour: 5,
            idle_days: None,
            predictive: true,
            lead: TimeDelta::minutes(60),
        }
    }

    fn tenant(zone: &str, last: Option<DateTime<Utc>>) -> Tenant {
        Tenant {
            id: Uuid::nil(),
            zone: Zone::parse(Some(zone)),
            warm_hour: None,
            last_warmed_at: last,
        }
    }

    #[test]
    fn predictive_target_is_an_hour_before_the_earliest_weekday_first_read() {
        let paris = tenant("Europe/Paris", None);
        // Weekday first reads at 09:xx and 08:xx Paris time (CET, UTC+1) in early March.
        let history = ReadHistory::from_reads([
            utc(2026, 3, 2, 8, 10),
            utc(2026, 3, 3, 7, 30),
            utc(2026, 3, 4, 8, 5),
            utc(2026, 3, 4, 12, 0),
        ]);
        let reads = Reads {
            history: Some(&history),
            recorded_since: Some(utc(2026, 2, 1, 0, 0)),
        };
        // Thursday 5 March: earliest first read 08:00 local, so 07:00 local = 06:00 UTC.
        let target = target_time(&local(), utc(2026, 3, 5, 0, 0), &paris, reads);
        assert_eq!(target, Ok(utc(2026, 3, 5, 6, 0)));
        // Saturday: never read on a weekend in an established history.
        let target = target_time(&local(), utc(2026, 3, 7, 0, 0), &paris, reads);
        assert_eq!(target, Err(Skip::NotExpected));
    }

    #[test]
    fn too_little_history_falls_back_to_the_fixed_hour() {
        let tokyo = tenant("Asia/Tokyo", None);
        let history = ReadHistory::from_reads([utc(2026, 3, 2, 0, 10)]);
        let reads = Reads {
            history: Some(&history),
            recorded_since: Some(utc(2026, 2, 1, 0, 0)),
        };
        // 05:00 in Tokyo on 5 March is 20:00 UTC on 4 March.
        let target = target_time(&local(), utc(2026, 3, 4, 21, 0), &tokyo, reads);
        assert_eq!(target, Ok(utc(2026, 3, 4, 20, 0)));
    }

    #[test]
    fn a_tenant_warmed_today_is_not_due_again_until_its_next_local_day() {
        let policy = Policy {
            predictive: false,
            ..local()
        };
        let ny = tenant("America/New_York", Some(utc(2026, 3, 10, 9, 0)));
        assert_eq!(
            decide(&policy, utc(2026, 3, 11, 3, 0), &ny, Reads::default()),
            Decision::Skip(Skip::NotDue),
            "23:00 in New York, same local day"
        );
        assert_eq!(
            decide(&policy, utc(2026, 3, 11, 9, 0), &ny, Reads::default()),
            Decision::Warm
        );
    }

    #[test]
    fn idle_skip_waits_until_reads_were_recorded_that_long() {
        let policy = Policy {
            mode: Mode::All,
            idle_days: Some(7),
            ..local()
        };
        let empty = ReadHistory::default();
        let t = tenant("UTC", None);
        let young = Reads {
            history: Some(&empty),
            recorded_since: Some(utc(2026, 3, 8, 0, 0)),
        };
        let old = Reads {
            history: Some(&empty),
            recorded_since: Some(utc(2026, 3, 1, 0, 0)),
        };
        let now = utc(2026, 3, 10, 0, 0);
        assert_eq!(decide(&policy, now, &t, young), Decision::Warm);
        assert_eq!(decide(&policy, now, &t, old), Decision::Skip(Skip::Idle));
        assert_eq!(
            decide(&policy, now, &t, Reads::default()),
            Decision::Warm,
            "no history known: warm"
        );
    }
}
