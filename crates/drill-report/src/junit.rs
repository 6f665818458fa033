//! The JUnit XML report: a suite per drill (each check a test case), one for the run-wide
//! SLO, one for guards and reverts; for CI.

use std::fmt::Write as _;

use crate::fmt::esc;
use crate::schema::{DrillStatus, Report, Status};

struct Case {
    name: String,
    failure: Option<String>,
}

/// The JUnit XML report.
pub fn render(r: &Report) -> String {
    let mut suites: Vec<(String, Vec<Case>)> = Vec::new();
    if r.traffic.is_some() {
        suites.push((
            format!("{}.slo", r.playbook),
            r.slo
                .iter()
                .flatten()
                .map(|th| Case {
                    name: format!("{} {}", th.scope, th.k6),
                    failure: (!th.ok).then(|| th.sentence()),
                })
                .collect(),
        ));
    }
    for d in &r.drills {
        let mut cases: Vec<Case> = d
            .checks
            .iter()
            .map(|c| Case {
                name: c.name.clone(),
                failure: (!c.passed).then(|| format!("{}: {}", c.verdict.word(), c.why)),
            })
            .collect();
        if d.status != DrillStatus::Completed {
            cases.push(Case {
                name: "completed".into(),
                failure: Some(format!("the drill did not complete: {}", d.status.as_str())),
            });
        }
        suites.push((format!("{}.{}", r.playbook, d.name), cases));
    }
    suites.push((format!("{}.safety", r.playbook), safety(r)));

    let total: usize = suites.iter().map(|s| s.1.len()).sum();
    let failures: usize = suites
        .iter()
        .flat_map(|s| s.1.iter())
        .filter(|c| c.failure.is_some())
        .count();
    let secs = r.span_ms().map_or(0.0, |(a, b)| (b - a) as f64 / 1000.0);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"drill {}\" tests=\"{total}\" failures=\"{failures}\" time=\"{secs:.3}\">",
        esc(&r.run)
    );
    for (name, cases) in &suites {
        let f = cases.iter().filter(|c| c.failure.is_some()).count();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\">",
            esc(name),
            cases.len()
        );
        for c in cases {
            match &c.failure {
                None => {
                    let _ = writeln!(
                        x,
                        "    <testcase classname=\"{}\" name=\"{}\"/>",
                        esc(name),
                        esc(&c.name)
                    );
                }
                Some(msg) => {
                    let _ = writeln!(
                        x,
                        "    <testcase classname=\"{}\" name=\"{}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        esc(name),
                        esc(&c.name),
                        esc(msg),
                        esc(msg)
                    );
                }
            }
        }
        let _ = writeln!(x, "  </testsuite>");
    }
    x.push_str("</testsuites>\n");
    x
}

/// Everything reverted, no guard tripped, not aborted.
fn safety(r: &Report) -> Vec<Case> {
    let mut safety = vec![Case {
        name: "everything reverted".into(),
        failure: (!r.still_changed.is_empty()).then(|| {
            r.still_changed
                .iter()
                .map(|c| {
                    format!(
                        "{}/{}: {} — restore with: {}",
                        c.drill, c.fault, c.error, c.manual_restore
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        }),
    }];
    safety.push(Case {
        name: "no guard tripped".into(),
        failure: (!r.guards_tripped.is_empty()).then(|| {
            r.guards_tripped
                .iter()
                .map(|g| format!("{}: {} ({})", g.name, g.condition, g.measured))
                .collect::<Vec<_>>()
                .join("; ")
        }),
    });
    if r.status == Status::Aborted && r.guards_tripped.is_empty() {
        safety.push(Case {
            name: "not aborted".into(),
            failure: r.reason.clone(),
        });
    }
    safety
}
