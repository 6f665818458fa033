//! The deterministic timeline of a validated playbook: when each traffic stage, fault,
//! revert, action, check window and guard starts and ends, and how many requests the profile
//! sends. Computed from the documents alone; nothing is contacted.
//!
//! A drill that starts `after: recovered` has a window rather than a time: it starts as early
//! as the previous drill's revert (recovery at once) and as late as the end of the previous
//! drill's recovery window. Both bounds are given.

use serde::Serialize;

use crate::ResolvedDrill;
use crate::check::{Rule, ValidCheck};
use crate::model::{After, Moment, Phase, Stage};
use crate::units::{Dur, Rate};

/// One stage of the traffic profile, placed in time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSpan {
    pub start: Dur,
    pub end: Dur,
    pub from: Rate,
    pub to: Rate,
    /// The integral of the rate over the stage.
    pub requests: f64,
}

/// The traffic profile placed in time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficPlan {
    pub stages: Vec<StageSpan>,
    pub duration: Dur,
    pub expected_requests: f64,
    pub peak: Rate,
}

/// The arrival rate at `t` into the profile (requests per second).
pub fn rate_at(plan: &TrafficPlan, t: Dur) -> f64 {
    for s in &plan.stages {
        if t >= s.start && t < s.end {
            let span = (s.end - s.start).as_secs_f64();
            let x = if span > 0.0 {
                (t - s.start).as_secs_f64() / span
            } else {
                0.0
            };
            return s.from.per_second() + (s.to.per_second() - s.from.per_second()) * x;
        }
    }
    0.0
}

/// Places the profile's stages in time, durations multiplied by `scale`.
pub fn traffic(profile: &[Stage], scale: f64) -> TrafficPlan {
    let mut stages = Vec::new();
    let mut now = Dur::ZERO;
    let mut current = 0.0f64;
    let mut peak = 0.0f64;
    for st in profile {
        let (from, to, len) = match (st.rate, st.ramp_to, st.over, st.hold) {
            (Some(r), None, None, Some(h)) => (r.per_second(), r.per_second(), h),
            (Some(r), None, None, None) => {
                current = r.per_second();
                peak = peak.max(current);
                continue;
            }
            (None, Some(to), Some(over), None) => (current, to.per_second(), over),
            (None, None, None, Some(h)) => (current, current, h),
            // Invalid combinations are reported by validation; skip them here.
            _ => continue,
        };
        let len = len.scaled(scale);
        let requests = (from + to) / 2.0 * len.as_secs_f64();
        stages.push(StageSpan {
            start: now,
            end: now + len,
            from: Rate::per_sec(from),
            to: Rate::per_sec(to),
            requests,
        });
        now = now + len;
        current = to;
        peak = peak.max(from).max(to);
    }
    let expected_requests = stages.iter().map(|s| s.requests).sum();
    TrafficPlan {
        stages,
        duration: now,
        expected_requests,
        peak: Rate::per_sec(peak),
    }
}

/// A span of time from the start of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub start: Dur,
    pub end: Dur,
}

/// A check with its window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckWindow {
    pub name: String,
    pub phase: Phase,
    pub window: Window,
}

/// A drill placed in time, at its earliest start (and its latest start, when they differ).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillPlan {
    pub name: String,
    /// Earliest start.
    pub start: Dur,
    /// Latest start (equal to `start` for drills with `at`).
    pub start_latest: Dur,
    pub baseline: Window,
    pub fault: Window,
    /// From revert to the recovery deadline.
    pub recovery: Window,
    /// When each action runs.
    pub actions: Vec<(String, Dur)>,
    pub checks: Vec<CheckWindow>,
    /// When the last window of this drill closes, at the earliest start.
    pub end: Dur,
    /// When the last window closes, at the latest start.
    pub end_latest: Dur,
}

/// The recovery window: the longest probe check's `within`, else `spec.recovery`.
pub fn recovery_len(d: &ResolvedDrill) -> Dur {
    d.checks
        .iter()
        .filter(|c| c.phase != Some(Phase::Fault))
        .filter_map(|c| c.probe().map(|p| p.within))
        .max()
        .unwrap_or(d.spec.recovery)
}

/// The phase a check measures over.
pub fn check_phase(c: &ValidCheck) -> Phase {
    match (c.phase, &c.rule) {
        (Some(p), _) => p,
        (None, Rule::Probe(_)) => Phase::Recovery,
        (None, Rule::Slo(_) | Rule::Count(_) | Rule::Delta(_)) => Phase::Fault,
    }
}

/// How a drill starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    At(Dur),
    After(After, Dur),
}

/// Places one drill given the previous drill's plan.
pub fn place_drill(d: &ResolvedDrill, prev: Option<&DrillPlan>, scale: f64) -> DrillPlan {
    let spec = &d.spec;
    let (s_early, s_late) = match (d.start, prev) {
        (Start::At(t), _) => (t.scaled(scale), t.scaled(scale)),
        (Start::After(After::Recovered | After::Previous, delay), Some(p)) => {
            // Earliest: the previous drill recovers the moment it reverts. Latest: it uses its
            // whole recovery window, having itself started as late as it could.
            let late_shift = p.start_latest - p.start;
            (
                p.recovery.start + delay.scaled(scale),
                p.recovery.end + late_shift + delay.scaled(scale),
            )
        }
        (Start::After(_, delay), None) => (delay.scaled(scale), delay.scaled(scale)),
    };
    let hold = spec.hold.scaled(scale);
    let rec = recovery_len(d).scaled(scale);
    let baseline = Window {
        start: s_early - spec.baseline.scaled(scale),
        end: s_early,
    };
    let fault = Window {
        start: s_early,
        end: s_early + hold,
    };
    let recovery = Window {
        start: s_early + hold,
        end: s_early + hold + rec,
    };
    let actions = d
        .actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let base = match a.at {
                Moment::Inject => s_early,
                Moment::Revert => s_early + hold,
            };
            (
                a.name
                    .clone()
                    .unwrap_or_else(|| format!("action {}", i + 1)),
                base + a.delay.unwrap_or_default().scaled(scale),
            )
        })
        .collect();
    let checks = d
        .checks
        .iter()
        .map(|c| {
            let phase = check_phase(c);
            let window = match (phase, c.probe().map(|p| p.within)) {
                (Phase::Fault, Some(w)) => Window {
                    start: fault.start,
                    end: fault.start + w.scaled(scale),
                },
                (_, Some(w)) => Window {
                    start: recovery.start,
                    end: recovery.start + w.scaled(scale),
                },
                (Phase::Baseline, None) => baseline,
                (Phase::Fault, None) => fault,
                (Phase::Recovery, None) => recovery,
                (Phase::Drill, None) => Window {
                    start: fault.start,
                    end: recovery.end,
                },
            };
            CheckWindow {
                name: c.name.clone(),
                phase,
                window,
            }
        })
        .collect::<Vec<_>>();
    let end_early = checks
        .iter()
        .map(|c| c.window.end)
        .chain([recovery.end])
        .max()
        .unwrap_or(recovery.end);
    let end_latest = end_early + (s_late - s_early);
    DrillPlan {
        name: d.name.clone(),
        start: s_early,
        start_latest: s_late,
        baseline,
        fault,
        recovery,
        actions,
        checks,
        end: end_early,
        end_latest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(rate: Option<&str>, ramp: Option<&str>, over: Option<&str>, hold: Option<&str>) -> Stage {
        Stage {
            rate: rate.map(|r| r.parse().expect("rate")),
            ramp_to: ramp.map(|r| r.parse().expect("rate")),
            over: over.map(|d| d.parse().expect("dur")),
            hold: hold.map(|d| d.parse().expect("dur")),
        }
    }

    #[test]
    fn the_seed_profile_integrates_to_47400_requests_over_9_minutes() {
        let p = traffic(
            &[
                st(Some("20/s"), None, None, None),
                st(None, Some("50/s"), Some("2m"), None),
                st(Some("120/s"), None, None, Some("5m")),
                st(None, Some("0/s"), Some("2m"), None),
            ],
            1.0,
        );
        assert_eq!(p.duration, Dur::from_secs(540));
        assert!(
            (p.expected_requests - 47_400.0).abs() < 1e-6,
            "{}",
            p.expected_requests
        );
        assert_eq!(p.stages.len(), 3);
        assert!((rate_at(&p, Dur::from_secs(60)) - 35.0).abs() < 1e-9);
        let half = traffic(&[st(Some("10/s"), None, None, Some("10s"))], 0.5);
        assert_eq!(half.duration, Dur::from_secs(5));
        assert!((half.expected_requests - 50.0).abs() < 1e-9);
    }
}
