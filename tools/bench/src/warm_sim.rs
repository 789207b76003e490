//! `BENCH_FIGURES=warm-modes`: midnight-UTC-everyone vs tenant-local vs predictive warming, replayed
//! over a simulated month with a simulated clock.
//!
//! The selection is the warmer's own (`warm_cache::plan::decide`, the same zones, DST handling, read
//! histories and idle/weekend rules as a real run). The request path is a reduced-cost model of
//! `BundleCache::get_bundle` (no Redis or Postgres round trips, which would take hours for 10,000
//! tenants x 44 days): an entry of the tenant's current local day (`Zone::day_end`, the rule the
//! entry's `day_ends_at` carries) is a `HIT` within [`FRESH_FOR`] of being computed or validated, and
//! after that while no write has moved the tenant's data version; otherwise the read computes it
//! (`MISS`) and stores it. Warms store an entry the same way. One bundle variant per tenant is
//! counted. `BENCH_FIGURES=warm-replay` (`crate::warm_replay`) checks this model against the real
//! warmer and request path on a sample of the same tenants.
//!
//! Population (deterministic seed): 10,000 tenants in 16 zones over the world (DST and half-hour
//! zones included); 50 % dormant, 38 % regular (read on 90 % of weekdays, about 15 % of weekend
//! days), 12 % occasional (15 % / 3 %): about a third read on a given weekday, a twentieth on a
//! weekend day. The first read of a day is at the tenant's habitual office hour (07:30-10:00 local)
//! give or take 30 minutes, then 0-4 more reads and 0-5 writes until 18:00; 3 % of tenants also have
//! an integration writing once a day at a random time. 14 days of warm-up build read histories
//! first; the figures cover the 30 days after.
//!
//! Which tenant reads on which day is drawn three ways ([`Population`]) with the same shares: from
//! habits that last, with occasional tenants working in spells of ten or of five days (the headline
//! figures use ten), and with every tenant-day drawn afresh. How predictable the reads are bounds what
//! any warmer can catch with a budget, so each predictive figure stands beside that bound
//! ([`oracle_share`]): the best selection of as many warms, knowing each tenant-day's true chance.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use shared::read_history::ReadHistory;
use shared::tenant_time::{is_weekend, Zone};
use uuid::Uuid;
use warm_cache::plan::{self, Decision, Mode, Policy, Reads};

use crate::Row;

const TENANTS: usize = 10_000;
/// Shares of tenants that never read, read on most weekdays, and read now and then.
const DORMANT: f64 = 0.50;
const REGULAR: f64 = 0.38;
/// Of the regular tenants (habitual population), those that work weekends.
const WEEKEND_WORKERS: f64 = 0.20;
/// Tenants with an integration that writes at a random time of day, every day.
const OVERNIGHT_WRITERS: f64 = 0.03;
const WARMUP_DAYS: i64 = 14;
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

/// splitmix64: small, deterministic, good enough for a workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

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
    fn label(self) -> String {
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

/// One measured tenant-day: its true chance of a read (the simulation's, unknown to the warmer) and
/// whether it was read.
#[derive(Clone, Copy)]
pub(crate) struct TenantDay {
    chance: f64,
    read: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    // Order matters at equal times: a write lands before a read (runs go first, see `replay`).
    Write,
    Read,
}

/// What one policy produced over the measured days.
#[derive(Default, Debug)]
pub(crate) struct Outcome {
    pub first_reads: u64,
    pub first_read_hits: u64,
    pub warm_computations: u64,
    pub request_computations: u64,
    /// Each measured tenant-day's first read: (tenant, local date, whether it was a HIT).
    pub firsts: Vec<(u32, NaiveDate, bool)>,
}

fn policies() -> [(&'static str, Policy); 4] {
    let base = Policy {
        mode: Mode::Local,
        local_hour: 5,
        idle_days: None,
        predictive: false,
        lead: TimeDelta::minutes(60),
    };
    [
        (
            "midnight UTC, everyone",
            Policy {
                mode: Mode::All,
                ..base
            },
        ),
        ("tenant-local 05:00", base),
        (
            "predictive (idle 7 d)",
            Policy {
                idle_days: Some(7),
                predictive: true,
                ..base
            },
        ),
        (
            "predictive (idle 14 d)",
            Policy {
                idle_days: Some(14),
                predictive: true,
                ..base
            },
        ),
    ]
}

/// The policy the real-path replay (`crate::warm_replay`) checks the model with.
pub(crate) fn headline_policy() -> (&'static str, Policy) {
    policies()[3]
}

/// The population the headline figures use, and the others each predictive policy is also run on.
pub(crate) const HEADLINE: Population = Population::Habitual { spell_days: 10.0 };
const SENSITIVITY: [Population; 2] = [Population::Habitual { spell_days: 5.0 }, Population::Independent];

pub fn run() -> Vec<Row> {
    let start = start();
    let mut rows = Vec::new();
    for population in std::iter::once(HEADLINE).chain(SENSITIVITY) {
        let (names, habits) = population_of(population);
        let zones: Vec<Zone> = names.iter().map(|n| Zone::parse(Some(n))).collect();
        let (events, days) = workload(start, &zones, &habits);
        let outcomes: Vec<(&str, Outcome)> = policies()
            .iter()
            .filter(|(name, _)| population == HEADLINE || !name.starts_with("tenant-local"))
            .map(|(name, policy)| (*name, replay(start, policy, &zones, &events)))
            .collect();
        rows.extend(report(population, &outcomes, &days));
    }
    rows
}

fn report(population: Population, outcomes: &[(&str, Outcome)], days: &[TenantDay]) -> Vec<Row> {
    let measured = MEASURED_DAYS as f64;
    let everyone = outcomes.first().map_or(1, |(_, o)| o.warm_computations.max(1)) as f64;
    let label = population.label();
    let headline = population == HEADLINE;
    let mut rows = Vec::new();
    for (name, o) in outcomes {
        let predictive = name.starts_with("predictive");
        if !headline && !predictive {
            continue;
        }
        let share = 100.0 * o.first_read_hits as f64 / o.first_reads.max(1) as f64;
        let bound = 100.0 * oracle_share(days, o.warm_computations as usize);
        rows.push(Row {
            figure: format!("W1. First read of a tenant-day that is a HIT, {name}; {label}"),
            ours: format!("{share:.2} %"),
            floor: if predictive {
                format!("{bound:.2} % (best selection of as many warms)")
            } else {
                format!("{} first reads", o.first_reads)
            },
            ratio: "—".into(),
            goal: if predictive { "≥ 99 %" } else { "—" }.into(),
            how: "simulated month (see warm_sim.rs): plan::decide + the freshness rule".into(),
        });
        rows.push(Row {
            figure: format!("W2. Bundles computed by the warmer per day, {name}; {label}"),
            ours: format!("{:.0}", o.warm_computations as f64 / measured),
            floor: format!("{:.0} (everyone)", everyone / measured),
            ratio: format!("{:.1} %", 100.0 * o.warm_computations as f64 / everyone),
            goal: if predictive { "≤ 40 %" } else { "—" }.into(),
            how: "one bundle variant per tenant".into(),
        });
        if headline {
            rows.push(Row {
                figure: format!("W3. Bundles computed on the request path per day, {name}; {label}"),
                ours: format!("{:.0}", o.request_computations as f64 / measured),
                floor: "—".into(),
                ratio: "—".into(),
                goal: "—".into(),
                how: "reads that found no current entry (a write since, or no warm today)".into(),
            });
        }
    }
    let budget = (0.4 * everyone) as usize;
    rows.push(Row {
        figure: format!("W4. Best first-read HIT share of any selection at 40 % of everyone; {label}"),
        ours: format!("{:.2} %", 100.0 * oracle_share(days, budget)),
        floor: "—".into(),
        ratio: "—".into(),
        goal: "—".into(),
        how: "the 40 % likeliest tenant-days by their true chance; writes ignored".into(),
    });
    rows
}

/// The share of first reads that warming the `budget` likeliest tenant-days would catch, knowing each
/// tenant-day's true chance of a read (what the simulation drew it with) and ignoring writes between
/// the warm and the read: an upper bound for any selection of that many warms.
fn oracle_share(days: &[TenantDay], budget: usize) -> f64 {
    let mut by_chance: Vec<&TenantDay> = days.iter().collect();
    by_chance.sort_by(|a, b| b.chance.total_cmp(&a.chance));
    let reads = days.iter().filter(|d| d.read).count().max(1);
    let caught = by_chance.iter().take(budget).filter(|d| d.read).count();
    caught as f64 / reads as f64
}

pub(crate) fn population_of(population: Population) -> (Vec<&'static str>, Vec<Habit>) {
    let mut rng = Rng(0x005e_ed15);
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
/// tenant-day's chance of a read and whether it had one.
pub(crate) fn workload(
    start: DateTime<Utc>,
    zones: &[Zone],
    habits: &[Habit],
) -> (Vec<Event>, Vec<TenantDay>) {
    let mut rng = Rng(0x000b_e7c4);
    let mut events = Vec::new();
    let mut days = Vec::new();
    let first_day = start.date_naive();
    for (t, (zone, habit)) in zones.iter().zip(habits).enumerate() {
        // Whether the previous weekday, and the previous weekend day, had a read.
        let mut read_before = [false, false];
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
            if day >= WARMUP_DAYS && chance > 0.0 {
                days.push(TenantDay { chance, read });
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
    (events, days)
}

/// One step of a replay: a scheduled run of the warmer, or a read or write.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    Run(DateTime<Utc>),
    Event(Event),
}

pub(crate) fn start() -> DateTime<Utc> {
    // A Monday; the month crosses the DST changes of March and April.
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

pub(crate) fn measured_from(start: DateTime<Utc>) -> DateTime<Utc> {
    start + TimeDelta::days(WARMUP_DAYS)
}

/// The runs `policy` schedules (daily at midnight UTC for `all`, hourly for `local`) merged with
/// `events` in time order; at equal times a run goes first.
pub(crate) fn steps<'a>(
    start: DateTime<Utc>,
    policy: &Policy,
    events: &'a [Event],
) -> impl Iterator<Item = Step> + 'a {
    let end = start + TimeDelta::days(WARMUP_DAYS + MEASURED_DAYS);
    let every = match policy.mode {
        Mode::All => TimeDelta::days(1),
        Mode::Local => TimeDelta::hours(1),
    };
    let mut next_run = start;
    let mut events = events.iter().peekable();
    std::iter::from_fn(move || {
        let run_first = next_run < end && events.peek().is_none_or(|(at, _, _)| next_run <= *at);
        if run_first {
            let at = next_run;
            next_run += every;
            return Some(Step::Run(at));
        }
        events.next().map(|e| Step::Event(*e))
    })
}

#[derive(Clone, Copy)]
struct Cached {
    day_ends_at: DateTime<Utc>,
    validated_at: DateTime<Utc>,
    version: u64,
}

/// The freshness rule of `BundleCache::get_bundle` for one environment: an entry of the tenant's
/// current day is served without a check for `BUNDLE_TTL_SECONDS` (default 300) after it was computed
/// or last validated, and after that when its version is still the tenant's.
const FRESH_FOR: TimeDelta = TimeDelta::seconds(300);

pub(crate) fn replay(start: DateTime<Utc>, policy: &Policy, zones: &[Zone], events: &[Event]) -> Outcome {
    let measured_from = measured_from(start);
    let mut version = vec![0u64; zones.len()];
    let mut cached: Vec<Option<Cached>> = vec![None; zones.len()];
    let mut histories = vec![ReadHistory::default(); zones.len()];
    let mut last_warmed: Vec<Option<DateTime<Utc>>> = vec![None; zones.len()];
    let mut last_read_day: Vec<Option<NaiveDate>> = vec![None; zones.len()];
    let mut outcome = Outcome::default();
    for step in steps(start, policy, events) {
        match step {
            Step::Run(now) => {
                for (t, zone) in zones.iter().enumerate() {
                    let tenant = plan::Tenant {
                        id: Uuid::nil(),
                        zone: *zone,
                        warm_hour: None,
                        last_warmed_at: last_warmed[t],
                    };
                    let reads = Reads {
                        history: Some(&histories[t]),
                        recorded_since: Some(start),
                    };
                    if plan::decide(policy, now, &tenant, reads) == Decision::Warm {
                        if now >= measured_from {
                            outcome.warm_computations += 1;
                        }
                        cached[t] = Some(entry(*zone, now, version[t]));
                        last_warmed[t] = Some(now);
                        histories[t].forget_before_window(now);
                    }
                }
            }
            Step::Event((_, Kind::Write, t)) => version[t as usize] += 1,
            Step::Event((at, Kind::Read, t)) => {
                let t = t as usize;
                histories[t].record(at);
                let hit = match &mut cached[t] {
                    Some(c) if at < c.day_ends_at && at - c.validated_at < FRESH_FOR => true,
                    Some(c) if at < c.day_ends_at && c.version == version[t] => {
                        c.validated_at = at;
                        true
                    }
                    _ => false,
                };
                if !hit {
                    cached[t] = Some(entry(zones[t], at, version[t]));
                }
                let day = zones[t].date_at(at);
                if at >= measured_from {
                    if !hit {
                        outcome.request_computations += 1;
                    }
                    if last_read_day[t] != Some(day) {
                        outcome.first_reads += 1;
                        outcome.first_read_hits += u64::from(hit);
                        outcome.firsts.push((t as u32, day, hit));
                    }
                }
                last_read_day[t] = Some(day);
            }
        }
    }
    outcome
}

fn entry(zone: Zone, at: DateTime<Utc>, version: u64) -> Cached {
    Cached {
        day_ends_at: zone.day_end(at),
        validated_at: at,
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_keep_the_share_they_are_given() {
        let chain = Chain::spells(0.15, 10.0);
        let stationary = chain.after_none / (1.0 - chain.after_read + chain.after_none);
        assert!((stationary - 0.15).abs() < 1e-12, "{stationary}");
        assert!((chain.after_read - 0.9).abs() < 1e-12);
    }

    #[test]
    fn every_population_reads_a_third_of_tenants_on_weekdays_and_fewer_on_weekends() {
        let start = start();
        for population in std::iter::once(HEADLINE).chain(SENSITIVITY) {
            let (names, habits) = population_of(population);
            let zones: Vec<Zone> = names.iter().map(|n| Zone::parse(Some(n))).collect();
            let (events, _) = workload(start, &zones, &habits);
            let mut read_days = std::collections::HashSet::new();
            for (at, kind, t) in &events {
                if *kind == Kind::Read && *at >= measured_from(start) {
                    read_days.insert((*t, zones[*t as usize].date_at(*at)));
                }
            }
            let (weekday, weekend) = read_days.iter().fold((0usize, 0usize), |(wd, we), (_, date)| {
                if is_weekend(*date) {
                    (wd, we + 1)
                } else {
                    (wd + 1, we)
                }
            });
            // The measured 30 days from Monday 16 March: 22 weekdays, 8 weekend days.
            let weekday_share = weekday as f64 / (22.0 * TENANTS as f64);
            let weekend_share = weekend as f64 / (8.0 * TENANTS as f64);
            assert!(
                (0.33..0.38).contains(&weekday_share),
                "{population:?}: {weekday_share}"
            );
            assert!(
                (0.05..0.08).contains(&weekend_share),
                "{population:?}: {weekend_share}"
            );
        }
    }
}
