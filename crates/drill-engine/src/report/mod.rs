//! The run report: JSON (everything, with the k6-compatible summary and the per-second
//! timeline), Markdown (for people, in the spirit of the seed plan's run report), JUnit XML
//! (each check a test case, for CI) and HTML (`html`: one self-contained page with an SVG
//! timeline, drawn from the JSON alone so that a stored run renders the same). `compare`
//! sets two runs' JSON reports side by side (the baseline gate); `trend` reads a playbook's
//! runs across time.

pub mod compare;
pub mod html;
pub mod trend;

use std::fmt::Write as _;

use serde_json::{Value, json};

use std::path::{Path, PathBuf};

use crate::error::EngineError;
use crate::outcome::{DrillStatus, Outcome, Status};
use crate::store::FaultRow;

/// What a report is made from: the typed outcome, the traffic's report and the ledger.
#[derive(Debug)]
pub struct Input<'a> {
    pub run_id: &'a str,
    pub playbook: &'a str,
    pub file: &'a str,
    pub outcome: &'a Outcome,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub time_scale: f64,
    pub traffic: Option<&'a drill_load::Report>,
    /// Each shard's part, when the traffic was distributed.
    pub shards: Option<&'a crate::shards::Shards>,
    pub ledger: &'a [FaultRow],
    /// When the traffic's clock started (the zero of every `*_s` offset), if it ran.
    pub traffic_started_ms: Option<i64>,
    /// The traffic's plan (time-scaled): the target rate of each second.
    pub plan: Option<&'a drill_spec::timeline::TrafficPlan>,
}

/// A run's reports, rendered.
#[derive(Debug)]
pub struct Rendered {
    pub json: Value,
    pub json_text: String,
    pub markdown: String,
    pub junit: String,
    /// One self-contained HTML page.
    pub html: String,
    /// k6's summary-export JSON of the traffic (`{}` without traffic).
    pub k6_summary: String,
}

impl Rendered {
    /// Every report with the one redaction rule applied: values from the environment as
    /// `${NAME}`, URL passwords and secret query parameters as `***`. The JSON is redacted
    /// string by string, and the HTML drawn again from it.
    pub fn redacted(mut self, r: &drill_spec::redact::Redactor) -> Self {
        fn walk(v: &mut Value, r: &drill_spec::redact::Redactor) {
            match v {
                Value::String(s) => {
                    if let std::borrow::Cow::Owned(o) = r.apply(s) {
                        *s = o;
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(|x| walk(x, r)),
                Value::Object(m) => m.values_mut().for_each(|x| walk(x, r)),
                _ => {}
            }
        }
        walk(&mut self.json, r);
        self.json_text = serde_json::to_string_pretty(&self.json).unwrap_or_default();
        self.html = html::render(&self.json);
        self.markdown = r.apply(&self.markdown).into_owned();
        self.junit = r.apply(&self.junit).into_owned();
        self
    }
}

/// Renders every report of a run.
pub fn render(i: &Input<'_>) -> Rendered {
    let json = json(i);
    Rendered {
        json_text: serde_json::to_string_pretty(&json).unwrap_or_default(),
        html: html::render(&json),
        json,
        markdown: markdown(i),
        junit: junit(i),
        k6_summary: i
            .traffic
            .map(|r| serde_json::to_string_pretty(&r.k6_summary()).unwrap_or_default())
            .unwrap_or_else(|| "{}".into()),
    }
}

impl Rendered {
    /// Writes report.json, report.md, junit.xml, report.html and k6-summary.json into `dir`.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| EngineError::Report { path, source }
        };
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io(dir))?;
        }
        let mut written = Vec::new();
        for (name, body) in [
            ("report.json", &self.json_text),
            ("report.md", &self.markdown),
            ("junit.xml", &self.junit),
            ("report.html", &self.html),
            ("k6-summary.json", &self.k6_summary),
        ] {
            let p = dir.join(name);
            private_file(&p, body.as_bytes()).map_err(io(&p))?;
            written.push(p);
        }
        Ok(written)
    }
}

/// Writes a file readable by its owner only (0600), whatever the umask: reports name the
/// targets and what was done to them.
pub fn private_file(p: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(p)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(body)
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn opt_iso(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(iso(m)))
}

/// The JSON report.
pub fn json(i: &Input<'_>) -> Value {
    let traffic = i.traffic.map(|r| {
        let o = &r.measurements.overall;
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        json!({
            "requests": o.requests,
            "failed": o.failed,
            "error_rate": o.error_rate(),
            "dropped": r.dropped(),
            "expected": r.expected,
            "elapsed_s": r.elapsed.as_secs_f64(),
            "p50_ms": ms(o.latency_at(50.0)),
            "p90_ms": ms(o.latency_at(90.0)),
            "p95_ms": ms(o.latency_at(95.0)),
            "p99_ms": ms(o.latency_at(99.0)),
            "max_ms": ms(o.latency_max()),
            "by_class": o.by_class,
            "failure_samples": r.measurements.failures,
            "shards": i.shards,
        })
    });
    let faults: Vec<Value> = i
        .ledger
        .iter()
        .map(|f| {
            json!({
                "drill": f.drill,
                "fault": f.fault,
                "backend": f.backend,
                "state": f.state,
                "changes": f.changes,
                "intent_at": iso(f.intent_ms),
                "applied_at": opt_iso(f.applied_ms),
                "reverted_at": opt_iso(f.reverted_ms),
                // Measured: from the instant the apply returned to the one the revert did.
                "applied_for_s": applied_for(f).map(|ms| ms as f64 / 1000.0),
                "attempts": f.attempts,
                "error": f.error,
                "manual_restore": f.manual_restore,
            })
        })
        .collect();
    json!({
        "run": i.run_id,
        "playbook": i.playbook,
        "file": i.file,
        "status": i.outcome.status,
        "verdict": i.outcome.status.verdict(),
        "reason": i.outcome.reason,
        "cause": i.outcome.cause,
        "started_at": iso(i.started_ms),
        "finished_at": iso(i.finished_ms),
        "time_scale": i.time_scale,
        "traffic": traffic,
        "slo": i.traffic.map(|r| &r.thresholds),
        "drills": &i.outcome.drills,
        "guards_tripped": i.outcome.trips,
        "faults": faults,
        "still_changed": i.outcome.still_changed,
        "k6_summary": i.traffic.map(drill_load::Report::k6_summary),
        "timeline": timeline(i),
    })
}

/// The per-second series (one array per figure, aligned on `t`: what the HTML chart draws),
/// the measured fault windows from the ledger, and the marks (guard trips, recoveries), all
/// in seconds from the traffic's start. Per second, never per request: an hour is 3,600
/// entries per array whatever the rate.
fn timeline(i: &Input<'_>) -> Value {
    let Some(t) = i.traffic else {
        return Value::Null;
    };
    let secs = &t.measurements.seconds;
    let col = |f: &dyn Fn(&drill_load::metrics::Second) -> Value| -> Value {
        Value::Array(secs.iter().map(f).collect())
    };
    let target: Vec<Value> = secs
        .iter()
        .map(|s| {
            let r = i.plan.map_or(0.0, |p| {
                drill_spec::timeline::rate_at(
                    p,
                    drill_spec::units::Dur(std::time::Duration::from_secs_f64(s.t as f64 + 0.5)),
                )
            });
            json!((r * 100.0).round() / 100.0)
        })
        .collect();
    let zero = i.traffic_started_ms.unwrap_or(i.started_ms);
    let at = |ms: i64| (ms - zero) as f64 / 1000.0;
    let windows: Vec<Value> = i
        .ledger
        .iter()
        // The shards' Job is the traffic's, not a fault of a drill: no window.
        .filter(|f| f.drill != crate::shards::TRAFFIC)
        .filter_map(|f| {
            let from = f.applied_ms?;
            Some(json!({
                "drill": f.drill,
                "fault": f.fault,
                "from_s": at(from),
                "to_s": f.reverted_ms.map(at),
                "state": f.state,
            }))
        })
        .collect();
    let mut marks: Vec<Value> = i
        .outcome
        .trips
        .iter()
        .map(|g| json!({"kind": "guard", "at_s": g.at_s, "label": format!("guard {}", g.name.trim_start_matches("playbook/"))}))
        .collect();
    for d in &i.outcome.drills {
        if let Some(r) = d.recovered_s {
            marks.push(
                json!({"kind": "recovered", "at_s": r, "label": format!("{} recovered", d.name)}),
            );
        }
    }
    json!({
        "duration_s": i.plan.map(|p| p.duration.0.as_secs_f64()),
        "t": col(&|s| json!(s.t)),
        "target": target,
        "arrivals": col(&|s| json!(s.arrivals)),
        "requests": col(&|s| json!(s.requests)),
        "failed": col(&|s| json!(s.failed)),
        "dropped": col(&|s| json!(s.dropped)),
        "p50_ms": col(&|s| json!(s.p50_ms)),
        "p95_ms": col(&|s| json!(s.p95_ms)),
        "p99_ms": col(&|s| json!(s.p99_ms)),
        "windows": windows,
        "marks": marks,
    })
}

/// The Markdown report.
pub fn markdown(i: &Input<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# drill run {} — {}\n",
        i.run_id,
        i.outcome.status.verdict()
    );
    let _ = writeln!(s, "- Playbook: `{}` ({})", i.playbook, i.file);
    let _ = writeln!(
        s,
        "- Started {}, finished {}{}",
        iso(i.started_ms),
        iso(i.finished_ms),
        if (i.time_scale - 1.0).abs() > f64::EPSILON {
            format!(", time scale {}", i.time_scale)
        } else {
            String::new()
        }
    );
    if let Some(r) = &i.outcome.reason {
        let _ = writeln!(s, "- Reason: {r}");
    }
    if let Some(c) = &i.outcome.cause {
        let _ = writeln!(s, "- **Cause**: {c}");
    }
    if !i.outcome.still_changed.is_empty() {
        let _ = writeln!(s, "\n## STILL CHANGED — restore by hand\n");
        for c in &i.outcome.still_changed {
            let _ = writeln!(
                s,
                "- **{}/{}**: {} — run `{}`",
                c.drill, c.fault, c.error, c.manual_restore
            );
        }
    }
    if let Some(t) = i.traffic {
        let o = &t.measurements.overall;
        let _ = writeln!(s, "\n## Traffic\n");
        let _ = writeln!(
            s,
            "{} requests ({} expected), {} failed ({}), {} dropped; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms.",
            o.requests,
            t.expected.map_or_else(|| "?".into(), |e| e.to_string()),
            o.failed,
            drill_load::summary::pct(o.error_rate()),
            t.dropped(),
            o.latency_at(50.0).as_secs_f64() * 1e3,
            o.latency_at(95.0).as_secs_f64() * 1e3,
            o.latency_at(99.0).as_secs_f64() * 1e3,
            o.latency_max().as_secs_f64() * 1e3,
        );
        if let Some(sh) = i.shards {
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
        if !t.thresholds.is_empty() {
            let _ = writeln!(
                s,
                "\n| SLO (whole run) | measured | limit | |\n| --- | --- | --- | --- |"
            );
            for th in &t.thresholds {
                let op = if th.unit == "ratio" { "<" } else { "≤" };
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
    if !i.outcome.trips.is_empty() {
        let _ = writeln!(s, "\n## Guards tripped\n");
        for g in &i.outcome.trips {
            let _ = writeln!(
                s,
                "- **{}** at {:.1} s: {} ({})",
                g.name, g.at_s, g.condition, g.measured
            );
        }
    }
    for d in &i.outcome.drills {
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
            for p in ["baseline", "fault", "recovery"] {
                if let Some(x) = d.phases.get(p) {
                    let _ = writeln!(
                        s,
                        "| {p} | {} | {} ({}) | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
                        x.requests,
                        x.failed,
                        drill_load::summary::pct(x.error_rate),
                        x.p50_ms,
                        x.p95_ms,
                        x.p99_ms,
                        x.max_ms
                    );
                }
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
    if !i.ledger.is_empty() {
        let _ = writeln!(s, "\n## Faults (ledger)\n");
        let _ = writeln!(
            s,
            "| drill | fault | state | applied | reverted | applied for | attempts |\n| --- | --- | --- | --- | --- | ---: | ---: |"
        );
        for f in i.ledger {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                f.drill,
                f.fault,
                f.state.as_str(),
                f.applied_ms.map(iso).unwrap_or_else(|| "—".into()),
                f.reverted_ms.map(iso).unwrap_or_else(|| "—".into()),
                applied_for(f)
                    .map_or_else(|| "—".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
                f.attempts
            );
        }
    }
    s
}

/// How long a fault was really applied, when both instants are in the ledger.
fn applied_for(f: &FaultRow) -> Option<i64> {
    Some(f.reverted_ms? - f.applied_ms?).filter(|d| *d >= 0)
}

/// The JUnit XML report: a suite per drill (each check a test case), one for the run-wide
/// SLO, one for guards and reverts.
pub fn junit(i: &Input<'_>) -> String {
    struct Case {
        name: String,
        failure: Option<String>,
    }
    let mut suites: Vec<(String, Vec<Case>)> = Vec::new();
    if let Some(t) = i.traffic {
        suites.push((
            format!("{}.slo", i.playbook),
            t.thresholds
                .iter()
                .map(|th| Case {
                    name: format!("{} {}", th.scope, th.k6),
                    failure: (!th.ok).then(|| th.sentence()),
                })
                .collect(),
        ));
    }
    for d in &i.outcome.drills {
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
        suites.push((format!("{}.{}", i.playbook, d.name), cases));
    }
    let mut safety = vec![Case {
        name: "everything reverted".into(),
        failure: (!i.outcome.still_changed.is_empty()).then(|| {
            i.outcome
                .still_changed
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
        failure: (!i.outcome.trips.is_empty()).then(|| {
            i.outcome
                .trips
                .iter()
                .map(|g| format!("{}: {} ({})", g.name, g.condition, g.measured))
                .collect::<Vec<_>>()
                .join("; ")
        }),
    });
    if i.outcome.status == Status::Aborted && i.outcome.trips.is_empty() {
        safety.push(Case {
            name: "not aborted".into(),
            failure: i.outcome.reason.clone(),
        });
    }
    suites.push((format!("{}.safety", i.playbook), safety));

    let total: usize = suites.iter().map(|s| s.1.len()).sum();
    let failures: usize = suites
        .iter()
        .flat_map(|s| s.1.iter())
        .filter(|c| c.failure.is_some())
        .count();
    let secs = (i.finished_ms - i.started_ms) as f64 / 1000.0;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"drill {}\" tests=\"{total}\" failures=\"{failures}\" time=\"{secs:.3}\">",
        html::esc(i.run_id)
    );
    for (name, cases) in &suites {
        let f = cases.iter().filter(|c| c.failure.is_some()).count();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\">",
            html::esc(name),
            cases.len()
        );
        for c in cases {
            match &c.failure {
                None => {
                    let _ = writeln!(
                        x,
                        "    <testcase classname=\"{}\" name=\"{}\"/>",
                        html::esc(name),
                        html::esc(&c.name)
                    );
                }
                Some(msg) => {
                    let _ = writeln!(
                        x,
                        "    <testcase classname=\"{}\" name=\"{}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        html::esc(name),
                        html::esc(&c.name),
                        html::esc(msg),
                        html::esc(msg)
                    );
                }
            }
        }
        let _ = writeln!(x, "  </testsuite>");
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn xml_is_escaped() {
        assert_eq!(
            super::html::esc("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;"
        );
    }

    /// An hour of traffic makes a report of per-second series, not per-request data: its
    /// size does not grow with the rate.
    #[test]
    fn the_report_of_a_one_hour_run_stays_small() {
        let rec =
            drill_load::Recorder::new(drill_load::ErrorSet::standard(), Duration::from_secs(10));
        let ok = drill_load::metrics::Outcome {
            status: Some(200),
            failure: None,
            request_id: None,
            check: None,
        };
        let failed = drill_load::metrics::Outcome {
            status: Some(503),
            request_id: Some("req-123".into()),
            ..ok.clone()
        };
        for t in 0..3600u64 {
            for k in 0..20u64 {
                let at = Duration::from_millis(t * 1000 + k * 50);
                let lat = Duration::from_micros(2_000 + (t * 7919 + k * 104_729) % 400_000);
                let o = if (t + k) % 97 == 0 { &failed } else { &ok };
                rec.record("home", at, lat, lat, o);
            }
        }
        let measurements = rec.finish();
        let traffic = drill_load::Report {
            measurements,
            elapsed: Duration::from_secs(3600),
            thresholds: Vec::new(),
            expected: Some(72_000),
            target_rate: Some(20.0),
            open: None,
        };
        let plan = drill_spec::timeline::TrafficPlan {
            stages: vec![drill_spec::timeline::StageSpan {
                start: drill_spec::units::Dur(Duration::ZERO),
                end: drill_spec::units::Dur(Duration::from_secs(3600)),
                from: "20/s".parse().expect("rate"),
                to: "20/s".parse().expect("rate"),
                requests: 72_000.0,
            }],
            duration: drill_spec::units::Dur(Duration::from_secs(3600)),
            expected_requests: 72_000.0,
            peak: "20/s".parse().expect("rate"),
        };
        let outcome = Outcome::bare(Some("r".into()), crate::Status::Passed, None);
        let r = render(&Input {
            run_id: "r",
            playbook: "hour",
            file: "hour.yaml",
            outcome: &outcome,
            started_ms: 0,
            finished_ms: 3_600_000,
            time_scale: 1.0,
            traffic: Some(&traffic),
            shards: None,
            ledger: &[],
            traffic_started_ms: Some(0),
            plan: Some(&plan),
        });
        let t = &r.json["timeline"];
        assert_eq!(t["t"].as_array().map(Vec::len), Some(3600));
        assert_eq!(t["target"][1800], 20.0);
        eprintln!(
            "a 1-hour run: report.json {} KB, report.html {} KB",
            r.json_text.len() / 1024,
            r.html.len() / 1024
        );
        assert!(r.json_text.len() < 1_200_000, "{}", r.json_text.len());
        assert!(r.html.len() < 1_000_000, "{}", r.html.len());
    }
}
