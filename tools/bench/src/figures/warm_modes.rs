//! `BENCH_FIGURES=warm-modes`: midnight-UTC-everyone vs tenant-local vs predictive warming, replayed
//! over a simulated month with a simulated clock.
//!
//! The selection is the warmer's own (`warm_cache::plan::decide`, the same zones, DST handling, read
//! histories and idle/weekend rules as a real run). The request path is a reduced-cost model of
//! `BundleCache::get_bundle` (no Redis or Postgres round trips, which would take hours for 10,000
//! tenants x 44 days): an entry of the tenant's current local day (`Zone::day_end`, the rule the
//! entry's `day_ends_at` carries) is a `HIT` within [`policy::FRESH_FOR`] of being computed or validated, and
//! after that while no write has moved the tenant's data version; otherwise the read computes it
//! (`MISS`) and stores it. Warms store an entry the same way. One bundle variant per tenant is
//! counted. `BENCH_FIGURES=warm-replay` (`super::warm_replay`) checks this model against the real
//! warmer and request path on a sample of the same tenants.
//!
//! The simulated tenants and their reads and writes are `population`'s; the policies and the model of
//! one policy's month are `policy`'s.
//!
//! Which tenant reads on which day is drawn three ways ([`population::Population`]) with the same
//! long-run shares: from habits that last, with occasional tenants working in spells of ten or of five
//! days (the headline figures use ten), and with every tenant-day drawn afresh. How predictable the
//! reads are bounds what any warmer can catch with a budget, so each predictive figure stands beside
//! that bound ([`expected_best`]): what a warmer that knew each tenant-day's true chance could expect
//! from as many warms. Figures count each tenant's own (local) measured days. The headline policy is
//! also run on other seeds of the headline population, for the spread.

pub(super) mod policy;
pub(super) mod population;

use chrono::{DateTime, Utc};
use shared::bundle::tenant_time::Zone;
use warm_cache::plan::Policy;

use crate::report::{Check, Goal, Row};
use policy::{headline_policy, is_predictive, policies, replay, Outcome};
use population::{population_of, start, workload, Population, MEASURED_DAYS, TENANTS};

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
        let warmed = 100.0 * o.warm_computations as f64 / everyone;
        rows.push(Row {
            part: "a",
            label: format!("First read of a tenant-day that is a HIT, {name}; {label}"),
            ours: format!("{share:.2} %"),
            floor: if predictive {
                format!("{bound:.2} % (expected best of as many warms)")
            } else {
                format!("{} first reads", o.first_reads)
            },
            ratio: "—".into(),
            goal: if predictive { "≥ 99 %" } else { "—" }.into(),
            checks: if predictive {
                vec![Check::new(Goal::AtLeast(99.0), share, format!("{share:.2} %"))]
            } else {
                Vec::new()
            },
            how: "simulated month (see warm_modes.rs): plan::decide + the freshness rule".into(),
        });
        rows.push(Row {
            part: "b",
            label: format!("Bundles computed by the warmer per day, {name}; {label}"),
            ours: format!("{:.0}", o.warm_computations as f64 / measured),
            floor: format!("{:.0} (everyone)", everyone / measured),
            ratio: format!("{warmed:.1} %"),
            goal: if predictive { "≤ 40 %" } else { "—" }.into(),
            checks: if predictive {
                vec![Check::new(Goal::AtMost(40.0), warmed, format!("{warmed:.1} %"))]
            } else {
                Vec::new()
            },
            how: "tenants warmed, one bundle variant each".into(),
        });
        if headline {
            rows.push(Row {
                part: "c",
                label: format!("Bundles computed on the request path per day, {name}; {label}"),
                ours: format!("{:.0}", o.request_computations as f64 / measured),
                floor: "—".into(),
                ratio: "—".into(),
                goal: "—".into(),
                checks: Vec::new(),
                how: "reads that found no current entry (a write since, or no warm today)".into(),
            });
        }
    }
    let budget = (0.4 * everyone) as usize;
    rows.push(Row {
        part: "d",
        label: format!("Expected best first-read HIT share at 40 % of everyone; {label}"),
        ours: format!("{:.2} %", 100.0 * expected_best(chances, budget)),
        floor: "—".into(),
        ratio: "—".into(),
        goal: "—".into(),
        checks: Vec::new(),
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
    let (hits_lo, hits_hi) = lowest_and_highest(&shares);
    let (warms_lo, warms_hi) = lowest_and_highest(&warms);
    let hits = format!("HIT {hits_lo:.2}–{hits_hi:.2} %");
    let warms = format!("warms {warms_lo:.2}–{warms_hi:.2} %");
    Row {
        part: "e",
        label: format!(
            "First-read HIT share and warms over {SPREAD_SEEDS} seeds, {name}; {}",
            HEADLINE.label()
        ),
        ours: hits.clone(),
        floor: format!("{warms} of everyone"),
        ratio: "—".into(),
        goal: "≥ 99 % / ≤ 40 %".into(),
        checks: vec![
            Check::new(Goal::AtLeast(99.0), hits_lo, hits),
            Check::new(Goal::AtMost(40.0), warms_hi, warms),
        ],
        how: "the same population and workload drawn with other seeds".into(),
    }
}

fn lowest_and_highest(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
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
