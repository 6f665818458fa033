//! What a run produced, typed: the thing the CLI, the reports and the daemon read.
//!
//! A run's [`Outcome`] holds its [`Status`] (and from it the exit code), each drill's
//! [`DrillResult`] with its phases and checks, the guards that tripped, the run-wide SLO
//! thresholds and whatever stays changed. The JSON report is rendered from these types
//! (`report.rs`); nobody reads it back by key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use drill_load::metrics::Stats;
use drill_spec::ResolvedDrill;
use serde::Serialize;

use crate::checks::CheckResult;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Aborted,
    RevertFailed,
    DryRun,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
            Status::RevertFailed => "revert_failed",
            Status::DryRun => "dry_run",
        }
    }

    /// The verdict word in reports.
    pub fn verdict(self) -> &'static str {
        match self {
            Status::Passed => "PASS",
            Status::Failed => "FAIL",
            Status::Aborted => "ABORTED",
            Status::RevertFailed => "REVERT FAILED",
            Status::DryRun => "DRY RUN",
        }
    }
}

/// Something still changed at the end of a run, with how to restore it by hand.
#[derive(Debug, Clone, Serialize)]
pub struct StillChanged {
    pub drill: String,
    pub fault: String,
    pub error: String,
    pub manual_restore: String,
}

/// A guard that tripped.
#[derive(Debug, Clone, Serialize)]
pub struct GuardTrip {
    pub name: String,
    pub condition: String,
    pub measured: String,
    pub at_s: f64,
}

/// An action's result.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    pub name: String,
    pub at_s: f64,
    pub ok: bool,
    pub result: String,
}

/// Traffic measured over one phase of a drill.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseStats {
    pub start_s: f64,
    pub end_s: f64,
    pub requests: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub by_class: BTreeMap<String, u64>,
    pub dropped: u64,
}

impl PhaseStats {
    pub fn of(s: &Stats, start: Duration, end: Duration) -> PhaseStats {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        PhaseStats {
            start_s: secs(start),
            end_s: secs(end),
            requests: s.requests,
            failed: s.failed,
            error_rate: s.error_rate(),
            p50_ms: ms(s.latency_at(50.0)),
            p90_ms: ms(s.latency_at(90.0)),
            p95_ms: ms(s.latency_at(95.0)),
            p99_ms: ms(s.latency_at(99.0)),
            max_ms: ms(s.latency_max()),
            by_class: s.by_class.clone(),
            dropped: s.dropped,
        }
    }
}

/// Where a drill got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillStatus {
    /// The run ended (or was aborted) before the drill's start.
    NotStarted,
    /// The run stopped during it.
    Aborted,
    /// Baseline, fault, revert and recovery all ran.
    Completed,
    /// Never started: it runs `after: recovered` and the previous drill did not recover
    /// (the reason says why); its faults were never applied.
    Skipped,
}

impl DrillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillStatus::NotStarted => "not_started",
            DrillStatus::Aborted => "aborted",
            DrillStatus::Completed => "completed",
            DrillStatus::Skipped => "skipped",
        }
    }
}

/// One drill's result.
#[derive(Debug, Clone, Serialize)]
pub struct DrillResult {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    pub status: DrillStatus,
    pub injected_s: Option<f64>,
    pub reverted_s: Option<f64>,
    pub recovered_s: Option<f64>,
    pub phases: BTreeMap<String, PhaseStats>,
    pub checks: Vec<CheckResult>,
    pub actions: Vec<ActionResult>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl DrillResult {
    pub(crate) fn new(d: &ResolvedDrill) -> DrillResult {
        DrillResult {
            name: d.name.clone(),
            uses: d.uses.clone(),
            status: DrillStatus::NotStarted,
            injected_s: None,
            reverted_s: None,
            recovered_s: None,
            phases: BTreeMap::new(),
            checks: Vec::new(),
            actions: Vec::new(),
            skipped: None,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
    pub drills: Vec<DrillResult>,
    /// The run-wide SLOs, as thresholds over all the traffic.
    pub thresholds: Vec<drill_load::summary::Threshold>,
    pub trips: Vec<GuardTrip>,
    pub still_changed: Vec<StillChanged>,
    /// Dry run: what each fault would change, and each probe's reading.
    pub preview: Vec<String>,
    /// The JSON report (rendered from the fields above and the ledger).
    pub report: serde_json::Value,
    pub markdown: String,
    pub junit: String,
    /// Report files written.
    pub written: Vec<PathBuf>,
}

impl Outcome {
    /// An outcome with nothing measured: a refused run, a dry run.
    pub(crate) fn bare(run_id: Option<String>, status: Status, reason: Option<String>) -> Self {
        Outcome {
            run_id,
            status,
            reason,
            drills: Vec::new(),
            thresholds: Vec::new(),
            trips: Vec::new(),
            still_changed: Vec::new(),
            preview: Vec::new(),
            report: serde_json::Value::Null,
            markdown: String::new(),
            junit: String::new(),
            written: Vec::new(),
        }
    }
}

/// Seconds, rounded to the millisecond, for reports.
pub(crate) fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
