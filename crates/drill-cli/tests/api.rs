//! The daemon's HTTP API: every route × {no token, a bad token, viewer, operator, admin}
//! gives its documented status; malformed and oversized bodies are refused; a run
//! triggered through the API runs for real and its report is served.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Running, Work, api_base, call, fixture, token};
use drill_testkit::stdout;

const PLAYBOOK: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: api-short}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    exec: ["true"]
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 10/s, hold: 4s}]
drills:
  - name: noop
    at: 1s
    drill:
      baseline: 1s
      hold: 1s
      recovery: 1s
      faults:
        - name: hook
          action: exec
          exec: {inject: {command: ["true"]}, revert: {command: ["true"]}}
      checks:
        - {name: few-5xx, count: {of: 5xx, max: 1000}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_documented_and_a_triggered_run_runs() {
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("short.yaml"),
        PLAYBOOK.replace("BASE", &server.url("")),
    )
    .expect("playbook");
    let dir_s = dir.display().to_string();

    // No token file, no API.
    let refused = w.drill(&["daemon", "--playbooks", &dir_s, "--listen", "127.0.0.1:0"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("drill token add"));

    let file = w.dir.path().join("tokens");
    let viewer = token(&w, &file, "viewer");
    let operator = token(&w, &file, "operator");
    let admin = token(&w, &file, "admin");
    let kept = std::fs::read_to_string(&file).expect("tokens");
    assert!(!kept.contains(&admin), "the file keeps hashes only");

    let mut d = Running::spawn(w.cmd(&[
        "daemon",
        "--playbooks",
        &dir_s,
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        &file.display().to_string(),
        "--report-dir",
        &w.dir.path().join("reports").display().to_string(),
        "--log-format",
        "json",
        "--policy",
        &common::open_policy(&w).display().to_string(),
    ]));
    d.wait_for("API on http://", Duration::from_secs(20));
    let line = d.seen.last().cloned().unwrap_or_default();
    let line: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    let base = api_base(line["message"].as_str().expect("message"));
    let url = |p: &str| format!("{base}{p}");

    assert_eq!(call("GET", &url("/healthz"), None, None).0, 200);
    assert_eq!(call("GET", &url("/readyz"), None, None).0, 200);

    // (method, path, body, the least role, its status)
    type Route<'a> = (&'a str, &'a str, Option<&'a [u8]>, usize, u16);
    let dry = br#"{"playbook": "api-short", "dry_run": true}"#.as_slice();
    let routes: [Route<'_>; 12] = [
        ("GET", "/api/v1/playbooks", None, 0, 200),
        ("GET", "/api/v1/runs", None, 0, 200),
        ("GET", "/api/v1/fires", None, 0, 200),
        ("GET", "/api/v1/halt", None, 0, 200),
        ("GET", "/api/v1/audit", None, 0, 200),
        ("GET", "/api/v1/openapi.json", None, 0, 200),
        ("GET", "/api/v1/runs/nope", None, 0, 404),
        ("GET", "/api/v1/runs/nope/report", None, 0, 404),
        ("POST", "/api/v1/runs/nope/abort", None, 1, 404),
        ("POST", "/api/v1/runs", Some(dry), 1, 200),
        (
            "POST",
            "/api/v1/halt",
            Some(br#"{"reason": "matrix"}"#),
            2,
            200,
        ),
        ("POST", "/api/v1/resume", None, 2, 200),
    ];
    let roles = [&viewer, &operator, &admin];
    // The served description names every route of the matrix below.
    let (_, doc) = call("GET", &url("/api/v1/openapi.json"), Some(&viewer), None);
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("openapi");
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path, _, _, _) in &routes {
        let p = path.replace("/nope", "/{id}");
        assert!(
            doc["paths"][&p][method.to_lowercase()].is_object(),
            "{method} {p} is not in the OpenAPI description"
        );
    }
    for (method, path, body, least, ok) in routes {
        let (s, b) = call(method, &url(path), None, body);
        assert_eq!(s, 401, "{method} {path} without a token: {b}");
        let (s, _) = call(method, &url(path), Some("drill_not-a-token"), body);
        assert_eq!(s, 401, "{method} {path} with a bad token");
        for (i, t) in roles.iter().enumerate() {
            let (s, b) = call(method, &url(path), Some(t), body);
            let want = if i >= least { ok } else { 403 };
            assert_eq!(s, want, "{method} {path} as role {i}: {b}");
        }
    }

    // Malformed and oversized bodies change nothing.
    let (s, b) = call(
        "POST",
        &url("/api/v1/runs"),
        Some(&operator),
        Some(br#"{"playbook": 3}"#),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("not a run request"), "{b}");
    let big = vec![b' '; 70 * 1024];
    assert_eq!(
        call("POST", &url("/api/v1/runs"), Some(&operator), Some(&big)).0,
        413
    );
    let (s, b) = call(
        "POST",
        &url("/api/v1/runs"),
        Some(&operator),
        Some(br#"{"playbook": "nope"}"#),
    );
    assert_eq!(s, 404, "{b}");
    let store = w.store().await;
    assert!(
        store.runs(10).await.expect("runs").is_empty(),
        "nothing ran yet"
    );

    // A real run through the API.
    let (s, b) = call(
        "POST",
        &url("/api/v1/runs"),
        Some(&operator),
        Some(br#"{"playbook": "api-short"}"#),
    );
    assert_eq!(s, 202, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    let id = v["run"].as_str().expect("run id").to_owned();
    let (s, b) = call(
        "GET",
        &url(&format!("/api/v1/runs/{id}")),
        Some(&viewer),
        None,
    );
    assert_eq!(s, 200, "{b}");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, b) = call(
            "GET",
            &url(&format!("/api/v1/runs/{id}")),
            Some(&viewer),
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&b).expect("json");
        if v["run"]["status"] != "running" {
            assert_eq!(v["run"]["status"], "passed", "{v}");
            break;
        }
        assert!(Instant::now() < until, "the run did not end: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (s, b) = call(
        "GET",
        &url(&format!("/api/v1/runs/{id}/report?format=json")),
        Some(&viewer),
        None,
    );
    assert_eq!(s, 200);
    let r: serde_json::Value = serde_json::from_str(&b).expect("report");
    assert_eq!(r["verdict"], "PASS", "{r}");
    // Every mutating call is in the audit, with the playbook's hash for a run.
    let (s, b) = call("GET", &url("/api/v1/audit"), Some(&viewer), None);
    assert_eq!(s, 200);
    let a: serde_json::Value = serde_json::from_str(&b).expect("audit");
    let mine = a["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .find(|r| r["status"] == 202)
        .cloned()
        .unwrap_or_else(|| panic!("{a}"));
    assert_eq!(mine["subject"], "operator-1");
    assert_eq!(mine["path"], "/api/v1/runs");
    let detail = mine["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("playbook api-short sha256 ") && detail.ends_with(&id),
        "{detail}"
    );
    assert!(
        a["audit"]
            .as_array()
            .expect("audit")
            .iter()
            .any(|r| r["status"] == 403),
        "refused calls are audited too"
    );
    // The event stream of a finished run: its row, as one `end` event.
    let (s, b) = call(
        "GET",
        &url(&format!("/api/v1/runs/{id}/events")),
        Some(&viewer),
        None,
    );
    assert_eq!(s, 200);
    assert!(b.contains("event: end") && b.contains("\"passed\""), "{b}");
    // Metrics: behind a token too (the daemon was not started with --metrics-open).
    assert_eq!(call("GET", &url("/metrics"), None, None).0, 401);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, m) = call("GET", &url("/metrics"), Some(&viewer), None);
        assert_eq!(s, 200);
        if m.contains(r#"drill_runs_total{playbook="api-short",outcome="passed"} 1"#) {
            assert!(m.contains("drill_halt_active 0"), "{m}");
            assert!(m.contains("drill_run_duration_seconds_bucket"), "{m}");
            assert!(
                m.contains(r#"drill_faults_active{backend="exec"} 0"#),
                "{m}"
            );
            // The latency histogram holds every request the report counted, and the
            // drill's fault span on its own.
            let requests = r["traffic"]["requests"].as_u64().expect("requests");
            assert!(
                m.contains(&format!(
                    r#"drill_request_latency_seconds_count{{playbook="api-short",drill="",phase="all"}} {requests}"#
                )),
                "{requests} requests: {m}"
            );
            assert!(
                m.contains(&format!(
                    r#"drill_request_latency_seconds_bucket{{le="+Inf",playbook="api-short",drill="",phase="all"}} {requests}"#
                )),
                "{m}"
            );
            assert!(
                m.contains(r#"drill_request_latency_seconds_count{playbook="api-short",drill="noop",phase="fault"}"#),
                "{m}"
            );
            break;
        }
        assert!(Instant::now() < until, "{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The logs: one JSON object per line; every line the run logged names it.
    d.wait_for(r#""outcome":"passed""#, Duration::from_secs(10));
    let logged: Vec<serde_json::Value> = d
        .seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let of_run: Vec<_> = logged
        .iter()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with('[')))
        .collect();
    assert!(of_run.len() >= 3, "the run's timeline lines: {logged:?}");
    for l in &of_run {
        assert_eq!(l["span"]["run"], id.as_str(), "{l}");
        assert_eq!(l["span"]["playbook"], "api-short", "{l}");
    }
    // Each line once (the engine writes them to `tracing` itself; the daemon does not repeat
    // them), and the ones that matter with their fields.
    let mut messages: Vec<&str> = of_run
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    let all = messages.len();
    messages.sort_unstable();
    messages.dedup();
    assert_eq!(messages.len(), all, "a run's line logged twice: {of_run:?}");
    let field = |k: &str, v: &str| {
        of_run
            .iter()
            .any(|l| l[k] == v && l["drill"] == "noop" && l["level"] == "INFO")
    };
    assert!(
        field("state", "applied"),
        "the fault applied, with its fields: {of_run:?}"
    );
    assert!(field("state", "reverted"), "the fault reverted: {of_run:?}");
    assert!(field("verdict", "pass"), "a check's verdict: {of_run:?}");
    assert!(
        of_run
            .iter()
            .any(|l| l["applied_ms"].is_u64() && l["planned_ms"].is_u64()),
        "the measured hold: {of_run:?}"
    );
    let end = logged.last().expect("a line");
    assert_eq!(end["run"], id.as_str(), "{end}");
    assert_eq!(end["level"], "INFO", "{end}");
    assert!(
        logged.iter().any(|l| l["message"] == "api call"
            && l["status"] == 202
            && l["subject"] == "operator-1"),
        "the trigger is logged: {logged:?}"
    );

    // A posted playbook that is invalid: 400 with its errors, nothing run.
    let (s, b) = call(
        "POST",
        &url("/api/v1/runs"),
        Some(&operator),
        Some(br#"{"yaml": "apiVersion: drill/v1\nkind: Playbook\n"}"#),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("missing required field"), "{b}");

    // `drill apply --server`: validated here, run there, the same verdict lines and code.
    let local = w.file("remote.yaml", &PLAYBOOK.replace("BASE", &server.url("")));
    let apply = |token: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drill"));
        c.args(["apply", "--server", &base])
            .arg(&local)
            .env_remove("DRILL_TOKEN");
        if let Some(t) = token {
            c.env("DRILL_TOKEN", t);
        }
        c.output().expect("drill apply --server")
    };
    let no_token = apply(None);
    assert_eq!(no_token.status.code(), Some(2));
    let out = apply(Some(&operator));
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(": PASS\n"), "{text}");
    assert!(text.contains("noop"), "{text}");
    assert!(
        text.contains("PASS: every check held and every fault was reverted"),
        "{text}"
    );
    assert_eq!(
        apply(Some(&viewer)).status.code(),
        Some(2),
        "a viewer cannot run"
    );
    // The other client commands.
    let client = |args: &[&str], token: &str| {
        Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(args)
            .args(["--server", &base])
            .env("DRILL_TOKEN", token)
            .output()
            .expect("drill")
    };
    let runs = client(&["runs"], &viewer);
    assert!(stdout(&runs).contains(&id), "{}", stdout(&runs));
    assert_eq!(
        client(&["halt", "--reason", "cli"], &operator)
            .status
            .code(),
        Some(2),
        "an operator cannot halt"
    );
    let halted = client(&["halt", "--reason", "cli"], &admin);
    assert!(
        stdout(&halted).contains("halted by admin-1: cli"),
        "{halted:?}"
    );
    let resumed = client(&["resume"], &admin);
    assert!(stdout(&resumed).contains("is lifted"), "{resumed:?}");

    common::nix_kill(d.child.id(), "TERM");
    let (code, _, err) = d.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(r#""message":"daemon: stopped""#), "{err}");
}

/// Two daemons on one store: an abort sent to the one that does not run the run reaches
/// the one that does, through the store, and its fault is reverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_sent_to_another_daemon_on_the_store_aborts_the_run_and_reverts_it() {
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    let mark = w.dir.path().join("mark");
    let long = PLAYBOOK
        .replace("BASE", &server.url(""))
        .replace("hold: 4s", "hold: 60s")
        .replace("hold: 1s", "hold: 50s")
        .replace(r#"exec: ["true"]"#, r#"exec: ["true", "touch", "rm"]"#)
        .replace(
            r#"exec: {inject: {command: ["true"]}, revert: {command: ["true"]}}"#,
            &format!(
                r#"exec: {{inject: {{command: ["touch", "{m}"]}}, revert: {{command: ["rm", "-f", "{m}"]}}}}"#,
                m = mark.display()
            ),
        );
    std::fs::write(dir.join("long.yaml"), &long).expect("playbook");
    let file = w.dir.path().join("tokens");
    let operator = token(&w, &file, "operator");
    let start = |name: &str| {
        let mut d = Running::spawn(w.cmd(&[
            "daemon",
            "--playbooks",
            &dir.display().to_string(),
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            &file.display().to_string(),
            "--report-dir",
            &w.dir.path().join(name).display().to_string(),
            "--lease",
            "1500ms",
        ]));
        d.wait_for("API on http://", Duration::from_secs(20));
        let base = api_base(&d.seen.last().cloned().unwrap_or_default());
        (d, base)
    };
    let (a, base_a) = start("a");
    let (b, base_b) = start("b");
    let (s, body) = call(
        "POST",
        &format!("{base_a}/api/v1/runs"),
        Some(&operator),
        Some(br#"{"playbook": "api-short"}"#),
    );
    assert_eq!(s, 202, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let id = v["run"].as_str().expect("run id").to_owned();
    let until = Instant::now() + Duration::from_secs(15);
    while !mark.exists() {
        assert!(Instant::now() < until, "the fault was never applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = Instant::now();
    let (s, body) = call(
        "POST",
        &format!("{base_b}/api/v1/runs/{id}/abort"),
        Some(&operator),
        None,
    );
    assert_eq!(s, 202, "{body}");
    assert!(body.contains(r#""through":"store""#), "{body}");
    while mark.exists() {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the fault is still applied 5 s after the abort"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reverted = asked.elapsed();
    eprintln!(
        "abort through the other daemon: reverted after {reverted:?} (lease 1.5 s: renewals every 0.5 s)"
    );
    let store = w.store().await;
    let until = Instant::now() + Duration::from_secs(10);
    let row = loop {
        let r = store.run(&id).await.expect("run").expect("row");
        if r.status != "running" {
            break r;
        }
        assert!(Instant::now() < until, "the run did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(row.status, "aborted", "{row:?}");
    let reason = row.reason.unwrap_or_default();
    assert!(
        reason.contains("aborted through the API (asked by "),
        "{reason}"
    );
    // An unknown run is still a 404 on either daemon; a finished one too.
    let (s, _) = call(
        "POST",
        &format!("{base_b}/api/v1/runs/{id}/abort"),
        Some(&operator),
        None,
    );
    assert_eq!(s, 404);
    for mut d in [a, b] {
        common::nix_kill(d.child.id(), "TERM");
        let _ = d.child.wait();
    }
}
