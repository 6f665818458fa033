//! A guard, typed: a traffic metric over a sliding window, or a probe's value.
//!
//! The playbook writes `when:` (and `for:`, `probe:`) the same way for both; [`Guard::kind`]
//! says which one it is and, for a traffic guard, the window it judges — the rule lives
//! here, once: the window is the guard's `for` kept between 1 s and 10 s, or 10 s without
//! one. Validation refuses the shapes that are neither (a `value` condition without a probe,
//! a metric compared with a probe).

use std::time::Duration;

use crate::cond::{Metric, Subject};
use crate::model::{Guard, Probe};

/// The shortest and longest sliding window a traffic guard judges.
pub const WINDOW_MIN: Duration = Duration::from_secs(1);
pub const WINDOW_MAX: Duration = Duration::from_secs(10);

/// What a guard watches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GuardKind<'a> {
    /// A metric of the traffic over the last `window`.
    Traffic { metric: Metric, window: Duration },
    /// A probe's reading.
    Probe(&'a Probe),
}

/// A guard that is neither a traffic guard nor a probe guard (validation reports it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardShapeError {
    #[error("a guard without a probe must name a traffic metric")]
    ValueWithoutProbe,
    #[error("a guard with a probe compares the probe's value, not {0}")]
    MetricWithProbe(&'static str),
}

/// The window a traffic guard whose condition must hold for `hold_for` judges.
pub fn window(hold_for: Duration) -> Duration {
    if hold_for.is_zero() {
        WINDOW_MAX
    } else {
        hold_for.clamp(WINDOW_MIN, WINDOW_MAX)
    }
}

impl Guard {
    /// How long the condition must hold before the guard trips, time-scaled.
    pub fn hold_for(&self, scale: f64) -> Duration {
        self.for_.map(|f| f.scaled(scale).0).unwrap_or_default()
    }

    /// What the guard watches, at time scale `scale`.
    pub fn kind(&self, scale: f64) -> Result<GuardKind<'_>, GuardShapeError> {
        match (&self.probe, self.when.subject) {
            (Some(p), Subject::Value) => Ok(GuardKind::Probe(p)),
            (None, Subject::Metric(metric)) => Ok(GuardKind::Traffic {
                metric,
                window: window(self.hold_for(scale)),
            }),
            (None, Subject::Value) => Err(GuardShapeError::ValueWithoutProbe),
            (Some(_), Subject::Metric(m)) => Err(GuardShapeError::MetricWithProbe(m.name())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traffic_guard_judges_its_for_window_kept_between_one_and_ten_seconds() {
        assert_eq!(window(Duration::ZERO), WINDOW_MAX);
        assert_eq!(window(Duration::from_millis(200)), WINDOW_MIN);
        assert_eq!(window(Duration::from_secs(4)), Duration::from_secs(4));
        assert_eq!(window(Duration::from_secs(30)), WINDOW_MAX);
    }
}
