//! What a run produced, typed: the thing the CLI, the reports and the daemon read.
//!
//! A run's [`Outcome`] holds its [`Status`] (and from it the exit code), each drill's
//! [`DrillResult`] with its phases and checks, the guards that tripped, the run-wide SLO
//! thresholds and whatever stays changed. The JSON report is rendered from these types
//! (`report.rs`); nobody reads it back by key.

use std::path::PathBuf;
use std::time::Duration;

use drill_load::metrics::Stats;
use drill_spec::ResolvedDrill;

pub use drill_report::{
    ActionResult, DrillResult, DrillStatus, GuardTrip, Latencies, PhaseStats, Status, StillChanged,
};

/// The latencies of `s`, in ms to the µs: the report's one reading of a histogram.
pub fn latencies(s: &Stats) -> Latencies {
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    Latencies {
        p50_ms: ms(s.latency_at(50.0)),
        p90_ms: ms(s.latency_at(90.0)),
        p95_ms: ms(s.latency_at(95.0)),
        p99_ms: ms(s.latency_at(99.0)),
        max_ms: ms(s.latency_max()),
    }
}

/// Traffic measured over one phase of a drill.
pub fn phase_stats(s: &Stats, start: Duration, end: Duration) -> PhaseStats {
    PhaseStats {
        start_s: secs(start),
        end_s: secs(end),
        requests: s.requests,
        failed: s.failed,
        error_rate: s.error_rate(),
        latency: latencies(s),
        by_class: s.by_class.clone(),
        dropped: s.dropped,
    }
}

/// A drill's result before it starts.
pub(crate) fn drill_result(d: &ResolvedDrill) -> DrillResult {
    DrillResult::new(d.name.clone(), d.uses.clone())
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
    /// For a run that did not pass: its first cause in one sentence, with what was measured
    /// against the limit ([`Outcome::explain`]); the closing line of `drill apply`.
    pub cause: Option<String>,
    pub drills: Vec<DrillResult>,
    /// The run-wide SLOs, as thresholds over all the traffic.
    pub thresholds: Vec<drill_load::summary::Threshold>,
    pub trips: Vec<GuardTrip>,
    pub still_changed: Vec<StillChanged>,
    /// Dry run: what each fault would change, and each probe's reading.
    pub preview: Vec<String>,
    /// The report (built from the fields above, the traffic and the ledger); `None` for a
    /// run refused before it started, and for a dry run.
    pub report: Option<drill_report::Report>,
    /// A dry run's findings.
    pub dry_run: Option<drill_report::DryRun>,
    pub markdown: String,
    pub junit: String,
    /// The HTML report.
    pub html: String,
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
            cause: None,
            drills: Vec::new(),
            thresholds: Vec::new(),
            trips: Vec::new(),
            still_changed: Vec::new(),
            preview: Vec::new(),
            report: None,
            dry_run: None,
            markdown: String::new(),
            junit: String::new(),
            html: String::new(),
            written: Vec::new(),
        }
    }
}

impl Outcome {
    /// The first cause of a run that did not pass, in words: the first check that failed (in
    /// the order the drills ran, each drill's checks in their declared order), then the guard
    /// that aborted the run, or the run-wide SLO, a skipped drill, what stays changed, or the
    /// abort's reason. `None` for a passed run or a dry run.
    pub fn explain(&self) -> Option<String> {
        if matches!(self.status, Status::Passed | Status::DryRun) {
            return None;
        }
        let mut parts: Vec<String> = Vec::new();
        if !self.still_changed.is_empty() {
            let c = &self.still_changed[0];
            parts.push(format!(
                "{} fault(s) STILL CHANGED, first {}/{}: {} (restore with: {})",
                self.still_changed.len(),
                c.drill,
                c.fault,
                c.error,
                c.manual_restore
            ));
        }
        // The first drill with a check that did not pass; in it, a direct measurement (an
        // SLO, a count, a probe) before a delta, which compares two phases and fails with them.
        let failed = self.drills.iter().find_map(|d| {
            d.checks
                .iter()
                .filter(|c| !c.passed)
                .min_by_key(|c| c.kind == drill_report::CheckKind::Delta)
                .map(|c| (d.name.as_str(), c))
        });
        if let Some((drill, c)) = failed {
            let how = match c.verdict {
                drill_report::Verdict::Inconclusive => "could not be judged",
                drill_report::Verdict::Fail | drill_report::Verdict::Pass => "failed",
            };
            parts.push(format!(
                "{drill}: {} {how} in the {} phase: {}",
                c.name, c.phase, c.why
            ));
        }
        if let Some(g) = self.trips.first() {
            parts.push(format!(
                "guard {} aborted the run at {:.1}s: {} ({})",
                g.name.trim_start_matches("playbook/"),
                g.at_s,
                g.condition,
                g.measured
            ));
        } else if self.status == Status::Aborted
            && let Some(r) = &self.reason
        {
            parts.push(format!("aborted: {r}"));
        }
        if failed.is_none() && self.trips.is_empty() {
            for t in self.thresholds.iter().filter(|t| !t.ok) {
                parts.push(format!("the run-wide SLO failed: {}", t.sentence()));
            }
            if let Some(d) = self
                .drills
                .iter()
                .find(|d| d.status == DrillStatus::Skipped)
            {
                parts.push(format!(
                    "{} was skipped: {}",
                    d.name,
                    d.skipped
                        .as_deref()
                        .unwrap_or("the drill before did not recover")
                ));
            }
        }
        if parts.is_empty() {
            parts.push(
                self.reason
                    .clone()
                    .unwrap_or_else(|| format!("the run ended {}", self.status.as_str())),
            );
        }
        Some(parts.join("; "))
    }
}

/// Seconds, rounded to the millisecond, for reports.
pub(crate) fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
