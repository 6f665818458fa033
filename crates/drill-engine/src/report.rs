//! The run report, built: a run's typed outcome, its traffic and its ledger become one
//! [`drill_report::Report`] (the JSON's schema), and every rendering is drawn from that
//! report — JSON, Markdown, JUnit XML and HTML (`drill_report`), and the k6 summary-export
//! of the traffic. A stored run re-renders from its stored JSON through the same type.

pub use drill_report::{compare, html, trend};

use std::path::{Path, PathBuf};

use drill_report::{FaultEntry, Mark, MarkKind, Report, Timeline, Traffic, Window};

use crate::error::EngineError;
use crate::outcome::Outcome;
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
    pub report: Report,
    pub json_text: String,
    pub markdown: String,
    pub junit: String,
    /// One self-contained HTML page.
    pub html: String,
    /// k6's summary-export JSON of the traffic (`{}` without traffic).
    pub k6_summary: String,
}

impl Rendered {
    /// Every rendering of `report`.
    pub fn of(report: Report, k6_summary: String) -> Rendered {
        Rendered {
            json_text: serde_json::to_string_pretty(&report).unwrap_or_default(),
            markdown: drill_report::markdown::render(&report),
            junit: drill_report::junit::render(&report),
            html: drill_report::html::render(&report),
            report,
            k6_summary,
        }
    }
}

/// `report` with the one redaction rule applied to every string in it: values from the
/// environment as `${NAME}`, URL passwords and secret query parameters as `***`. `None` if
/// the report does not go through JSON and back (it does by construction).
fn redact(report: &Report, r: &drill_spec::redact::Redactor) -> Option<Report> {
    use serde_json::Value;
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
    let mut v = serde_json::to_value(report).ok()?;
    walk(&mut v, r);
    serde_json::from_value(v).ok()
}

/// Renders every report of a run, redacted: the report first, string by string, then each
/// rendering drawn once from it.
pub fn render(i: &Input<'_>, r: &drill_spec::redact::Redactor) -> Rendered {
    let k6 = i
        .traffic
        .map(|t| serde_json::to_string_pretty(&t.k6_summary()).unwrap_or_default())
        .unwrap_or_else(|| "{}".into());
    let k6 = r.apply(&k6).into_owned();
    let report = build(i);
    match redact(&report, r) {
        Some(report) => Rendered::of(report, k6),
        // Never reached by construction; were it ever, every text is redacted as text, and
        // nothing unredacted is written.
        None => {
            let raw = Rendered::of(report, k6);
            Rendered {
                markdown: r.apply(&raw.markdown).into_owned(),
                junit: r.apply(&raw.junit).into_owned(),
                html: r.apply(&raw.html).into_owned(),
                json_text: r.apply(&raw.json_text).into_owned(),
                k6_summary: raw.k6_summary,
                report: raw.report,
            }
        }
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

use drill_report::fmt::iso;

/// The report of a run.
pub fn build(i: &Input<'_>) -> Report {
    let traffic = i.traffic.map(|r| {
        let o = &r.measurements.overall;
        Traffic {
            requests: o.requests,
            failed: o.failed,
            error_rate: o.error_rate(),
            dropped: r.dropped(),
            expected: r.expected,
            elapsed_s: r.elapsed.as_secs_f64(),
            latency: crate::outcome::latencies(o),
            by_class: o.by_class.clone(),
            failure_samples: r.measurements.failures.clone(),
            shards: i.shards.cloned(),
        }
    });
    let faults = i
        .ledger
        .iter()
        .map(|f| FaultEntry {
            drill: f.drill.clone(),
            fault: f.fault.clone(),
            backend: f.backend.clone(),
            state: f.state,
            changes: f.changes.clone(),
            intent_at: iso(f.intent_ms),
            applied_at: f.applied_ms.map(iso),
            reverted_at: f.reverted_ms.map(iso),
            // Measured: from the instant the apply returned to the one the revert did.
            applied_for_s: applied_for(f).map(|ms| ms as f64 / 1000.0),
            attempts: f.attempts,
            error: f.error.clone(),
            manual_restore: f.manual_restore.clone(),
        })
        .collect();
    let o = i.outcome;
    Report {
        run: i.run_id.to_owned(),
        playbook: i.playbook.to_owned(),
        file: i.file.to_owned(),
        status: o.status,
        verdict: o.status.verdict().to_owned(),
        reason: o.reason.clone(),
        cause: o.cause.clone(),
        started_at: iso(i.started_ms),
        finished_at: iso(i.finished_ms),
        time_scale: i.time_scale,
        traffic,
        slo: i.traffic.map(|r| r.thresholds.clone()),
        drills: o.drills.clone(),
        guards_tripped: o.trips.clone(),
        faults,
        still_changed: o.still_changed.clone(),
        k6_summary: i.traffic.map(drill_load::Report::k6_summary),
        timeline: timeline(i),
        report_version: drill_report::schema::VERSION,
    }
}

/// The per-second series, the measured fault windows from the ledger, and the marks (guard
/// trips, recoveries), all in seconds from the traffic's start. Per second, never per
/// request: an hour is 3,600 entries per array whatever the rate.
fn timeline(i: &Input<'_>) -> Option<Timeline> {
    let t = i.traffic?;
    let secs = &t.measurements.seconds;
    let target = secs
        .iter()
        .map(|s| {
            let r = i.plan.map_or(0.0, |p| {
                drill_spec::timeline::rate_at(
                    p,
                    drill_spec::units::Dur(std::time::Duration::from_secs_f64(s.t as f64 + 0.5)),
                )
            });
            (r * 100.0).round() / 100.0
        })
        .collect();
    let zero = i.traffic_started_ms.unwrap_or(i.started_ms);
    let at = |ms: i64| (ms - zero) as f64 / 1000.0;
    let windows = i
        .ledger
        .iter()
        // The shards' Job is the traffic's, not a fault of a drill: no window.
        .filter(|f| f.drill != crate::shards::TRAFFIC)
        .filter_map(|f| {
            Some(Window {
                drill: f.drill.clone(),
                fault: f.fault.clone(),
                from_s: at(f.applied_ms?),
                to_s: f.reverted_ms.map(at),
                state: f.state,
            })
        })
        .collect();
    let mut marks: Vec<Mark> = i
        .outcome
        .trips
        .iter()
        .map(|g| Mark {
            kind: MarkKind::Guard,
            at_s: g.at_s,
            label: format!("guard {}", g.name.trim_start_matches("playbook/")),
        })
        .collect();
    for d in &i.outcome.drills {
        if let Some(r) = d.recovered_s {
            marks.push(Mark {
                kind: MarkKind::Recovered,
                at_s: r,
                label: format!("{} recovered", d.name),
            });
        }
    }
    let col = |f: fn(&drill_load::metrics::Second) -> u64| secs.iter().map(f).collect();
    let colf = |f: fn(&drill_load::metrics::Second) -> f64| secs.iter().map(f).collect();
    Some(Timeline {
        duration_s: i.plan.map(|p| p.duration.0.as_secs_f64()),
        t: col(|s| s.t),
        target,
        arrivals: col(|s| s.arrivals),
        requests: col(|s| s.requests),
        failed: col(|s| s.failed),
        dropped: col(|s| s.dropped),
        p50_ms: colf(|s| s.p50_ms),
        p95_ms: colf(|s| s.p95_ms),
        p99_ms: colf(|s| s.p99_ms),
        windows,
        marks,
    })
}

/// How long a fault was really applied, when both instants are in the ledger.
fn applied_for(f: &FaultRow) -> Option<i64> {
    Some(f.reverted_ms? - f.applied_ms?).filter(|d| *d >= 0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
        let r = render(
            &Input {
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
            },
            &drill_spec::redact::Redactor::default(),
        );
        let t = r.report.timeline.as_ref().expect("a timeline");
        assert_eq!(t.t.len(), 3600);
        assert_eq!(t.target[1800], 20.0);
        eprintln!(
            "a 1-hour run: report.json {} KB, report.html {} KB",
            r.json_text.len() / 1024,
            r.html.len() / 1024
        );
        assert!(r.json_text.len() < 1_200_000, "{}", r.json_text.len());
        assert!(r.html.len() < 1_000_000, "{}", r.html.len());
    }
}
