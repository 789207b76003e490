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
//! counted. `BENCH_FIGURES=warm-replay` (`super::warm_replay`) checks this model against the real
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
//! Which tenant reads on which day is drawn three ways ([`Population`]) with the same long-run
//! shares: from habits that last, with occasional tenants working in spells of ten or of five days
//! (the headline figures use ten), and with every tenant-day drawn afresh. How predictable the reads
//! are bounds what any warmer can catch with a budget, so each predictive figure stands beside that
//! bound ([`expected_best`]): what a warmer that knew each tenant-day's true chance could expect
//! from as many warms. Figures count each tenant's own (local) measured days. The headline
//! policy is also run on other seeds of the headline population, for the spread.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use shared::bundle::tenant_time::{is_weekend, Zone};
use shared::store::read_history::ReadHistory;
use uuid::Uuid;
use warm_cache::plan::{self, Decision, Mode, Policy, Reads};

use crate::rng::SplitMix;
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

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    // Order matters at equal times: a write lands before a read (runs go first, see `steps`).
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
    let predictive = |idle_days| Policy {
        idle_days: Some(idle_days),
        predictive: true,
        ..base
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
        ("predictive (idle 7 d)", predictive(7)),
        ("predictive (idle 14 d)", predictive(HEADLINE_IDLE_DAYS)),
    ]
}

/// `WARM_IDLE_DAYS` of the predictive policy the seed spread and the real-path replay use.
const HEADLINE_IDLE_DAYS: u32 = 14;

/// The predictive policy with [`HEADLINE_IDLE_DAYS`].
pub(crate) fn headline_policy() -> (&'static str, Policy) {
    let policies = policies();
    let [.., (name, policy)] = policies;
    debug_assert_eq!(policy.idle_days, Some(HEADLINE_IDLE_DAYS));
    (name, policy)
}

fn is_predictive(policy: &Policy) -> bool {
    policy.mode == Mode::Local && policy.predictive
}

/// The population the headline figures use, and the others each predictive policy is also run on.
pub(crate) const HEADLINE: Population = Population::Habitual { spell_days: 10.0 };
const SENSITIVITY: [Population; 2] = [Population::Habitual { spell_days: 5.0 }, Population::Independent];
/// Seeds of the headline population the headline policy is also run on (seed 0 is the table's).
const SPREAD_SEEDS: u64 = 5;

pub fn run() -> Vec<Row> {
    let start = start();
    let mut rows = Vec::new();
    for population in std::iter::once(HEADLINE).chain(SENSITIVITY) {
        let (names, habits) = population_of(population, 0);
        let zones: Vec<Zone> = names.iter().map(|n| Zone::parse(Some(n))).collect();
        let (events, chances) = workload(start, &zones, &habits, 0);
        let outcomes: Vec<(&str, Policy, Outcome)> = policies()
            .into_iter()
            .filter(|(_, policy)| population == HEADLINE || is_predictive(policy))
            .map(|(name, policy)| (name, policy, replay(start, &policy, &zones, &events)))
            .collect();
        rows.extend(report(population, &outcomes, &chances));
    }
    rows.push(seed_spread(start));
    rows
}

/// Warms of everyone over the measured days: one per tenant and local day.
const EVERYONE: u64 = (TENANTS as u64) * (MEASURED_DAYS as u64);

fn report(population: Population, outcomes: &[(&str, Policy, Outcome)], chances: &[f64]) -> Vec<Row> {
    let measured = MEASURED_DAYS as f64;
    let everyone = EVERYONE as f64;
    let label = population.label();
    let headline = population == HEADLINE;
    let mut rows = Vec::new();
    for (name, policy, o) in outcomes {
        let predictive = is_predictive(policy);
        let share = 100.0 * o.first_read_hits as f64 / o.first_reads.max(1) as f64;
        let bound = 100.0 * expected_best(chances, o.warm_computations as usize);
        rows.push(Row {
            figure: format!("W1. First read of a tenant-day that is a HIT, {name}; {label}"),
            ours: format!("{share:.2} %"),
            floor: if predictive {
                format!("{bound:.2} % (expected best of as many warms)")
            } else {
                format!("{} first reads", o.first_reads)
            },
            ratio: "—".into(),
            goal: if predictive { "≥ 99 %" } else { "—" }.into(),
            how: "simulated month (see warm_modes.rs): plan::decide + the freshness rule".into(),
        });
        rows.push(Row {
            figure: format!("W2. Bundles computed by the warmer per day, {name}; {label}"),
            ours: format!("{:.0}", o.warm_computations as f64 / measured),
            floor: format!("{:.0} (everyone)", everyone / measured),
            ratio: format!("{:.1} %", 100.0 * o.warm_computations as f64 / everyone),
            goal: if predictive { "≤ 40 %" } else { "—" }.into(),
            how: "tenants warmed, one bundle variant each".into(),
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
        figure: format!("W4. Expected best first-read HIT share at 40 % of everyone; {label}"),
        ours: format!("{:.2} %", 100.0 * expected_best(chances, budget)),
        floor: "—".into(),
        ratio: "—".into(),
        goal: "—".into(),
        how: "a warmer knowing each tenant-day's true chance warms the likeliest; writes ignored".into(),
    });
    rows
}

/// The headline policy on [`SPREAD_SEEDS`] draws of the headline population: the lowest and highest
/// first-read HIT share and warm share.
fn seed_spread(start: DateTime<Utc>) -> Row {
    let (name, policy) = headline_policy();
    let mut shares = Vec::new();
    let mut warms = Vec::new();
    for seed in 0..SPREAD_SEEDS {
        let (names, habits) = population_of(HEADLINE, seed);
        let zones: Vec<Zone> = names.iter().map(|n| Zone::parse(Some(n))).collect();
        let (events, _) = workload(start, &zones, &habits, seed);
        let o = replay(start, &policy, &zones, &events);
        shares.push(100.0 * o.first_read_hits as f64 / o.first_reads.max(1) as f64);
        warms.push(100.0 * o.warm_computations as f64 / EVERYONE as f64);
    }
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.2}–{hi:.2} %")
    };
    Row {
        figure: format!("W1-W2 over {SPREAD_SEEDS} seeds, {name}; {}", HEADLINE.label()),
        ours: format!("HIT {}", range(&shares)),
        floor: format!("warms {} of everyone", range(&warms)),
        ratio: "—".into(),
        goal: "≥ 99 % / ≤ 40 %".into(),
        how: "the same population and workload drawn with other seeds".into(),
    }
}

/// The expected share of first reads that warming the `budget` likeliest tenant-days would catch,
/// for a warmer that knows each tenant-day's true chance of a read (what the simulation drew it
/// with), ignoring writes between the warm and the read: the sum of the chances it warms over the
/// sum of all chances. No selection of that many warms can expect more.
fn expected_best(chances: &[f64], budget: usize) -> f64 {
    let mut chances = chances.to_vec();
    chances.sort_by(|a, b| b.total_cmp(a));
    let all: f64 = chances.iter().sum();
    let caught: f64 = chances.iter().take(budget).sum();
    if all > 0.0 {
        caught / all
    } else {
        1.0
    }
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

/// Whether `date` (a tenant's local date) is one of the measured days: the figures count each
/// tenant's own days, so every zone has the same 30.
pub(crate) fn measured_date(start: DateTime<Utc>, date: NaiveDate) -> bool {
    let first = start.date_naive();
    let from = first.checked_add_signed(TimeDelta::days(WARMUP_DAYS));
    let to = first.checked_add_signed(TimeDelta::days(WARMUP_DAYS + MEASURED_DAYS));
    from.is_some_and(|from| date >= from) && to.is_some_and(|to| date < to)
}

/// The runs `policy` schedules (daily at midnight UTC for `all`, hourly for `local`) merged with
/// `events` in time order; at equal times a run goes first. Runs go on for a day after the last
/// simulated UTC day, so every zone's last measured local day is run through.
pub(crate) fn steps<'a>(
    start: DateTime<Utc>,
    policy: &Policy,
    events: &'a [Event],
) -> impl Iterator<Item = Step> + 'a {
    let end = start + TimeDelta::days(WARMUP_DAYS + MEASURED_DAYS + 1);
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
pub(crate) const FRESH_FOR: TimeDelta = TimeDelta::seconds(300);

pub(crate) fn replay(start: DateTime<Utc>, policy: &Policy, zones: &[Zone], events: &[Event]) -> Outcome {
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
                        if measured_date(start, zone.date_at(now)) {
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
                if measured_date(start, day) {
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
