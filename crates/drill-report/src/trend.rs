//! A playbook's runs across time (`drill runs --playbook NAME`): each run's verdict, each
//! drill's recovery time and p95 per phase, read from the stored JSON reports, so a weekly
//! scheduled drill shows its drift.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use drill_spec::model::Phase;

use crate::schema::Report;

/// One drill of one run.
#[derive(Debug, Clone, Serialize)]
pub struct DrillPoint {
    pub status: String,
    /// Seconds from the revert until the drill's recovery probe checks held (the longest of
    /// them), else until its recovery phase ended.
    pub recovery_s: Option<f64>,
    /// p95 latency (ms) of its baseline, fault and recovery phases.
    pub p95_ms: BTreeMap<Phase, f64>,
    /// Checks that did not pass.
    pub failed_checks: Vec<String>,
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub run: String,
    pub started_ms: i64,
    pub status: String,
    pub verdict: String,
    pub p95_ms: Option<f64>,
    pub error_rate: Option<f64>,
    pub drills: BTreeMap<String, DrillPoint>,
}

/// A run's point, from its row's fields and its report (`None` when it has none).
pub fn point(run: &str, started_ms: i64, status: &str, report: Option<&Report>) -> Point {
    let mut drills = BTreeMap::new();
    for d in report.iter().flat_map(|r| &r.drills) {
        let p95_ms = d
            .phases
            .iter()
            .map(|(p, x)| (*p, x.latency.p95_ms))
            .collect();
        let failed_checks = d
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.clone())
            .collect();
        drills.insert(
            d.name.clone(),
            DrillPoint {
                status: d.status.as_str().to_owned(),
                recovery_s: d.recovery_s(),
                p95_ms,
                failed_checks,
            },
        );
    }
    let traffic = report.and_then(|r| r.traffic.as_ref());
    Point {
        run: run.to_owned(),
        started_ms,
        status: status.to_owned(),
        verdict: report.map_or_else(|| status.to_uppercase(), |r| r.status.verdict().to_owned()),
        p95_ms: traffic.map(|t| t.latency.p95_ms),
        error_rate: traffic.map(|t| t.error_rate),
        drills,
    }
}

/// The table for a terminal: a line per run, oldest first, a column group per drill.
pub fn table(points: &[Point]) -> String {
    let mut names: Vec<&String> = points.iter().flat_map(|p| p.drills.keys()).collect();
    names.sort();
    names.dedup();
    let mut s = format!(
        "{:<22} {:<17} {:<8} {:>9}",
        "RUN", "STARTED (UTC)", "VERDICT", "P95"
    );
    for n in &names {
        let _ = write!(s, "  | {n}: recovery, p95 baseline/fault/recovery");
    }
    s.push('\n');
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}ms"));
    for p in points {
        let started = chrono::DateTime::from_timestamp_millis(p.started_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let _ = write!(
            s,
            "{:<22} {:<17} {:<8} {:>9}",
            p.run,
            started,
            p.verdict,
            ms(p.p95_ms)
        );
        for n in &names {
            match p.drills.get(*n) {
                None => s.push_str("  | -"),
                Some(d) => {
                    let _ = write!(
                        s,
                        "  | {} {}/{}/{}{}",
                        d.recovery_s
                            .map_or_else(|| "-".to_owned(), |r| format!("{r:.1}s")),
                        ms(d.p95_ms.get(&Phase::Baseline).copied()),
                        ms(d.p95_ms.get(&Phase::Fault).copied()),
                        ms(d.p95_ms.get(&Phase::Recovery).copied()),
                        if d.failed_checks.is_empty() {
                            String::new()
                        } else {
                            format!(" FAILED {}", d.failed_checks.join(","))
                        }
                    );
                }
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_point_reads_recovery_and_phases() {
        let r = crate::tests::report(
            json!({"run": "r1", "status": "failed", "traffic": {"p95_ms": 80.0}, "drills": [{
                "name": "queue-outage", "status": "completed", "reverted_s": 10.0, "recovered_s": 40.0,
                "phases": {"baseline": {"p95_ms": 20.0}, "fault": {"p95_ms": 90.0}},
                "checks": [{"name": "drains", "phase": "recovery", "passed": false, "recovery_s": null},
                           {"name": "backlog", "phase": "recovery", "passed": true, "recovery_s": 12.5}]
            }]}),
        );
        let p = point("r1", 0, "failed", Some(&r));
        let d = &p.drills["queue-outage"];
        assert_eq!(d.recovery_s, Some(12.5));
        assert_eq!(d.p95_ms.len(), 2);
        assert_eq!(d.failed_checks, ["drains"]);
        let t = table(&[p]);
        assert!(t.contains("12.5s 20ms/90ms/- FAILED drains"), "{t}");
    }
}
