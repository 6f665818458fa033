//! A run as it happens: the [`RunHandle`] a caller holds, and the [`LiveStatus`] it
//! watches (the daemon's status route and the CLI's progress line read it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drill_load::metrics::Recorder;
use drill_spec::ValidPlaybook;
use drill_spec::timeline::TrafficPlan;
use serde::Serialize;
use tokio::sync::watch;

use crate::context::{Abort, RunContext, locked};
use crate::outcome::secs;
use crate::run::{EngineError, Options};
use crate::{Outcome, Store};

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

/// How many whole seconds the recent figures cover.
const RECENT: u64 = 5;

/// Refreshes the traffic figures and active faults every 500 ms until the run aborts or
/// the task is dropped.
pub(crate) async fn refresh(cx: Arc<RunContext>, plan: TrafficPlan, recorder: Arc<Recorder>) {
    loop {
        let now = cx.now();
        let to = Duration::from_secs(now.as_secs());
        let from = to.saturating_sub(Duration::from_secs(RECENT));
        let w = recorder.window_between(from, to);
        let span = (to - from).as_secs_f64();
        let faults: Vec<ActiveFault> = locked(&cx.faults)
            .iter()
            .filter(|f| f.state.outstanding())
            .map(|f| ActiveFault {
                drill: f.drill.clone(),
                fault: f.name.clone(),
                backend: f.backend,
                since_s: f.since.map(secs),
            })
            .collect();
        cx.status.send_modify(|s| {
            s.elapsed_s = secs(now);
            s.target_rate = drill_spec::timeline::rate_at(&plan, drill_spec::units::Dur(now));
            s.achieved_rate = if span > 0.0 {
                w.requests as f64 / span
            } else {
                0.0
            };
            s.recent_p95_ms = w.latency_at(95.0).as_secs_f64() * 1e3;
            s.recent_error_rate = w.error_rate();
            s.active_faults = faults;
        });
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = cx.abort.triggered() => return,
        }
    }
}

/// A run started with [`start`]: abort it, watch it, wait for its outcome.
#[derive(Debug)]
pub struct RunHandle {
    abort: Abort,
    status: watch::Receiver<LiveStatus>,
    task: tokio::task::JoinHandle<Result<Outcome, EngineError>>,
}

impl RunHandle {
    /// Stops the run: traffic stops, every fault is reverted, the outcome says why.
    pub fn abort(&self, reason: impl Into<String>) {
        self.abort.trigger(reason);
    }

    /// The abort signal, to wire to signals or to an API.
    pub fn aborter(&self) -> Abort {
        self.abort.clone()
    }

    /// A watch of the live status.
    pub fn status(&self) -> watch::Receiver<LiveStatus> {
        self.status.clone()
    }

    /// The outcome, once the run is over.
    pub async fn wait(self) -> Result<Outcome, EngineError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(EngineError::Panicked(e.to_string())),
        }
    }
}

/// Starts a run on the current tokio runtime; see [`crate::apply`] for what it does.
pub fn start(store: Store, vp: ValidPlaybook, dir: PathBuf, opts: Options) -> RunHandle {
    let abort = Abort::default();
    let (tx, rx) = watch::channel(LiveStatus::new(&vp, opts.time_scale));
    let task = {
        let abort = abort.clone();
        tokio::spawn(async move { crate::run::run(&store, &vp, &dir, &opts, abort, tx).await })
    };
    RunHandle {
        abort,
        status: rx,
        task,
    }
}
