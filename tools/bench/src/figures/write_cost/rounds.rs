//! How a write-cost comparison is sampled so that it survives a rerun. One pgbench run against another
//! moved by 2× on this kind of machine, so no figure is one run against one run. Each comparison is
//! several rounds; a round measures every side once, each on a table made for that sample, in an order
//! that rotates from round to round (every side takes every position equally often, so a slow drift of
//! the machine does not favour one side). A round gives a ratio per side; a figure is the median ratio
//! with the min-max over the rounds.

use anyhow::Result;

use super::copies::{Copies, Sample, Side, SIDES};
use super::Case;
use crate::figures::context::spread;

/// Rounds per comparison (`BENCH_WRITE_ROUNDS`, at least 5) and the plain side's target length of a
/// sample (`BENCH_WRITE_SAMPLE_MS`).
pub(super) struct Rounds {
    rounds: usize,
    sample_ms: f64,
}

impl Rounds {
    pub(super) fn from_env() -> Self {
        Self {
            rounds: env_or("BENCH_WRITE_ROUNDS", 6usize).max(5),
            sample_ms: env_or("BENCH_WRITE_SAMPLE_MS", 1000.0),
        }
    }

    /// Every round of `case`: (tracked, empty) ratios to plain per round, and the plain and tracked
    /// samples. Ratios are of latency, or of throughput with several clients.
    pub(super) async fn measure(&self, copies: &Copies, case: &Case, transactions: u32) -> Result<Measured> {
        let mut m = Measured::default();
        for round in 0..self.rounds {
            let mut got = [None; 3];
            for side in order(round) {
                let i = SIDES.iter().position(|s| *s == side).unwrap_or(0);
                got[i] = Some(copies.sample(case, side, transactions).await?);
            }
            let [Some(p), Some(t), Some(e)] = got else {
                unreachable!("every side runs once a round")
            };
            let cost = |s: Sample| {
                if case.clients > 1 {
                    1.0 / s.tps
                } else {
                    s.latency_ms
                }
            };
            m.tracked.push(cost(t) / cost(p));
            m.empty.push(cost(e) / cost(p));
            m.plain.push(p);
            m.with.push(t);
        }
        Ok(m)
    }

    /// Statements per sample so that the plain side lasts about `BENCH_WRITE_SAMPLE_MS`; the probe
    /// also warms every side once.
    pub(super) async fn calibrate(&self, copies: &Copies, case: &Case) -> Result<u32> {
        let mut plain = None;
        for side in SIDES {
            let s = copies.sample(case, side, case.probe).await?;
            if side == Side::Plain {
                plain = Some(s);
            }
        }
        let per_statement_ms = plain.map(|s| s.latency_ms).unwrap_or(1.0).max(0.001);
        Ok(((self.sample_ms / per_statement_ms) as u32).clamp(case.probe, 20_000))
    }
}

/// The order of round `round`: the six orders of three sides in turn, so that over six rounds each
/// side runs first, second and last twice.
pub(super) fn order(round: usize) -> [Side; 3] {
    use Side::{Empty as E, Plain as P, Tracked as T};
    const ORDERS: [[Side; 3]; 6] = [[P, T, E], [E, T, P], [T, E, P], [P, E, T], [E, P, T], [T, P, E]];
    ORDERS[round % ORDERS.len()]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
pub(super) struct Measured {
    /// Per round: the tracked and the empty side's cost as a multiple of the plain side's.
    pub(super) tracked: Vec<f64>,
    pub(super) empty: Vec<f64>,
    pub(super) plain: Vec<Sample>,
    /// The tracked side's samples.
    pub(super) with: Vec<Sample>,
}

pub(super) fn median_of(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    spread(&samples.iter().map(f).collect::<Vec<_>>()).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_side_takes_every_position_equally_often_over_six_rounds() {
        for position in 0..3 {
            for side in SIDES {
                let times = (0..6).filter(|r| order(*r)[position] == side).count();
                assert_eq!(times, 2, "{side:?} at {position}");
            }
        }
        for round in 0..6 {
            let o = order(round);
            assert!(SIDES.iter().all(|s| o.contains(s)), "round {round}: {o:?}");
        }
    }
}
