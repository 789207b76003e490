//! A tenant's own day: its IANA time zone (`tenant.timezone`, NULL = UTC), where its local days begin
//! and end, and a local wall-clock time as an instant. The 30-day figures, the freshness "same day"
//! rule and the warm time all count in this day, so they agree. The global view's day is UTC.
//!
//! Local times are resolved the same way everywhere: a time that does not exist (skipped by a
//! daylight-saving change) moves forward to the first minute that does; a time that exists twice (the
//! hour repeated when clocks go back) is its first occurrence. So every local day has exactly one
//! instant for each hour, and a warm at 05:00 happens once on 23- and 25-hour days alike.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

/// A tenant's zone as stored: valid, absent (UTC), or a name this build does not know (UTC, and the
/// warmer reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Named(Tz),
    Utc,
    Invalid,
}

impl Zone {
    /// Reads `tenant.timezone`. Never fails: an unknown name is [`Zone::Invalid`], counted as UTC.
    pub fn parse(name: Option<&str>) -> Self {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            None => Zone::Utc,
            Some(name) => name.parse::<Tz>().map_or(Zone::Invalid, Zone::Named),
        }
    }

    pub fn is_invalid(self) -> bool {
        self == Zone::Invalid
    }

    /// The zone days are counted in.
    pub fn tz(self) -> Tz {
        match self {
            Zone::Named(tz) => tz,
            Zone::Utc | Zone::Invalid => Tz::UTC,
        }
    }

    /// The local calendar date at `at`.
    pub fn date_at(self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz()).date_naive()
    }

    /// The instant local `date` reaches `hour`:00 (see the module documentation for DST gaps and
    /// repeated hours). `hour` above 23 is taken as 23.
    pub fn at_hour(self, date: NaiveDate, hour: u32) -> DateTime<Utc> {
        let time = NaiveTime::from_hms_opt(hour.min(23), 0, 0).unwrap_or(NaiveTime::MIN);
        self.resolve(date.and_time(time))
    }

    /// The instant local `date` begins.
    pub fn day_start(self, date: NaiveDate) -> DateTime<Utc> {
        self.resolve(date.and_time(NaiveTime::MIN))
    }

    /// The instant the local day containing `at` ends (the next local day's start).
    pub fn day_end(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let date = self.date_at(at);
        let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
        self.day_start(next)
    }

    fn resolve(self, local: chrono::NaiveDateTime) -> DateTime<Utc> {
        let tz = self.tz();
        // Gaps are at most a few hours long; step through them a quarter of an hour at a time.
        for step in 0..=4 * 24 {
            let candidate = local + TimeDelta::minutes(15 * step);
            match tz.from_local_datetime(&candidate) {
                LocalResult::Single(at) => return at.with_timezone(&Utc),
                LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
                LocalResult::None => continue,
            }
        }
        local.and_utc()
    }
}

/// Saturday and Sunday.
pub fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn unknown_and_missing_names_count_as_utc() {
        assert_eq!(Zone::parse(None), Zone::Utc);
        assert_eq!(Zone::parse(Some(" ")), Zone::Utc);
        assert_eq!(Zone::parse(Some("Mars/Olympus_Mons")), Zone::Invalid);
        assert_eq!(Zone::parse(Some("Mars/Olympus_Mons")).tz(), Tz::UTC);
        assert_eq!(Zone::parse(Some("Asia/Tokyo")), Zone::Named(Tz::Asia__Tokyo));
    }

    #[test]
    fn tokyo_day_starts_at_fifteen_utc_the_day_before() {
        let tokyo = Zone::parse(Some("Asia/Tokyo"));
        assert_eq!(tokyo.day_start(date(2026, 12, 1)), utc(2026, 11, 30, 15, 0));
        assert_eq!(tokyo.day_end(utc(2026, 11, 30, 15, 0)), utc(2026, 12, 1, 15, 0));
    }

    #[test]
    fn a_skipped_hour_moves_forward_and_a_repeated_one_is_its_first_time() {
        let ny = Zone::parse(Some("America/New_York"));
        // 2026-03-08: 02:00 does not exist in New York (clocks jump to 03:00 EDT = 07:00 UTC).
        assert_eq!(ny.at_hour(date(2026, 3, 8), 2), utc(2026, 3, 8, 7, 0));
        // 2026-11-01: 01:00 happens twice; the first is EDT (05:00 UTC).
        assert_eq!(ny.at_hour(date(2026, 11, 1), 1), utc(2026, 11, 1, 5, 0));
    }

    #[test]
    fn dst_days_last_23_and_25_hours() {
        let paris = Zone::parse(Some("Europe/Paris"));
        let short = paris.day_end(utc(2026, 3, 29, 12, 0)) - paris.day_start(date(2026, 3, 29));
        let long = paris.day_end(utc(2026, 10, 25, 12, 0)) - paris.day_start(date(2026, 10, 25));
        assert_eq!((short.num_hours(), long.num_hours()), (23, 25));
    }
}
