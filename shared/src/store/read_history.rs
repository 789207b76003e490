//! Dashboard reads per tenant, as the warmer learns from them: the request path marks the UTC hour of
//! each read in a Redis hash (`Keys::tenant_reads`, field = unix hour), in the same round trip as
//! its bundle `GET`, so every hour with a read is recorded (the first of each day included) at no
//! cost to a hit.
//! The hash expires [`WINDOW_DAYS`] + 1 days after the last read; the warmer drops older fields. The
//! tenant's zone is applied when reading the history, so it needs no lookup on the request path.
//! A process records each tenant's read once an hour ([`RecordedThisHour`]): the field is the hour,
//! so a second `HSET` in the same hour would change nothing, and a hit is then a plain `GET`.
//!
//! A read of a scoped or widget bundle (an employee's, a team's) also sets the field
//! `<unix day>|<spec>` ([`scope_field`]) in the same hash: the warmer warms each tenant's most-read
//! scopes, ranked by the number of days they were read in the window ([`most_read_scopes`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Timelike, Utc};

use crate::bundle::identity::BundleId;
use crate::bundle::tenant_time::Zone;

/// How far back reads are kept and used: four weeks, so every weekday is seen four times.
pub const WINDOW_DAYS: u64 = 28;

/// How long a tenant's hash lives after its last read.
pub const KEEP_FOR: Duration = Duration::from_secs((WINDOW_DAYS + 1) * 86_400);

/// The hash field of a read at `at`: its unix hour.
pub fn field(at: DateTime<Utc>) -> String {
    hour(at).to_string()
}

fn hour(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

fn day(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(86_400)
}

/// The hash field of a read of a scoped bundle at `at`: `<unix day>|<spec>` (see
/// [`crate::bundle::identity::BundleId::spec`]).
pub fn scope_field(at: DateTime<Utc>, spec: &str) -> String {
    format!("{}|{spec}", day(at))
}

/// The specs of the scoped bundles read in the window at `now`, the most days with a read first (ties
/// in spec order), at most `limit`.
pub fn most_read_scopes(fields: &[String], now: DateTime<Utc>, limit: usize) -> Vec<String> {
    let oldest = day(now - chrono::TimeDelta::days(WINDOW_DAYS as i64));
    let mut days: BTreeMap<&str, u32> = BTreeMap::new();
    for field in fields {
        if let Some((read_day, spec)) = field.split_once('|') {
            if read_day.parse::<i64>().is_ok_and(|d| d >= oldest) {
                *days.entry(spec).or_default() += 1;
            }
        }
    }
    let mut ranked: Vec<(&str, u32)> = days.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(limit)
        .map(|(spec, _)| spec.to_owned())
        .collect()
}

/// The reads this process has recorded in the current hour (a tenant's whole dashboard, or one scoped
/// bundle), so that it records each once an hour rather than on every read. Bounded: past
/// [`RecordedThisHour::MAX_TENANTS`] in one hour, the others are recorded on every read, as before.
#[derive(Debug, Default)]
pub struct RecordedThisHour {
    inner: Mutex<(i64, HashSet<BundleId>)>,
}

impl RecordedThisHour {
    pub const MAX_TENANTS: usize = 10_000;

    /// Whether a read of `bundle` at `at` still has to be recorded. Both variants of a tenant's whole
    /// dashboard record the same field: they count as one.
    pub fn needs_recording(&self, bundle: BundleId, at: DateTime<Utc>) -> bool {
        let Ok(recorded) = self.inner.lock() else {
            return true;
        };
        recorded.0 != hour(at) || !recorded.1.contains(&one_per_field(bundle))
    }

    /// Notes that the read of `bundle` at `at` was recorded (Redis answered the `HSET`).
    pub fn recorded(&self, bundle: BundleId, at: DateTime<Utc>) {
        let tenant = one_per_field(bundle);
        let Ok(mut recorded) = self.inner.lock() else {
            return;
        };
        let hour = hour(at);
        if recorded.0 != hour {
            *recorded = (hour, HashSet::new());
        }
        if recorded.1.len() < Self::MAX_TENANTS {
            recorded.1.insert(tenant);
        }
    }
}

fn one_per_field(bundle: BundleId) -> BundleId {
    if bundle.is_scoped() {
        bundle
    } else {
        BundleId::new(bundle.scope, true)
    }
}

/// The hours in which a tenant was read, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadHistory {
    hours: Vec<DateTime<Utc>>,
}

impl ReadHistory {
    /// From the hash's fields; fields that are not unix hours are ignored.
    pub fn from_fields(fields: &[String]) -> Self {
        let mut hours: Vec<DateTime<Utc>> = fields
            .iter()
            .filter_map(|f| f.parse::<i64>().ok())
            .filter_map(|h| DateTime::from_timestamp(h.checked_mul(3600)?, 0))
            .collect();
        hours.sort_unstable();
        hours.dedup();
        Self { hours }
    }

    /// From read instants (the benchmark's and tests' way in).
    pub fn from_reads(reads: impl IntoIterator<Item = DateTime<Utc>>) -> Self {
        Self::from_fields(&reads.into_iter().map(field).collect::<Vec<_>>())
    }

    /// Fields older than the window at `now` (hours, and the days of scoped reads), and fields that
    /// are neither, for the warmer to delete.
    pub fn expired_fields(fields: &[String], now: DateTime<Utc>) -> Vec<String> {
        let start = now - chrono::TimeDelta::days(WINDOW_DAYS as i64);
        let (oldest_hour, oldest_day) = (hour(start), day(start));
        fields
            .iter()
            .filter(|f| match f.split_once('|') {
                Some((d, _)) => d.parse::<i64>().map_or(true, |d| d < oldest_day),
                None => f.parse::<i64>().map_or(true, |h| h < oldest_hour),
            })
            .cloned()
            .collect()
    }

    /// Adds a read at `at` (what the request path's `HSET` does), keeping the order.
    pub fn record(&mut self, at: DateTime<Utc>) {
        let Some(hour) = DateTime::from_timestamp(at.timestamp().div_euclid(3600) * 3600, 0) else {
            return;
        };
        if self.hours.last().is_none_or(|last| *last < hour) {
            self.hours.push(hour);
        } else if let Err(i) = self.hours.binary_search(&hour) {
            self.hours.insert(i, hour);
        }
    }

    /// Drops hours older than the window at `now` (what the warmer's `HDEL` and the key's expiry do).
    pub fn forget_before_window(&mut self, now: DateTime<Utc>) {
        let oldest = now - chrono::TimeDelta::days(WINDOW_DAYS as i64);
        self.hours
            .retain(|at| *at >= oldest - chrono::TimeDelta::hours(1));
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// The start of the hour of the latest read.
    pub fn last_read(&self) -> Option<DateTime<Utc>> {
        self.hours.last().copied()
    }

    /// For each local day in `[from, to)` with a read, the local hour of its first read.
    pub fn first_read_hours(&self, zone: Zone, from: NaiveDate, to: NaiveDate) -> BTreeMap<NaiveDate, u32> {
        let mut days = BTreeMap::new();
        let (start, end) = (zone.day_start(from), zone.day_start(to));
        for at in self.hours.iter().filter(|at| **at >= start && **at < end) {
            let local = at.with_timezone(&zone.tz());
            days.entry(local.date_naive()).or_insert(local.hour());
        }
        days
    }

    /// The window's first local day, for `today`.
    pub fn window_start(today: NaiveDate) -> NaiveDate {
        today.checked_sub_days(Days::new(WINDOW_DAYS)).unwrap_or(today)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn first_reads_are_grouped_by_the_tenants_local_day() {
        let tokyo = Zone::parse(Some("Asia/Tokyo"));
        // 23:10 UTC on 1 March is 08:10 on 2 March in Tokyo; 01:00 UTC is 10:00 there.
        let history = ReadHistory::from_reads([
            Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 1, 23, 10, 0).unwrap(),
        ]);
        let days = history.first_read_hours(
            tokyo,
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 5).unwrap(),
        );
        assert_eq!(
            days.into_iter().collect::<Vec<_>>(),
            [(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), 8)]
        );
    }

    #[test]
    fn a_tenant_is_recorded_once_an_hour() {
        use crate::bundle::identity::{Assignees, Scope};
        let recorded = RecordedThisHour::default();
        let tenant = |n| BundleId::new(Scope::Tenant(uuid::Uuid::from_u128(n)), true);
        let (a, b) = (tenant(1), tenant(2));
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 59, 0).unwrap();
        assert!(recorded.needs_recording(a, at));
        recorded.recorded(a, at);
        assert!(!recorded.needs_recording(a, at + chrono::TimeDelta::seconds(59)));
        assert!(
            !recorded.needs_recording(BundleId::new(a.scope, false), at),
            "one field for both"
        );
        assert!(recorded.needs_recording(b, at));
        // A scoped bundle of the same tenant has a field of its own.
        let scoped = BundleId {
            assignees: Assignees::Employee(uuid::Uuid::from_u128(9)),
            ..a
        };
        assert!(recorded.needs_recording(scoped, at));
        // The next hour is a new field: recorded again.
        assert!(recorded.needs_recording(a, at + chrono::TimeDelta::minutes(1)));
    }

    #[test]
    fn scopes_are_ranked_by_their_days_with_reads_in_the_window() {
        let now = Utc.with_ymd_and_hms(2026, 3, 30, 12, 0, 0).unwrap();
        let days_ago = |n| now - chrono::TimeDelta::days(n);
        let fields = vec![
            scope_field(days_ago(1), "include=true:emp=b"),
            scope_field(days_ago(2), "include=true:emp=b"),
            scope_field(days_ago(1), "include=true:emp=a"),
            scope_field(days_ago(3), "include=true:team=c"),
            scope_field(days_ago(40), "include=true:team=c"),
            scope_field(days_ago(41), "include=true:team=c"),
            field(days_ago(1)),
        ];
        assert_eq!(
            most_read_scopes(&fields, now, 10),
            ["include=true:emp=b", "include=true:emp=a", "include=true:team=c"]
        );
        assert_eq!(most_read_scopes(&fields, now, 1), ["include=true:emp=b"]);
        assert_eq!(
            ReadHistory::expired_fields(&fields, now),
            [fields[4].clone(), fields[5].clone()]
        );
    }

    #[test]
    fn fields_past_the_window_are_expired() {
        let now = Utc.with_ymd_and_hms(2026, 3, 30, 12, 0, 0).unwrap();
        let fields = vec![
            field(now - chrono::TimeDelta::days(29)),
            field(now - chrono::TimeDelta::days(1)),
            "junk".to_owned(),
        ];
        assert_eq!(
            ReadHistory::expired_fields(&fields, now),
            [fields[0].clone(), "junk".to_owned()]
        );
    }
}
