//! drill's run report, typed: [`Report`] is the schema of `report.json` (versioned by
//! [`schema::VERSION`]), and every rendering of a run reads it — [`markdown`], [`junit`],
//! [`html`] (one self-contained page with the SVG timeline), the baseline gate
//! ([`compare`]) and a playbook's runs across time ([`trend`]). A stored run renders from its
//! stored JSON exactly as the run that wrote it did, since both go through this type.
//!
//! What it is not: it measures nothing and reads no store. The engine builds a `Report` from
//! a run's outcome, its traffic and its ledger (`drill_engine::report`); the k6
//! summary-export is drill-load's, carried here as k6's own JSON. Nothing outside the serde
//! boundary reads a report by key.

pub mod compare;
pub mod fmt;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod schema;
pub mod trend;

pub use schema::{
    ActionResult, CheckKind, CheckResult, DrillResult, DrillStatus, DryRun, FailureSample,
    FaultEntry, FaultState, GuardTrip, Latencies, Mark, MarkKind, PhaseStats, Report, ShardPart,
    Shards, Status, StillChanged, Threshold, Timeline, Traffic, Unit, Verdict, Window,
};

/// Reads a stored `report.json`.
pub fn parse(json: &str) -> Result<Report, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report from the fields a test names; the rest take their defaults.
    pub fn report(v: serde_json::Value) -> crate::Report {
        serde_json::from_value(v).expect("a report")
    }

    /// A report written before checks had a verdict and before `report_version` reads, with
    /// the verdict its `passed` said; and what reads writes back the same.
    #[test]
    fn an_earlier_report_reads_and_writes_back_the_same() {
        let old = serde_json::json!({
            "run": "r1", "playbook": "p", "file": "p.yaml", "status": "failed",
            "verdict": "FAIL", "reason": null, "cause": "c", "time_scale": 1.0,
            "started_at": "2026-12-07T10:00:00.000Z", "finished_at": "2026-12-07T10:01:30.500Z",
            "traffic": null, "slo": null, "guards_tripped": [], "faults": [],
            "still_changed": [], "k6_summary": null, "timeline": null,
            "drills": [{"name": "d", "status": "completed", "injected_s": 1.0,
                "reverted_s": 2.0, "recovered_s": 3.0, "actions": [],
                "phases": {"baseline": {"p95_ms": 12.5}, "recovery": {"p95_ms": 40.0}},
                "checks": [
                    {"name": "a", "kind": "slo", "phase": "fault", "passed": true,
                     "why": "w", "measured": "m", "limit": "l"},
                    {"name": "b", "kind": "delta", "phase": "recovery", "passed": false,
                     "why": "w", "measured": "m", "limit": "l"}
                ]}]
        });
        let r = report(old);
        assert_eq!(r.report_version, 0);
        let checks = &r.drills[0].checks;
        assert_eq!(checks[0].verdict, Verdict::Pass);
        assert_eq!(checks[1].verdict, Verdict::Fail);
        assert_eq!(checks[1].kind, CheckKind::Delta);
        assert_eq!(
            r.drills[0].phases[&drill_spec::model::Phase::Recovery]
                .latency
                .p95_ms,
            40.0
        );
        assert_eq!(r.span_ms().map(|(a, b)| b - a), Some(90_500));
        let text = serde_json::to_string(&r).expect("json");
        let again = parse(&text).expect("reads back");
        assert_eq!(serde_json::to_string(&again).expect("json"), text);
        assert!(text.contains(r#""verdict":"pass""#), "{text}");
        assert!(
            text.contains(r#""phases":{"baseline":"#),
            "phases keep their names: {text}"
        );
    }

    /// A report missing what every report has is an error that names the field.
    #[test]
    fn a_report_without_a_status_is_refused_by_name() {
        let e = parse(r#"{"run": "r1"}"#).expect_err("no status");
        assert!(e.to_string().contains("missing field `status`"), "{e}");
    }
}
