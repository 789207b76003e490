//! The point after which a run starts no new tenant: the invocation deadline minus a safety margin.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Farther than this from now, a deadline is not a real Lambda deadline (Lambda allows at most 15
/// minutes; `cargo lambda watch` has been seen passing a 600000 ms duration instead of an epoch time).
const PLAUSIBLE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    stop_at: Option<Instant>,
}

impl Deadline {
    pub fn none() -> Self {
        Self { stop_at: None }
    }

    /// From the invocation's deadline in Unix milliseconds. An implausible value means no deadline.
    pub fn from_epoch_ms(deadline_ms: u64, margin: Duration) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        if deadline_ms.abs_diff(now_ms) > PLAUSIBLE.as_millis() as u64 {
            return Self::none();
        }
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(margin);
        Self {
            stop_at: Some(Instant::now() + left),
        }
    }

    /// This deadline or `budget` from now, whichever comes first.
    pub fn within(self, budget: Duration) -> Self {
        let budget_end = Instant::now() + budget;
        Self {
            stop_at: Some(self.stop_at.map_or(budget_end, |at| at.min(budget_end))),
        }
    }

    /// Whether it is too late to start another tenant.
    pub fn passed(&self) -> bool {
        self.stop_at.is_some_and(|at| Instant::now() >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
    }

    #[test]
    fn a_duration_passed_as_deadline_means_no_deadline() {
        assert!(!Deadline::from_epoch_ms(600_000, Duration::ZERO).passed());
        assert!(!Deadline::from_epoch_ms(0, Duration::from_secs(10)).passed());
    }

    #[test]
    fn a_budget_ends_before_a_later_deadline() {
        assert!(Deadline::none().within(Duration::ZERO).passed());
        assert!(!Deadline::none().within(Duration::from_secs(60)).passed());
        assert!(Deadline::from_epoch_ms(now_ms() + 5_000, Duration::from_secs(10))
            .within(Duration::from_secs(60))
            .passed());
    }

    #[test]
    fn margin_is_taken_off_the_deadline() {
        assert!(Deadline::from_epoch_ms(now_ms() + 5_000, Duration::from_secs(10)).passed());
        assert!(!Deadline::from_epoch_ms(now_ms() + 60_000, Duration::from_secs(10)).passed());
    }
}
