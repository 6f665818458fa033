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
    let server = Server::start(Behaviour {
        delay: Duration::from_millis(30),
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

/// Replaces every number with 0 and every string with "", keeping keys and shapes.
fn shape(v: &Value) -> Value {
    match v {
        Value::Number(_) => Value::from(0),
        Value::String(_) => Value::from(""),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_export_has_k6s_layout_field_for_field() {
    let server = Server::start(Behaviour {
        pages: 2,
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let dir = tempdir();
    let pb = playbook(&server.url("/"), &dir, "{p95: 800ms, error_rate: 1%}");
    let r = Run::from_playbook(&pb, &dir, 0.5)
        .expect("run")
        .execute(Stop::default())
        .await;
    let ours = r.k6_summary();
    let golden: Value =
        serde_json::from_str(include_str!("golden/k6-summary-export.json")).expect("golden JSON");
    assert_eq!(
        shape(&ours),
        shape(&golden),
        "ours:\n{}",
        serde_json::to_string_pretty(&ours).unwrap_or_default()
    );
    assert_eq!(ours["root_group"]["id"], "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        ours["root_group"]["checks"]["profile_activity"]["id"],
        golden["root_group"]["checks"]["profile_activity"]["id"]
    );
}
