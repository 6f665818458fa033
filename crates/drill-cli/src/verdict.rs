//! A run's verdict lines, printed from its JSON report: the same lines whether the run ran
//! here (`drill apply`) or on a daemon (`drill apply --server`), and the one closing line —
//! `PASS: …`, or the verdict word and the first cause in words (`FAIL: cache-purge:
//! api-errors-after-flush failed in the recovery phase: 99.9% of 812 requests failed (limit <
//! 1%)`).

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

/// Prints the verdict table, the run-wide SLOs that failed, the report files, and the
/// closing line, to stdout.
pub fn print(r: &Value, written: &[PathBuf]) {
    let mut o = std::io::stdout().lock();
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let id = r["run"].as_str().unwrap_or("-");
    let _ = writeln!(o, "\nrun {id}: {}", s(&r["verdict"]));
    if let Some(reason) = r["reason"].as_str() {
        let _ = writeln!(o, "  {reason}");
    }
    let drills = r["drills"].as_array().cloned().unwrap_or_default();
    if !drills.is_empty() {
        let _ = writeln!(
            o,
            "\n  {:<18} {:<28} {:<6} {:<52} LIMIT",
            "DRILL", "CHECK", "", "MEASURED"
        );
        for d in &drills {
            let checks = d["checks"].as_array().cloned().unwrap_or_default();
            if checks.is_empty() {
                let _ = writeln!(o, "  {:<18} ({})", s(&d["name"]), s(&d["status"]));
            }
            for c in &checks {
                let word = match c["verdict"].as_str() {
                    Some(v) => v.to_uppercase(),
                    None if c["passed"] == true => "PASS".into(),
                    None => "FAIL".into(),
                };
                let _ = writeln!(
                    o,
                    "  {:<18} {:<28} {:<6} {:<52} {}",
                    s(&d["name"]),
                    s(&c["name"]),
                    word,
                    s(&c["measured"]),
                    s(&c["limit"])
                );
            }
        }
    }
    for t in r["slo"].as_array().into_iter().flatten() {
        if t["ok"] == false {
            let ratio = t["unit"] == "ratio";
            let show = |v: &Value| {
                let v = v.as_f64().unwrap_or(0.0);
                if ratio {
                    drill_load::summary::pct(v)
                } else {
                    drill_load::summary::millis(v)
                }
            };
            let what = if ratio {
                "error_rate".to_owned()
            } else {
                s(&t["stat"]).replace("p(", "p").replace(')', "")
            };
            let _ = writeln!(
                o,
                "  run-wide SLO {} FAILED: {what} {} {} {}",
                s(&t["scope"]),
                show(&t["measured"]),
                if ratio { ">=" } else { ">" },
                show(&t["limit"])
            );
        }
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
pub fn closing(r: &Value) -> String {
    if r["status"] == "passed" {
        return "PASS: every check held and every fault was reverted".into();
    }
    let cause = r["cause"]
        .as_str()
        .or_else(|| r["reason"].as_str())
        .unwrap_or("no cause was recorded");
    format!("{}: {cause}", r["verdict"].as_str().unwrap_or("FAIL"))
}
