//! The Markdown report: for people, in the spirit of the seed plan's run report.

use std::fmt::Write as _;

use crate::fmt::pct;
use crate::schema::{Report, Unit};

/// The Markdown report.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# drill run {} — {}\n", r.run, r.status.verdict());
    let _ = writeln!(s, "- Playbook: `{}` ({})", r.playbook, r.file);
    let _ = writeln!(
        s,
        "- Started {}, finished {}{}",
        r.started_at,
        r.finished_at,
        if (r.time_scale - 1.0).abs() > f64::EPSILON {
            format!(", time scale {}", r.time_scale)
        } else {
            String::new()
        }
    );
    if let Some(x) = &r.reason {
        let _ = writeln!(s, "- Reason: {x}");
    }
    if let Some(c) = &r.cause {
        let _ = writeln!(s, "- **Cause**: {c}");
    }
    if !r.still_changed.is_empty() {
        let _ = writeln!(s, "\n## STILL CHANGED — restore by hand\n");
        for c in &r.still_changed {
            let _ = writeln!(
                s,
                "- **{}/{}**: {} — run `{}`",
                c.drill, c.fault, c.error, c.manual_restore
            );
        }
    }
    if let Some(t) = &r.traffic {
        traffic(&mut s, r, t);
    }
    if !r.guards_tripped.is_empty() {
        let _ = writeln!(s, "\n## Guards tripped\n");
        for g in &r.guards_tripped {
            let _ = writeln!(
                s,
                "- **{}** at {:.1} s: {} ({})",
                g.name, g.at_s, g.condition, g.measured
            );
        }
    }
    for d in &r.drills {
        drill(&mut s, d);
    }
    if !r.faults.is_empty() {
        let _ = writeln!(s, "\n## Faults (ledger)\n");
        let _ = writeln!(
            s,
            "| drill | fault | state | applied | reverted | applied for | attempts |\n| --- | --- | --- | --- | --- | ---: | ---: |"
        );
        for f in &r.faults {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                f.drill,
                f.fault,
                f.state.as_str(),
                f.applied_at.as_deref().unwrap_or("—"),
                f.reverted_at.as_deref().unwrap_or("—"),
                f.applied_for_s
                    .map_or_else(|| "—".into(), |x| format!("{x:.1} s")),
                f.attempts
            );
        }
    }
    s
}

fn traffic(s: &mut String, r: &Report, t: &crate::schema::Traffic) {
    let _ = writeln!(s, "\n## Traffic\n");
    let _ = writeln!(
        s,
        "{} requests ({} expected), {} failed ({}), {} dropped; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms.",
        t.requests,
        t.expected.map_or_else(|| "?".into(), |e| e.to_string()),
        t.failed,
        pct(t.error_rate),
        t.dropped,
        t.latency.p50_ms,
        t.latency.p95_ms,
        t.latency.p99_ms,
        t.latency.max_ms,
    );
    if let Some(sh) = &t.shards {
        let _ = writeln!(
            s,
            "\n{} shards ({}), one schedule, judged on their merged measurements:\n\n| shard | scheduled | sent | dropped | failed | last report | stopped early |\n| --- | ---: | ---: | ---: | ---: | --- | --- |",
            sh.count, sh.run_on
        );
        for p in &sh.each {
            let _ = writeln!(
                s,
                "| {}/{} | {} | {} | {} | {} | {} | {} |",
                p.shard,
                sh.count,
                p.scheduled,
                p.sent,
                p.dropped,
                p.failed,
                if p.finished { "yes" } else { "**missing**" },
                p.stopped.as_deref().unwrap_or("").replace('|', "\\|")
            );
        }
    }
    let slo = r.slo.as_deref().unwrap_or_default();
    if !slo.is_empty() {
        let _ = writeln!(
            s,
            "\n| SLO (whole run) | measured | limit | |\n| --- | --- | --- | --- |"
        );
        for th in slo {
            let op = match th.unit {
                Unit::Ratio => "<",
                Unit::Ms => "≤",
            };
            let (m, l) = (th.show(th.measured), format!("{op} {}", th.show(th.limit)));
            let _ = writeln!(
                s,
                "| {} | {m} | {l} | {} |",
                th.what(),
                if th.ok { "pass" } else { "**FAIL**" }
            );
        }
    }
}

fn drill(s: &mut String, d: &crate::schema::DrillResult) {
    let _ = writeln!(
        s,
        "\n## Drill `{}` — {}\n",
        d.name,
        d.status.as_str().replace('_', " ")
    );
    if let (Some(a), Some(b)) = (d.injected_s, d.reverted_s) {
        let _ = writeln!(
            s,
            "Injected at {a:.1} s, reverted at {b:.1} s{}.\n",
            d.recovered_s
                .map(|r| format!(", recovered at {r:.1} s"))
                .unwrap_or_default()
        );
    }
    if !d.phases.is_empty() {
        let _ = writeln!(
            s,
            "| phase | requests | errors | p50 | p95 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for (p, x) in &d.phases {
            let _ = writeln!(
                s,
                "| {p} | {} | {} ({}) | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
                x.requests,
                x.failed,
                pct(x.error_rate),
                x.latency.p50_ms,
                x.latency.p95_ms,
                x.latency.p99_ms,
                x.latency.max_ms
            );
        }
        let _ = writeln!(s);
    }
    if !d.checks.is_empty() {
        let _ = writeln!(
            s,
            "| check | phase | measured | limit | verdict |\n| --- | --- | --- | --- | --- |"
        );
        for c in &d.checks {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                c.name,
                c.phase,
                c.measured,
                c.limit,
                if c.passed {
                    "PASS".to_owned()
                } else {
                    format!("**{}**", c.verdict.word())
                }
            );
        }
    }
    if !d.actions.is_empty() {
        let _ = writeln!(s);
    }
    for a in &d.actions {
        let _ = writeln!(
            s,
            "- action {} at {:.1} s: {}{}",
            a.name,
            a.at_s,
            if a.ok { "" } else { "FAILED: " },
            a.result
        );
    }
}
