//! A playbook's runs across time (`drill runs --playbook NAME`): each run's verdict, each
//! drill's recovery time and p95 per phase, read from the stored JSON reports, so a weekly
//! scheduled drill shows its drift.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// One drill of one run.
#[derive(Debug, Clone, Serialize)]
pub struct DrillPoint {
    pub status: String,
    /// Seconds from the revert until the drill's recovery probe checks held (the longest of
    /// them), else until its recovery phase ended.
    pub recovery_s: Option<f64>,
    /// p95 latency (ms) of its baseline, fault and recovery phases.
    pub p95_ms: BTreeMap<String, f64>,
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

/// A run's point, from its row's fields and its JSON report (`Null` when it has none).
pub fn point(run: &str, started_ms: i64, status: &str, report: &Value) -> Point {
    let mut drills = BTreeMap::new();
    for d in report["drills"].as_array().into_iter().flatten() {
        let probes: Vec<f64> = d["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["recovery_s"].as_f64())
            .collect();
        let recovery_s = if probes.is_empty() {
            match (d["reverted_s"].as_f64(), d["recovered_s"].as_f64()) {
                (Some(a), Some(b)) => Some(((b - a) * 1000.0).round() / 1000.0),
                _ => None,
            }
        } else {
            probes.into_iter().reduce(f64::max)
        };
        let p95_ms = ["baseline", "fault", "recovery"]
            .into_iter()
            .filter_map(|p| Some((p.to_owned(), d["phases"][p]["p95_ms"].as_f64()?)))
            .collect();
        let failed_checks = d["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["passed"] != true)
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        drills.insert(
            d["name"].as_str().unwrap_or("?").to_owned(),
            DrillPoint {
                status: d["status"].as_str().unwrap_or("?").to_owned(),
                recovery_s,
                p95_ms,
                failed_checks,
            },
        );
    }
    Point {
        run: run.to_owned(),
        started_ms,
        status: status.to_owned(),
        verdict: report["verdict"]
            .as_str()
            .map_or_else(|| status.to_uppercase(), str::to_owned),
        p95_ms: report["traffic"]["p95_ms"].as_f64(),
        error_rate: report["traffic"]["error_rate"].as_f64(),
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
                        ms(d.p95_ms.get("baseline").copied()),
                        ms(d.p95_ms.get("fault").copied()),
                        ms(d.p95_ms.get("recovery").copied()),
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
        let r = json!({"verdict": "FAIL", "traffic": {"p95_ms": 80.0}, "drills": [{
            "name": "queue-outage", "status": "completed", "reverted_s": 10.0, "recovered_s": 40.0,
            "phases": {"baseline": {"p95_ms": 20.0}, "fault": {"p95_ms": 90.0}},
            "checks": [{"name": "drains", "passed": false, "recovery_s": null},
                       {"name": "backlog", "passed": true, "recovery_s": 12.5}]
        }]});
        let p = point("r1", 0, "failed", &r);
        let d = &p.drills["queue-outage"];
        assert_eq!(d.recovery_s, Some(12.5));
        assert_eq!(d.p95_ms.len(), 2);
        assert_eq!(d.failed_checks, ["drains"]);
        let t = table(&[p]);
        assert!(t.contains("12.5s 20ms/90ms/- FAILED drains"), "{t}");
    }
}
