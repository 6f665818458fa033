//! A run as it happens: the [`LiveStatus`] a [`RunHandle`](crate::RunHandle) watches (the
//! daemon's status route and the CLI's progress line read it). Plain data: the run fills it
//! in (`run.rs`, `drill.rs`).

use drill_spec::ValidPlaybook;
use serde::Serialize;

use crate::outcome::secs;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStage {
    /// Reverting what dead runs left, taking locks, checking every target.
    #[default]
    Preflight,
    /// The traffic runs and the drills follow their timeline.
    Running,
    /// The final sweep: reverting whatever is still changed.
    Reverting,
    /// Reports are being written.
    Reporting,
    /// The outcome is known.
    Done,
}

/// Where one drill is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Waiting for its start.
    #[default]
    Waiting,
    /// Faults being applied, and held.
    Fault,
    /// Reverted; recovery checks running.
    Recovery,
    /// Its verdict is in.
    Done,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillStage {
    pub name: String,
    pub stage: Stage,
}

/// A fault applied now.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveFault {
    pub drill: String,
    pub fault: String,
    pub backend: &'static str,
    /// Seconds from the run's start when it was applied.
    pub since_s: Option<f64>,
}

/// A run's live status, refreshed at least twice a second while the traffic runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveStatus {
    pub run_id: Option<String>,
    pub playbook: String,
    pub stage: RunStage,
    pub elapsed_s: f64,
    /// The traffic's planned length.
    pub total_s: f64,
    pub drills: Vec<DrillStage>,
    /// Arrivals per second the profile asks for now.
    pub target_rate: f64,
    /// Requests per second answered over the last few whole seconds.
    pub achieved_rate: f64,
    /// Over the same seconds.
    pub recent_p95_ms: f64,
    pub recent_error_rate: f64,
    pub active_faults: Vec<ActiveFault>,
    /// Every latency measured so far, whole and per drill phase, bucketed for a
    /// Prometheus histogram (the daemon's `/metrics`); not in the status route.
    #[serde(skip)]
    pub latency: Vec<PhaseLatency>,
}

/// The upper bounds (seconds) of [`PhaseLatency::buckets`]: fine where the seed's SLO
/// lives (p95 ≤ 800 ms), up to the longest request timeout.
pub const LATENCY_BUCKETS_S: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

/// The latencies (from each arrival's intended start) measured so far in one part of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseLatency {
    /// The drill whose phase this is; empty for the whole traffic.
    pub drill: String,
    /// `all` (the whole traffic), `fault` or `recovery`.
    pub phase: String,
    pub count: u64,
    /// The sum of the latencies, in seconds (within the histogram's precision).
    pub sum_s: f64,
    /// How many fell in each bucket of [`LATENCY_BUCKETS_S`] (not cumulative), and a last
    /// one for those above the largest bound.
    pub buckets: Vec<u64>,
}

impl PhaseLatency {
    pub fn of(drill: &str, phase: &str, stats: &drill_load::metrics::Stats) -> PhaseLatency {
        let h = &stats.latency;
        let mut below = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_S.len() + 1);
        for le in LATENCY_BUCKETS_S {
            let n = h.count_between(0, (le * 1e6) as u64);
            buckets.push(n.saturating_sub(below));
            below = below.max(n);
        }
        buckets.push(h.len().saturating_sub(below));
        PhaseLatency {
            drill: drill.to_owned(),
            phase: phase.to_owned(),
            count: h.len(),
            sum_s: h.mean() * h.len() as f64 / 1e6,
            buckets,
        }
    }
}

impl LiveStatus {
    pub(crate) fn new(vp: &ValidPlaybook, scale: f64) -> LiveStatus {
        LiveStatus {
            playbook: vp.playbook.metadata.name.clone(),
            total_s: secs(vp.plan(scale).traffic.duration.0),
            drills: vp
                .drills
                .iter()
                .map(|d| DrillStage {
                    name: d.name.clone(),
                    stage: Stage::Waiting,
                })
                .collect(),
            ..LiveStatus::default()
        }
    }
}
