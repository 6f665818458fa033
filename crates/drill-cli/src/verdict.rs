//! A run's verdict lines, printed from its report: the same lines whether the run ran here
//! (`drill apply`) or on a daemon (`drill apply --server`), and the one closing line —
//! `PASS: …`, or the verdict word and the first cause in words (`FAIL: cache-purge:
//! api-errors-after-flush failed in the recovery phase: 99.9% of 812 requests failed (limit <
//! 1%)`).

use std::io::Write;
use std::path::PathBuf;

use drill_report::Report;

/// Prints the verdict table, the run-wide SLOs that failed, the report files, and the
/// closing line, to stdout.
pub fn print(r: &Report, written: &[PathBuf]) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "\nrun {}: {}", r.run, r.status.verdict());
    if let Some(reason) = &r.reason {
        let _ = writeln!(o, "  {reason}");
    }
    if !r.drills.is_empty() {
        let _ = writeln!(
            o,
            "\n  {:<18} {:<28} {:<6} {:<52} LIMIT",
            "DRILL", "CHECK", "", "MEASURED"
        );
        for d in &r.drills {
            if d.checks.is_empty() {
                let _ = writeln!(o, "  {:<18} ({})", d.name, d.status.as_str());
            }
            for c in &d.checks {
                let _ = writeln!(
                    o,
                    "  {:<18} {:<28} {:<6} {:<52} {}",
                    d.name,
                    c.name,
                    c.verdict.word(),
                    c.measured,
                    c.limit
                );
            }
        }
    }
    for t in r.slo.iter().flatten().filter(|t| !t.ok) {
        let _ = writeln!(o, "  run-wide SLO {} FAILED: {}", t.scope, t.sentence());
    }
    if !written.is_empty() {
        let _ = writeln!(o, "\nreports:");
        for w in written {
            let _ = writeln!(o, "  {}", w.display());
        }
    }
    let _ = writeln!(o, "\n{}", closing(r));
}

/// The closing line.
pub fn closing(r: &Report) -> String {
    if r.passed() {
        return "PASS: every check held and every fault was reverted".into();
    }
    let cause = r
        .cause
        .as_deref()
        .or(r.reason.as_deref())
        .unwrap_or("no cause was recorded");
    format!("{}: {cause}", r.status.verdict())
}
