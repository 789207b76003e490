//! The warm policies the simulation compares, and one policy replayed over the workload: the warmer's
//! own selection (`warm_cache::plan::decide`) at each scheduled run, and a reduced-cost model of the
//! request path's freshness rule at each read.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use shared::bundle::tenant_time::Zone;
use shared::store::read_history::ReadHistory;
use uuid::Uuid;
use warm_cache::plan::{self, Decision, Mode, Policy, Reads};

use super::population::{measured_date, Event, Kind, MEASURED_DAYS, WARMUP_DAYS};

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

/// The policies compared, by name: midnight UTC for everyone, tenant-local, and predictive with two
/// idle bounds.
pub(crate) fn policies() -> [(&'static str, Policy); 4] {
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

pub(crate) fn is_predictive(policy: &Policy) -> bool {
    policy.mode == Mode::Local && policy.predictive
}

/// One step of a replay: a scheduled run of the warmer, or a read or write.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    Run(DateTime<Utc>),
    Event(Event),
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
