//! `BENCH_FIGURES=warm-modes`: midnight-UTC-everyone vs tenant-local vs predictive warming, replayed
//! over a simulated month with a simulated clock.
//!
//! The selection is the warmer's own (`warm_cache::plan::decide`, the same zones, DST handling, read
//! histories and idle/weekend rules as a real run). The request path is a reduced-cost model of
//! `BundleCache::get_bundle` (no Redis or Postgres round trips, which would take hours for 10,000
//! tenants x 44 days): an entry is a `HIT` when it exists, was computed on the tenant's current local
//! day (`Zone::day_end`, the same rule the entry's `day_ends_at` carries) and no write has moved the
//! tenant's data version since; otherwise the read computes it (`MISS`) and stores it. Warms store an
//! entry the same way. One bundle variant per tenant is counted.
//!
//! Population (deterministic seed): 10,000 tenants in 16 zones over the world (DST and half-hour
//! zones included); 50 % dormant, 38 % regular (read on 90 % of weekdays, 15 % of weekend days), 12 %
//! occasional (15 % / 3 %): about a third read on a given weekday, a twentieth on a weekend day. The
//! first read of a day is at the tenant's habitual office hour (07:30-10:00 local) give or take 30
//! minutes, then 0-4 more reads and 0-5 writes until 18:00; 3 % of tenants also have an integration
//! writing once a day at a random time.
//! 14 days of warm-up build read histories first; the figures cover the 30 days after.

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
/// Tenants with an integration that writes at a random time of day, every day.
const OVERNIGHT_WRITERS: f64 = 0.03;
const WARMUP_DAYS: i64 = 14;
const MEASURED_DAYS: i64 = 30;
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

#[derive(Clone, Copy)]
struct Habit {
    weekday_p: f64,
    weekend_p: f64,
    /// Minutes after local midnight of the habitual first read.
    first_minute: i64,
    overnight_writes: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    // Order matters at equal times: a write lands before a read (runs go first, see `replay`).
    Write,
    Read,
}

/// What one policy produced over the measured days.
#[derive(Default, Debug)]
struct Outcome {
    first_reads: u64,
    first_read_hits: u64,
    warm_computations: u64,
    request_computations: u64,
}

pub fn run() -> Vec<Row> {
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .single()
        .unwrap_or_default(); // a Monday, across DST changes
    let (zones, habits) = population();
    let events = workload(start, &zones, &habits);
    let policies = [
        (
            "midnight UTC, everyone",
            Policy {
                mode: Mode::All,
                local_hour: 5,
                idle_days: None,
                predictive: false,
                lead: TimeDelta::minutes(60),
            },
        ),
        (
            "tenant-local 05:00",
            Policy {
                mode: Mode::Local,
                local_hour: 5,
                idle_days: None,
                predictive: false,
                lead: TimeDelta::minutes(60),
            },
        ),
        (
            "predictive (idle 7 d)",
            Policy {
                mode: Mode::Local,
                local_hour: 5,
                idle_days: Some(7),
                predictive: true,
                lead: TimeDelta::minutes(60),
            },
        ),
        (
            "predictive (idle 14 d)",
            Policy {
                mode: Mode::Local,
                local_hour: 5,
                idle_days: Some(14),
                predictive: true,
                lead: TimeDelta::minutes(60),
            },
        ),
    ];
    let outcomes: Vec<(&str, Outcome)> = policies
        .iter()
        .map(|(name, policy)| (*name, replay(start, policy, &zones, &events)))
        .collect();
    let days = MEASURED_DAYS as f64;
    let all_warm = outcomes[0].1.warm_computations.max(1) as f64;
    let mut rows = Vec::new();
    for (name, o) in &outcomes {
        let share = 100.0 * o.first_read_hits as f64 / o.first_reads.max(1) as f64;
        let is_predictive = name.starts_with("predictive");
        rows.push(Row {
            figure: format!("W1. First read of a tenant-day that is a HIT, {name}"),
            ours: format!("{share:.2} %"),
            floor: format!("{} first reads", o.first_reads),
            ratio: "—".into(),
            goal: if is_predictive {
                "≥ 99 %".into()
            } else {
                "—".into()
            },
            how: "simulated month (see warm_sim.rs): plan::decide + the freshness rule".into(),
        });
        rows.push(Row {
            figure: format!("W2. Bundles computed by the warmer per day, {name}"),
            ours: format!("{:.0}", o.warm_computations as f64 / days),
            floor: format!("{:.0} (everyone)", all_warm / days),
            ratio: format!("{:.1} %", 100.0 * o.warm_computations as f64 / all_warm),
            goal: if is_predictive {
                "≤ 40 %".into()
            } else {
                "—".into()
            },
            how: "one bundle variant per tenant".into(),
        });
        rows.push(Row {
            figure: format!("W3. Bundles computed on the request path per day, {name}"),
            ours: format!("{:.0}", o.request_computations as f64 / days),
            floor: "—".into(),
            ratio: "—".into(),
            goal: "—".into(),
            how: "reads that found no current entry (a write since, or no warm today)".into(),
        });
    }
    rows
}

fn population() -> (Vec<Zone>, Vec<Habit>) {
    let mut rng = Rng(0x005e_ed15);
    let mut zones = Vec::with_capacity(TENANTS);
    let mut habits = Vec::with_capacity(TENANTS);
    for _ in 0..TENANTS {
        zones.push(Zone::parse(Some(ZONES[rng.below(ZONES.len() as u64) as usize])));
        let class = rng.unit();
        let (weekday_p, weekend_p) = if class < DORMANT {
            (0.0, 0.0)
        } else if class < DORMANT + REGULAR {
            (0.90, 0.15)
        } else {
            (0.15, 0.03)
        };
        habits.push(Habit {
            weekday_p,
            weekend_p,
            first_minute: 450 + rng.below(150) as i64,
            overnight_writes: rng.unit() < OVERNIGHT_WRITERS,
        });
    }
    (zones, habits)
}

/// Every read and write of the simulation, in time order: (time, kind, tenant).
fn workload(start: DateTime<Utc>, zones: &[Zone], habits: &[Habit]) -> Vec<(DateTime<Utc>, Kind, u32)> {
    let mut rng = Rng(0x000b_e7c4);
    let mut events = Vec::new();
    let first_day = start.date_naive();
    for (t, (zone, habit)) in zones.iter().zip(habits).enumerate() {
        for day in 0..(WARMUP_DAYS + MEASURED_DAYS) {
            let Some(date) = first_day.checked_add_signed(TimeDelta::days(day)) else {
                continue;
            };
            let at = |minute: i64| zone.day_start(date) + TimeDelta::minutes(minute);
            if habit.overnight_writes {
                events.push((at(rng.below(24 * 60) as i64), Kind::Write, t as u32));
            }
            let p = if is_weekend(date) {
                habit.weekend_p
            } else {
                habit.weekday_p
            };
            if rng.unit() >= p {
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
    events
}

#[derive(Clone, Copy)]
struct Cached {
    generated_at: DateTime<Utc>,
    day_ends_at: DateTime<Utc>,
    version: u64,
}

fn replay(
    start: DateTime<Utc>,
    policy: &Policy,
    zones: &[Zone],
    events: &[(DateTime<Utc>, Kind, u32)],
) -> Outcome {
    let measured_from = start + TimeDelta::days(WARMUP_DAYS);
    let end = start + TimeDelta::days(WARMUP_DAYS + MEASURED_DAYS);
    let mut version = vec![0u64; zones.len()];
    let mut cached: Vec<Option<Cached>> = vec![None; zones.len()];
    let mut histories = vec![ReadHistory::default(); zones.len()];
    let mut last_warmed: Vec<Option<DateTime<Utc>>> = vec![None; zones.len()];
    let mut last_read_day: Vec<Option<NaiveDate>> = vec![None; zones.len()];
    let tenants: Vec<plan::Tenant> = zones
        .iter()
        .map(|zone| plan::Tenant {
            id: Uuid::nil(),
            zone: *zone,
            warm_hour: None,
            last_warmed_at: None,
        })
        .collect();
    let step = match policy.mode {
        Mode::All => TimeDelta::days(1),
        Mode::Local => TimeDelta::hours(1),
    };
    let mut outcome = Outcome::default();
    let mut next_run = start;
    let mut events = events.iter().peekable();
    while next_run < end || events.peek().is_some() {
        let run_first = events.peek().is_none_or(|(at, _, _)| next_run <= *at) && next_run < end;
        if run_first {
            let now = next_run;
            for t in 0..zones.len() {
                let mut tenant = tenants[t].clone();
                tenant.last_warmed_at = last_warmed[t];
                let reads = Reads {
                    history: Some(&histories[t]),
                    recorded_since: Some(start),
                };
                if plan::decide(policy, now, &tenant, reads) == Decision::Warm {
                    if now >= measured_from {
                        outcome.warm_computations += 1;
                    }
                    cached[t] = Some(entry(zones[t], now, version[t]));
                    last_warmed[t] = Some(now);
                    histories[t].forget_before_window(now);
                }
            }
            next_run += step;
            continue;
        }
        let Some(&(at, kind, t)) = events.next() else {
            break;
        };
        let t = t as usize;
        match kind {
            Kind::Write => version[t] += 1,
            Kind::Read => {
                histories[t].record(at);
                let hit = cached[t]
                    .is_some_and(|c| at >= c.generated_at && at < c.day_ends_at && c.version == version[t]);
                if !hit {
                    cached[t] = Some(entry(zones[t], at, version[t]));
                }
                if at >= measured_from {
                    if !hit {
                        outcome.request_computations += 1;
                    }
                    let day = zones[t].date_at(at);
                    if last_read_day[t] != Some(day) {
                        outcome.first_reads += 1;
                        outcome.first_read_hits += u64::from(hit);
                    }
                }
                last_read_day[t] = Some(zones[t].date_at(at));
            }
        }
    }
    outcome
}

fn entry(zone: Zone, at: DateTime<Utc>, version: u64) -> Cached {
    Cached {
        generated_at: at,
        day_ends_at: zone.day_end(at),
        version,
    }
}
