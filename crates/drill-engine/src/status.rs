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
