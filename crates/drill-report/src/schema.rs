//! The report's types: what `report.json` holds, field by field. The engine builds a
//! [`Report`] from a run's outcome, its traffic and its ledger; everything else (the
//! renderers, the baseline gate, the trend, the CLI, the daemon's API) reads it typed.
//! Stored reports of earlier versions read too: a field they lack takes its default.

use std::collections::BTreeMap;

use drill_spec::model::Phase;
use serde::{Deserialize, Serialize};

/// The version of the report's schema, written in every report as `report_version`.
/// Version 1 is the first one written with the field; a report without it is version 0 and
/// reads the same (the fields were the same).
pub const VERSION: u32 = 1;

/// A run's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub run: String,
    #[serde(default)]
    pub playbook: String,
    #[serde(default)]
    pub file: String,
    pub status: Status,
    /// The verdict word of `status` ([`Status::verdict`]).
    #[serde(default)]
    pub verdict: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// For a run that did not pass: its first cause in one sentence.
    #[serde(default)]
    pub cause: Option<String>,
    /// RFC 3339, milliseconds, UTC.
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default = "one")]
    pub time_scale: f64,
    /// The whole traffic, when the run sent any.
    #[serde(default)]
    pub traffic: Option<Traffic>,
    /// The run-wide SLOs as thresholds over all the traffic (with the traffic).
    #[serde(default)]
    pub slo: Option<Vec<Threshold>>,
    #[serde(default)]
    pub drills: Vec<DrillResult>,
    #[serde(default)]
    pub guards_tripped: Vec<GuardTrip>,
    /// The ledger's rows: what was changed, when, and how it ended.
    #[serde(default)]
    pub faults: Vec<FaultEntry>,
    #[serde(default)]
    pub still_changed: Vec<StillChanged>,
    /// k6's summary-export JSON of the traffic: k6's format, carried as k6 writes it.
    #[serde(default)]
    pub k6_summary: Option<serde_json::Value>,
    #[serde(default)]
    pub timeline: Option<Timeline>,
    #[serde(default)]
    pub report_version: u32,
}

fn one() -> f64 {
    1.0
}

impl Report {
    /// When the run started and finished, milliseconds since the Unix epoch (from the RFC
    /// 3339 instants), when they read.
    pub fn span_ms(&self) -> Option<(i64, i64)> {
        let ms = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp_millis())
        };
        Some((ms(&self.started_at)?, ms(&self.finished_at)?))
    }

    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The whole traffic of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Traffic {
    pub requests: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub dropped: u64,
    /// Arrivals the schedule planned, when it is known.
    pub expected: Option<u64>,
    pub elapsed_s: f64,
    #[serde(flatten)]
    pub latency: Latencies,
    /// Requests by outcome class: `2xx`, `5xx`, `timeout` …
    pub by_class: BTreeMap<String, u64>,
    pub failure_samples: Vec<FailureSample>,
    /// Each shard's part, when the traffic was distributed.
    pub shards: Option<Shards>,
}

/// An example failed request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FailureSample {
    /// Seconds from the start (intended).
    pub at_s: f64,
    pub request: String,
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: f64,
    /// The response's `X-Request-Id`, to find the request in the server's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The shards of a distributed run, each one's part: what the report shows beside the merged
/// figures, so a shard that dropped arrivals (its host saturated) or stopped early is named.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shards {
    pub count: u32,
    /// `local` or `kubernetes`.
    pub run_on: String,
    /// One entry per shard that was started, in shard order.
    pub each: Vec<ShardPart>,
}

/// One shard's part of the run, added up from its reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardPart {
    pub shard: u32,
    pub scheduled: u64,
    pub sent: u64,
    pub dropped: u64,
    pub failed: u64,
    /// Whether its last report arrived.
    pub finished: bool,
    /// Why it stopped before its schedule's end, if it did.
    #[serde(default)]
    pub stopped: Option<String>,
}

/// The unit of a threshold: a latency in milliseconds, or the error rate as a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Ms,
    Ratio,
}

/// One threshold (an SLO limit over a span) and what was measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Threshold {
    /// `overall`, or a phase name.
    pub scope: String,
    /// `p(95)`, `max`, `rate` …
    pub stat: String,
    /// k6's spelling, e.g. `p(95)<=800` on `http_req_duration` or `rate<0.01` on `http_req_failed`.
    #[serde(default)]
    pub k6: String,
    #[serde(default)]
    pub limit: f64,
    #[serde(default)]
    pub measured: f64,
    pub unit: Unit,
    #[serde(default)]
    pub ok: bool,
}

impl Threshold {
    /// The statistic as playbooks name it: `p95`, `max`, `error_rate`.
    pub fn what(&self) -> String {
        match self.unit {
            Unit::Ratio => "error_rate".to_owned(),
            Unit::Ms => self.stat.replace("p(", "p").replace(')', ""),
        }
    }

    /// A value in the threshold's own unit, as a limit is written: `3.85%`, `812ms`, `1.2s`.
    pub fn show(&self, v: f64) -> String {
        match self.unit {
            Unit::Ratio => crate::fmt::pct(v),
            Unit::Ms => crate::fmt::millis(v),
        }
    }

    /// `error_rate 3.85% >= 1%`, `p95 812ms > 800ms`: measured against the limit, in the
    /// same units, with the comparison that held or failed.
    pub fn sentence(&self) -> String {
        let op = match (self.unit, self.ok) {
            (Unit::Ratio, true) => "<",
            (Unit::Ratio, false) => ">=",
            (Unit::Ms, true) => "<=",
            (Unit::Ms, false) => ">",
        };
        format!(
            "{} {} {op} {}",
            self.what(),
            self.show(self.measured),
            self.show(self.limit)
        )
    }
}

/// Where a drill got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillResult {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    pub status: DrillStatus,
    #[serde(default)]
    pub injected_s: Option<f64>,
    #[serde(default)]
    pub reverted_s: Option<f64>,
    #[serde(default)]
    pub recovered_s: Option<f64>,
    /// The traffic of its baseline, fault and recovery phases (written by their names).
    #[serde(default)]
    pub phases: BTreeMap<Phase, PhaseStats>,
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    #[serde(default)]
    pub actions: Vec<ActionResult>,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl DrillResult {
    /// A drill that has not started yet.
    pub fn new(name: String, uses: Option<String>) -> DrillResult {
        DrillResult {
            name,
            uses,
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

    /// Seconds from the revert until its recovery probe checks held (the longest of them),
    /// else until its recovery phase ended.
    pub fn recovery_s(&self) -> Option<f64> {
        let probes = self.checks.iter().filter_map(|c| c.recovery_s);
        match probes.reduce(f64::max) {
            Some(r) => Some(r),
            None => match (self.reverted_s, self.recovered_s) {
                (Some(a), Some(b)) => Some(((b - a) * 1000.0).round() / 1000.0),
                _ => None,
            },
        }
    }
}

/// Traffic measured over one phase of a drill.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseStats {
    pub start_s: f64,
    pub end_s: f64,
    pub requests: u64,
    pub failed: u64,
    pub error_rate: f64,
    #[serde(flatten)]
    pub latency: Latencies,
    pub by_class: BTreeMap<String, u64>,
    pub dropped: u64,
}

/// Latency percentiles and the maximum, in ms (to the µs), of the whole traffic or one phase;
/// written flat beside the other figures (`p95_ms`, not `latency.p95_ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latencies {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// What was measured cannot judge the check (too few successful requests for a delta):
    /// not a pass, and the run does not pass.
    Inconclusive,
}

impl Verdict {
    /// The word in tables: `PASS`, `FAIL`, `INCONCLUSIVE`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }

    /// The word in HTML classes and data attributes: `pass`, `fail`, `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// What a check measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// An SLO over a phase's traffic.
    Slo,
    /// A count of responses of a class.
    Count,
    /// A phase's metric against the baseline's.
    Delta,
    /// A probe's reading against a condition.
    Probe,
    /// A check drill could not read (an older playbook's form).
    Unknown,
}

/// One check's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "CheckWire")]
pub struct CheckResult {
    pub name: String,
    pub kind: CheckKind,
    pub phase: Phase,
    /// `verdict == Pass`.
    pub passed: bool,
    pub verdict: Verdict,
    /// Why, in one sentence with the measured value and the limit in the same units:
    /// `99.9% of 812 requests failed (limit < 1%)`. What the closing line of a failed run
    /// quotes.
    pub why: String,
    /// What was measured, in words: `p95 812ms`, `3 5xx`, `backlog 0 after 12.3s`.
    pub measured: String,
    /// The limit, in words: `p95 < 800ms`, `at most 2`, `value < 1 within 5m0s`.
    pub limit: String,
    /// For probe checks: how long after the window opened the condition first held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_s: Option<f64>,
}

/// A check as stored: reports written before checks had a verdict (pass or fail only) read
/// with the verdict their `passed` said.
#[derive(Deserialize)]
struct CheckWire {
    name: String,
    #[serde(default = "unknown")]
    kind: CheckKind,
    phase: Phase,
    #[serde(default)]
    passed: bool,
    #[serde(default)]
    verdict: Option<Verdict>,
    #[serde(default)]
    why: String,
    #[serde(default)]
    measured: String,
    #[serde(default)]
    limit: String,
    #[serde(default)]
    recovery_s: Option<f64>,
}

fn unknown() -> CheckKind {
    CheckKind::Unknown
}

impl From<CheckWire> for CheckResult {
    fn from(w: CheckWire) -> Self {
        let verdict = w.verdict.unwrap_or(if w.passed {
            Verdict::Pass
        } else {
            Verdict::Fail
        });
        CheckResult {
            name: w.name,
            kind: w.kind,
            phase: w.phase,
            passed: verdict == Verdict::Pass,
            verdict,
            why: w.why,
            measured: w.measured,
            limit: w.limit,
            recovery_s: w.recovery_s,
        }
    }
}

/// An action's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionResult {
    pub name: String,
    pub at_s: f64,
    pub ok: bool,
    pub result: String,
}

/// A guard that tripped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuardTrip {
    pub name: String,
    pub condition: String,
    pub measured: String,
    pub at_s: f64,
}

/// Something still changed at the end of a run, with how to restore it by hand.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StillChanged {
    pub drill: String,
    pub fault: String,
    pub error: String,
    pub manual_restore: String,
}

/// A fault's place in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultState {
    /// Stored before the mutation: it may or may not have happened.
    Intent,
    Applied,
    Reverted,
    /// Cannot be undone; recorded as such (the record says what restores redundancy).
    Permanent,
    /// The revert failed (so far): still changed.
    RevertFailed,
    /// Recovery read the target: the fault never took effect, nothing was changed.
    NotApplied,
}

impl FaultState {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultState::Intent => "intent",
            FaultState::Applied => "applied",
            FaultState::Reverted => "reverted",
            FaultState::Permanent => "permanent",
            FaultState::RevertFailed => "revert_failed",
            FaultState::NotApplied => "not_applied",
        }
    }

    /// Whether the target may still be changed.
    pub fn outstanding(self) -> bool {
        matches!(
            self,
            FaultState::Intent | FaultState::Applied | FaultState::RevertFailed
        )
    }
}

/// One fault of the ledger, as the report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultEntry {
    pub drill: String,
    pub fault: String,
    pub backend: String,
    pub state: FaultState,
    #[serde(default)]
    pub changes: Vec<String>,
    #[serde(default)]
    pub intent_at: String,
    #[serde(default)]
    pub applied_at: Option<String>,
    #[serde(default)]
    pub reverted_at: Option<String>,
    /// Measured: from the instant the apply returned to the one the revert did.
    #[serde(default)]
    pub applied_for_s: Option<f64>,
    #[serde(default)]
    pub attempts: i64,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub manual_restore: String,
}

/// The per-second series (one array per figure, aligned on `t`: what the HTML chart draws),
/// the measured fault windows from the ledger, and the marks (guard trips, recoveries), all
/// in seconds from the traffic's start. Per second, never per request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeline {
    /// The traffic's planned duration.
    pub duration_s: Option<f64>,
    pub t: Vec<u64>,
    /// The schedule's rate in each second.
    pub target: Vec<f64>,
    /// Arrivals of the schedule sent (cursor follow-ups are extra requests).
    pub arrivals: Vec<u64>,
    pub requests: Vec<u64>,
    pub failed: Vec<u64>,
    pub dropped: Vec<u64>,
    pub p50_ms: Vec<f64>,
    pub p95_ms: Vec<f64>,
    pub p99_ms: Vec<f64>,
    pub windows: Vec<Window>,
    pub marks: Vec<Mark>,
}

/// A fault's measured window: from the ledger's `applied` instant to its `reverted` one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    pub drill: String,
    pub fault: String,
    pub from_s: f64,
    /// `None` while (or when) it was never reverted.
    pub to_s: Option<f64>,
    pub state: FaultState,
}

/// What a mark on the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    Guard,
    Recovered,
}

impl MarkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MarkKind::Guard => "guard",
            MarkKind::Recovered => "recovered",
        }
    }
}

/// An instant on the timeline: a guard's trip, a drill's recovery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mark {
    pub kind: MarkKind,
    pub at_s: f64,
    pub label: String,
}

/// What a dry run found: what each fault would change, each probe's reading, and the
/// preflight's errors.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DryRun {
    /// Always `true`: what tells a dry run's JSON from a run's report.
    pub dry_run: bool,
    pub would: Vec<String>,
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The latencies are written flat, in the order report.json always had them.
    #[test]
    fn latencies_are_flat_fields_in_their_old_places() {
        // The keys in the order the text has them (a `Value` would sort them).
        let in_order = |text: String, keys: &[&str]| {
            let at: Vec<usize> = keys
                .iter()
                .map(|k| text.find(&format!("\"{k}\":")).expect(k))
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        };
        in_order(
            serde_json::to_string(&PhaseStats::default()).expect("json"),
            &[
                "start_s",
                "end_s",
                "requests",
                "failed",
                "error_rate",
                "p50_ms",
                "p90_ms",
                "p95_ms",
                "p99_ms",
                "max_ms",
                "by_class",
                "dropped",
            ],
        );
        in_order(
            serde_json::to_string(&Traffic::default()).expect("json"),
            &[
                "requests",
                "failed",
                "error_rate",
                "dropped",
                "expected",
                "elapsed_s",
                "p50_ms",
                "p90_ms",
                "p95_ms",
                "p99_ms",
                "max_ms",
                "by_class",
                "failure_samples",
                "shards",
            ],
        );
        let back: Traffic = serde_json::from_value(serde_json::json!({"p95_ms": 12.5}))
            .expect("an old report's traffic");
        assert_eq!(back.latency.p95_ms, 12.5);
    }

    /// Each enum's `as_str` is the word its serde form writes: one spelling, in report.json,
    /// the store's columns and the HTML alike. The matches fail to compile when a variant is
    /// added, so the lists cannot fall behind.
    #[test]
    fn every_as_str_is_the_serde_name() {
        fn same<T: Serialize + std::fmt::Debug>(v: T, s: &str) {
            assert_eq!(serde_json::to_value(&v).expect("json"), s, "{v:?}");
        }
        for s in [
            Status::Passed,
            Status::Failed,
            Status::Aborted,
            Status::RevertFailed,
            Status::DryRun,
        ] {
            match s {
                Status::Passed
                | Status::Failed
                | Status::Aborted
                | Status::RevertFailed
                | Status::DryRun => same(s, s.as_str()),
            }
        }
        for s in [
            DrillStatus::NotStarted,
            DrillStatus::Aborted,
            DrillStatus::Completed,
            DrillStatus::Skipped,
        ] {
            match s {
                DrillStatus::NotStarted
                | DrillStatus::Aborted
                | DrillStatus::Completed
                | DrillStatus::Skipped => same(s, s.as_str()),
            }
        }
        for v in [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive] {
            match v {
                Verdict::Pass | Verdict::Fail | Verdict::Inconclusive => same(v, v.as_str()),
            }
        }
        for f in [
            FaultState::Intent,
            FaultState::Applied,
            FaultState::Reverted,
            FaultState::Permanent,
            FaultState::RevertFailed,
            FaultState::NotApplied,
        ] {
            match f {
                FaultState::Intent
                | FaultState::Applied
                | FaultState::Reverted
                | FaultState::Permanent
                | FaultState::RevertFailed
                | FaultState::NotApplied => same(f, f.as_str()),
            }
        }
        for m in [MarkKind::Guard, MarkKind::Recovered] {
            match m {
                MarkKind::Guard | MarkKind::Recovered => same(m, m.as_str()),
            }
        }
    }
}
