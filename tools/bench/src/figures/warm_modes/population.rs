//! The simulated month's tenants and what they do: their zones and habits, drawn three ways
//! ([`Population`]), and every read and write of the warm-up and measured days, in time order.
//!
//! Population (deterministic seed): 10,000 tenants in 16 zones over the world (DST and half-hour
//! zones included); 50 % dormant, 38 % regular (read on 90 % of weekdays, about 15 % of weekend
//! days), 12 % occasional (15 % / 3 %): about a third read on a given weekday, a twentieth on a
//! weekend day. The first read of a day is at the tenant's habitual office hour (07:30-10:00 local)
//! give or take 30 minutes, then 0-4 more reads and 0-5 writes until 18:00; 3 % of tenants also have
//! an integration writing once a day at a random time. 14 days of warm-up build read histories
//! first; the figures cover the 30 days after.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use shared::bundle::tenant_time::{is_weekend, Zone};

use crate::rng::SplitMix;

pub(crate) const TENANTS: usize = 10_000;
/// Shares of tenants that never read, read on most weekdays, and read now and then.
const DORMANT: f64 = 0.50;
const REGULAR: f64 = 0.38;
/// Of the regular tenants (habitual population), those that work weekends.
const WEEKEND_WORKERS: f64 = 0.20;
/// Tenants with an integration that writes at a random time of day, every day.
const OVERNIGHT_WRITERS: f64 = 0.03;
pub(crate) const WARMUP_DAYS: i64 = 14;
pub(crate) const MEASURED_DAYS: i64 = 30;
const ZONES: [&str; 16] = [
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
];

/// How a tenant's reads on one kind of day (weekdays, or weekend days) follow each other: the chance
/// of a read on such a day after the previous day of the same kind had one, and after it had none.
#[derive(Clone, Copy, Debug)]
struct Chain {
    after_read: f64,
    after_none: f64,
}

impl Chain {
    /// Every day drawn afresh.
    fn independent(p: f64) -> Self {
        Self {
            after_read: p,
            after_none: p,
        }
    }

    /// Reads in spells of `spell_days` days of the kind on average, on `share` of them in the long
    /// run (the chain's stationary share: after_none / (1 - after_read + after_none)).
    fn spells(share: f64, spell_days: f64) -> Self {
        let after_read = 1.0 - 1.0 / spell_days;
        Self {
            after_read,
            after_none: share * (1.0 - after_read) / (1.0 - share),
        }
    }

    /// The long-run share of days of the kind with a read.
    fn share(&self) -> f64 {
        let moves = 1.0 - self.after_read + self.after_none;
        if moves > 0.0 {
            self.after_none / moves
        } else {
            self.after_read
        }
    }

    fn chance(&self, read_before: bool) -> f64 {
        if read_before {
            self.after_read
        } else {
            self.after_none
        }
    }
}

/// How the tenants' reads are drawn (the classes, zones and office hours are the same in each).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Population {
    /// Every tenant-day drawn afresh from its class's chance: regular tenants read on 90 % of weekdays
    /// and 15 % of weekend days, occasional ones on 15 % and 3 %.
    Independent,
    /// The same shares, from habits that last: a fifth of the regular tenants work weekends (75 % of
    /// weekend days) and the others read on 1 % of them; occasional tenants read in spells of
    /// `spell_days` days of the kind on average.
    Habitual { spell_days: f64 },
}

impl Population {
    pub(crate) fn label(self) -> String {
        match self {
            Population::Independent => "independent days".into(),
            Population::Habitual { spell_days } => format!("habits, {spell_days:.0}-day spells"),
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Habit {
    weekday: Chain,
    weekend: Chain,
    /// Minutes after local midnight of the habitual first read.
    first_minute: i64,
    overnight_writes: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    // Order matters at equal times: a write lands before a read (runs go first, see `steps`).
    Write,
    Read,
}

pub(crate) fn population_of(population: Population, seed: u64) -> (Vec<&'static str>, Vec<Habit>) {
    let mut rng = SplitMix::seeded(0x005e_ed15, seed);
    let mut zones = Vec::with_capacity(TENANTS);
    let mut habits = Vec::with_capacity(TENANTS);
    for _ in 0..TENANTS {
        zones.push(ZONES[rng.below(ZONES.len() as u64) as usize]);
        let class = rng.unit();
        let works_weekends = rng.unit() < WEEKEND_WORKERS;
        let (weekday, weekend) = match population {
            _ if class < DORMANT => (Chain::independent(0.0), Chain::independent(0.0)),
            Population::Independent if class < DORMANT + REGULAR => {
                (Chain::independent(0.90), Chain::independent(0.15))
            }
            Population::Independent => (Chain::independent(0.15), Chain::independent(0.03)),
            Population::Habitual { .. } if class < DORMANT + REGULAR => (
                Chain::independent(0.90),
                Chain::independent(if works_weekends { 0.75 } else { 0.01 }),
            ),
            Population::Habitual { spell_days } => {
                (Chain::spells(0.15, spell_days), Chain::spells(0.03, spell_days))
            }
        };
        habits.push(Habit {
            weekday,
            weekend,
            first_minute: 450 + rng.below(150) as i64,
            overnight_writes: rng.unit() < OVERNIGHT_WRITERS,
        });
    }
    (zones, habits)
}

pub(crate) type Event = (DateTime<Utc>, Kind, u32);

/// Every read and write of the simulation, in time order: (time, kind, tenant); and each measured
/// tenant-day's true chance of a read (what it was drawn with, unknown to the warmer).
pub(crate) fn workload(
    start: DateTime<Utc>,
    zones: &[Zone],
    habits: &[Habit],
    seed: u64,
) -> (Vec<Event>, Vec<f64>) {
    let mut rng = SplitMix::seeded(0x000b_e7c4, seed);
    let mut events = Vec::new();
    let mut chances = Vec::new();
    let first_day = start.date_naive();
    for (t, (zone, habit)) in zones.iter().zip(habits).enumerate() {
        // Whether the previous weekday, and the previous weekend day, had a read: drawn from the
        // chains' long-run shares, so the month starts in balance.
        let mut read_before = [
            rng.unit() < habit.weekday.share(),
            rng.unit() < habit.weekend.share(),
        ];
        for day in 0..(WARMUP_DAYS + MEASURED_DAYS) {
            let Some(date) = first_day.checked_add_signed(TimeDelta::days(day)) else {
                continue;
            };
            let at = |minute: i64| zone.day_start(date) + TimeDelta::minutes(minute);
            if habit.overnight_writes {
                events.push((at(rng.below(24 * 60) as i64), Kind::Write, t as u32));
            }
            let kind = usize::from(is_weekend(date));
            let chain = if kind == 1 { habit.weekend } else { habit.weekday };
            let chance = chain.chance(read_before[kind]);
            let read = rng.unit() < chance;
            read_before[kind] = read;
            if measured_date(start, date) && chance > 0.0 {
                chances.push(chance);
            }
            if !read {
                continue;
            }
            let first = (habit.first_minute + rng.below(61) as i64 - 30).max(0);
            events.push((at(first), Kind::Read, t as u32));
            let end = 18 * 60;
            for _ in 0..rng.below(5) {
                events.push((
                    at(first + rng.below((end - first).max(1) as u64) as i64),
                    Kind::Read,
                    t as u32,
                ));
            }
            for _ in 0..rng.below(6) {
                events.push((
                    at(first + 1 + rng.below((end - first).max(1) as u64) as i64),
                    Kind::Write,
                    t as u32,
                ));
            }
        }
    }
    events.sort_unstable_by_key(|(at, kind, t)| (*at, *kind, *t));
    (events, chances)
}

pub(crate) fn start() -> DateTime<Utc> {
    // A Monday; the month crosses the DST changes of March and April.
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Whether `date` (a tenant's local date) is one of the measured days: the figures count each
/// tenant's own days, so every zone has the same 30.
pub(crate) fn measured_date(start: DateTime<Utc>, date: NaiveDate) -> bool {
    let first = start.date_naive();
    let from = first.checked_add_signed(TimeDelta::days(WARMUP_DAYS));
    let to = first.checked_add_signed(TimeDelta::days(WARMUP_DAYS + MEASURED_DAYS));
    from.is_some_and(|from| date >= from) && to.is_some_and(|to| date < to)
}

#[cfg(test)]
mod tests {
    use super::super::{HEADLINE, SENSITIVITY};
    use super::*;

    #[test]
    fn spells_keep_the_share_they_are_given() {
        let chain = Chain::spells(0.15, 10.0);
        assert!((chain.share() - 0.15).abs() < 1e-12, "{}", chain.share());
        assert!((chain.after_read - 0.9).abs() < 1e-12);
        assert!((Chain::independent(0.3).share() - 0.3).abs() < 1e-12);
    }

    /// Shares of (weekday, weekend) tenant-days read over the measured days, among `tenants`.
    fn read_shares(
        start: DateTime<Utc>,
        population: Population,
        tenants: impl Fn(&Habit) -> bool,
    ) -> (f64, f64) {
        let (names, habits) = population_of(population, 0);
        let zones: Vec<Zone> = names.iter().map(|n| Zone::parse(Some(n))).collect();
        let (events, _) = workload(start, &zones, &habits, 0);
        let mut read_days = std::collections::HashSet::new();
        for (at, kind, t) in &events {
            let date = zones[*t as usize].date_at(*at);
            if *kind == Kind::Read && measured_date(start, date) && tenants(&habits[*t as usize]) {
                read_days.insert((*t, date));
            }
        }
        let weekend = read_days.iter().filter(|(_, date)| is_weekend(*date)).count();
        let weekday = read_days.len() - weekend;
        let n = habits.iter().filter(|h| tenants(h)).count().max(1) as f64;
        // The measured 30 local days from Monday 16 March: 22 weekdays, 8 weekend days.
        (weekday as f64 / (22.0 * n), weekend as f64 / (8.0 * n))
    }

    #[test]
    fn every_population_reads_a_third_of_tenants_on_weekdays_and_fewer_on_weekends() {
        for population in std::iter::once(HEADLINE).chain(SENSITIVITY) {
            let (weekday, weekend) = read_shares(start(), population, |_| true);
            assert!((0.34..0.38).contains(&weekday), "{population:?}: {weekday}");
            assert!((0.05..0.08).contains(&weekend), "{population:?}: {weekend}");
        }
    }

    #[test]
    fn occasional_tenants_read_on_their_long_run_share_from_the_first_measured_day() {
        let occasional = |h: &Habit| h.weekday.after_none > 0.0 && h.weekday.after_none < 0.5;
        for population in std::iter::once(HEADLINE).chain(SENSITIVITY) {
            let (weekday, weekend) = read_shares(start(), population, occasional);
            assert!((0.135..0.165).contains(&weekday), "{population:?}: {weekday}");
            assert!((0.022..0.038).contains(&weekend), "{population:?}: {weekend}");
        }
    }
}
