//! A playbook's traffic: dataset templates, token rotation, cursor pagination, body checks,
//! thresholds, and the k6 summary layout.

use std::collections::BTreeMap;
use std::time::Duration;

use drill_fixture::{Behaviour, Server};
use drill_load::{Run, Stop};
use serde_json::Value;

fn playbook(url: &str, dir: &std::path::Path, slo: &str) -> drill_spec::model::Playbook {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let yaml = format!(
        r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: t}}
target:
  base_url: {url}
  allow: {{http: ["{host}"]}}
traffic:
  dataset: creds.json
  requests:
    - name: profile_activity
      path: /api/v1/communities/{{community_id}}/members/{{member_id}}/activity?per_page=50
      bearer: "{{token}}"
      follow: {{cursor: /meta/next_cursor, param: cursor, max_pages: 5}}
      expect: {{pointer: /data}}
  profile:
    - {{rate: 50/s, hold: 2s}}
slo: {slo}
"#
    );
    let env: BTreeMap<String, String> = BTreeMap::new();
    let mut loader = drill_spec::Loader::new(&env);
    loader.add("t.yaml", &yaml, true);
    let out = loader.finish();
    assert!(!out.has_errors(), "{:?}", out.diags);
    let creds: Vec<Value> = (0..4).map(|i| serde_json::json!({"community_id": i % 2 + 1, "member_id": 100 + i, "token": format!("tok-{i}")})).collect();
    std::fs::write(
        dir.join("creds.json"),
        serde_json::to_string(&serde_json::json!({"tokens": creds})).expect("json"),
    )
    .expect("write");
    out.playbooks[0].playbook.clone()
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "drill-load-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_rotate_tokens_and_follow_cursors() {
    let server = Server::start(Behaviour {
        pages: 3,
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let dir = tempdir();
    let pb = playbook(&server.url("/"), &dir, "{p95: 1s, error_rate: 1%}");
    let r = Run::from_playbook(&pb, &dir, 1.0)
        .expect("run")
        .execute(Stop::default())
        .await;
    let seen = server.seen();
    // 100 arrivals, each reading 3 pages.
    assert_eq!(r.measurements.counters.scheduled, 100);
    assert_eq!(server.requests(), 300);
    assert_eq!(r.measurements.counters.follow_ups, 200);
    assert_eq!(seen.cursors.get(""), Some(&100));
    assert_eq!(seen.cursors.get("p1"), Some(&100));
    assert_eq!(seen.cursors.get("p2"), Some(&100));
    // Four tokens, rotated evenly.
    assert_eq!(seen.tokens.len(), 4);
    assert!(seen.tokens.values().all(|n| *n == 75), "{:?}", seen.tokens);
    assert_eq!(
        seen.paths.get("/api/v1/communities/2/members/101/activity"),
        Some(&75)
    );
    assert!(r.passed());
    let k6 = r.k6_summary();
    assert_eq!(
        k6["root_group"]["checks"]["profile_activity"]["passes"],
        300
    );
    assert_eq!(k6["metrics"]["iterations"]["count"], 100);
    assert_eq!(k6["metrics"]["http_reqs"]["count"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_threshold_fails_the_verdict_and_is_written_as_k6_writes_it() {
    // One page of `/data` per request: the body check passes, so only latency fails.
    let server = Server::start(Behaviour {
        delay: Duration::from_millis(30),
        pages: 1,
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let dir = tempdir();
    let pb = playbook(&server.url("/"), &dir, "{p95: 10ms, error_rate: 1%}");
    let r = Run::from_playbook(&pb, &dir, 1.0)
        .expect("run")
        .execute(Stop::default())
        .await;
    assert!(!r.passed());
    let k6 = r.k6_summary();
    assert_eq!(
        k6["metrics"]["http_req_duration"]["thresholds"]["p(95)<=10"], true,
        "true means crossed, as in k6"
    );
    assert_eq!(
        k6["metrics"]["http_req_failed"]["thresholds"]["rate<0.01"],
        false
    );
}

/// Replaces every number with 0, string with "" and boolean with false, keeping keys and
/// shapes.
fn shape(v: &Value) -> Value {
    match v {
        Value::Number(_) => Value::from(0),
        Value::String(_) => Value::from(""),
        Value::Bool(_) => Value::from(false),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        other => other.clone(),
    }
}

/// The placeholders for names a test chooses: the one check, the thresholds' expressions.
fn normalize_names(mut v: Value) -> Value {
    for path in [
        &["root_group", "checks"][..],
        &["metrics", "http_req_duration", "thresholds"][..],
        &["metrics", "http_req_failed", "thresholds"][..],
    ] {
        let mut cur = &mut v;
        for k in path {
            cur = &mut cur[*k];
        }
        if let Value::Object(o) = cur {
            let vals: Vec<Value> = o.values().cloned().collect();
            o.clear();
            for (i, x) in vals.into_iter().enumerate() {
                o.insert(format!("name-{i}"), x);
            }
        }
    }
    v
}

/// Metrics drill adds to k6's set, on purpose: the latency from the actual send.
const DRILL_EXTRAS: &[&str] = &["drill_service_duration"];

/// md5 of a string by the system's `md5sum`, not drill's code.
fn md5sum(s: &str) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(s.as_bytes())
        .expect("write");
    let out = c.wait_with_output().expect("md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_export_matches_k6s_documented_layout_and_the_servers_counts() {
    let delay = Duration::from_millis(20);
    let server = Server::start(Behaviour {
        delay,
        pages: 1,
        fail_every: Some((5, 503)),
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let dir = tempdir();
    let pb = playbook(&server.url("/"), &dir, "{p95: 800ms, error_rate: 1%}");
    let r = Run::from_playbook(&pb, &dir, 1.0)
        .expect("run")
        .execute(Stop::default())
        .await;
    let ours = r.k6_summary();

    // Layout: k6's documented document, field for field, plus drill's listed extras only.
    let golden: Value =
        serde_json::from_str(include_str!("golden/k6-summary-export.json")).expect("golden JSON");
    let mut trimmed = ours.clone();
    for extra in DRILL_EXTRAS {
        assert!(
            trimmed["metrics"]
                .as_object_mut()
                .and_then(|m| m.remove(*extra))
                .is_some(),
            "{extra} is listed as an extra but not written"
        );
    }
    assert_eq!(
        shape(&normalize_names(trimmed)),
        shape(&normalize_names(golden)),
        "ours:\n{}",
        serde_json::to_string_pretty(&ours).unwrap_or_default()
    );
    assert_eq!(ours["root_group"]["id"], md5sum(""));
    assert_eq!(
        ours["root_group"]["checks"]["profile_activity"]["id"],
        md5sum("::profile_activity")
    );

    // Values, against what the server counted and how it behaved.
    let m = &ours["metrics"];
    let served = server.requests();
    let failed_503 = served / 5;
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    assert_eq!(
        m["http_reqs"]["count"], served,
        "every request k6 counts reached the server"
    );
    assert_eq!(
        m["http_req_failed"]["passes"], failed_503,
        "the 503s, counted as k6 counts a rate's non-zero samples"
    );
    assert_eq!(m["http_req_failed"]["fails"], served - failed_503);
    let value = num(&m["http_req_failed"]["value"]);
    assert!(
        (value - failed_503 as f64 / served as f64).abs() < 1e-9,
        "{value}"
    );
    assert_eq!(
        m["http_req_failed"]["thresholds"]["rate<0.01"], true,
        "20% errors cross rate<0.01 (true means crossed, as in k6)"
    );
    assert_eq!(m["http_req_duration"]["thresholds"]["p(95)<=800"], false);
    // Two seconds at 50/s: the rates are counts over the run's duration.
    let rate = num(&m["http_reqs"]["rate"]);
    let secs = served as f64 / rate;
    assert!((1.9..3.5).contains(&secs), "{secs} s");
    assert_eq!(m["iterations"]["count"], 100, "50/s for 2 s, one page each");
    assert_eq!(m["dropped_iterations"]["count"], 0);
    // The body check: every 200 has /data; a 503 does not.
    let checks = &m["checks"];
    assert_eq!(checks["passes"], served - failed_503, "{checks}");
    assert_eq!(checks["fails"], failed_503, "{checks}");
    let c = &ours["root_group"]["checks"]["profile_activity"];
    assert_eq!(
        (&c["passes"], &c["fails"]),
        (&checks["passes"], &checks["fails"])
    );
    // Latency: no response came sooner than the server's delay; the statistics are ordered.
    let d = &m["http_req_duration"];
    let ms = delay.as_secs_f64() * 1e3;
    let (min, med, p90, p95, max, avg) = (
        num(&d["min"]),
        num(&d["med"]),
        num(&d["p(90)"]),
        num(&d["p(95)"]),
        num(&d["max"]),
        num(&d["avg"]),
    );
    assert!(min >= ms, "min {min} ms < the server's {ms} ms delay");
    assert!(min <= med && med <= p90 && p90 <= p95 && p95 <= max, "{d}");
    assert!(min <= avg && avg <= max, "{d}");
    assert!(num(&m["drill_service_duration"]["min"]) >= ms);
}

/// A playbook whose one request expects `/missing` (which the fixture never sends), with
/// `traffic.errors` listed without `check`, and the expectation's `error` as given.
fn expecting_missing(url: &str, error: &str) -> drill_spec::model::Playbook {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let yaml = format!(
        r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: t}}
target:
  base_url: {url}
  allow: {{http: ["{host}"]}}
traffic:
  requests:
    - name: a
      path: /api/v1/communities/1/members/1/activity
      expect: {{pointer: /missing{error}}}
  profile:
    - {{rate: 50/s, hold: 1s}}
  errors: [5xx, 429, timeout, connect, reset]
"#
    );
    let env: BTreeMap<String, String> = BTreeMap::new();
    let mut loader = drill_spec::Loader::new(&env);
    loader.add("t.yaml", &yaml, true);
    let out = loader.finish();
    assert!(!out.has_errors(), "{:?}", out.diags);
    out.playbooks[0].playbook.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_expectation_is_an_error_unless_it_says_error_false() {
    let server = Server::start(Behaviour {
        pages: 1,
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let dir = tempdir();
    let counted = Run::from_playbook(&expecting_missing(&server.url("/"), ""), &dir, 1.0)
        .expect("run")
        .execute(Stop::default())
        .await;
    let k6 = counted.k6_summary();
    let reqs = k6["metrics"]["http_reqs"]["count"].as_u64().unwrap_or(0);
    assert!(reqs >= 40, "{reqs}");
    assert_eq!(
        k6["metrics"]["http_req_failed"]["passes"], reqs,
        "every 200 without /missing is a failed request, though `check` is not listed"
    );
    assert_eq!(k6["metrics"]["checks"]["fails"], reqs);
    let reported = Run::from_playbook(
        &expecting_missing(&server.url("/"), ", error: false"),
        &dir,
        1.0,
    )
    .expect("run")
    .execute(Stop::default())
    .await;
    let k6 = reported.k6_summary();
    assert_eq!(
        k6["metrics"]["http_req_failed"]["passes"], 0,
        "`error: false`: reported among the checks only"
    );
    assert!(k6["metrics"]["checks"]["fails"].as_u64().unwrap_or(0) >= 40);
}
