//! Distributed traffic (`traffic.distributed`, run_on: local): real shard processes of this
//! binary against the loopback fixture, their reports added up in the history store
//! (PostgreSQL and SQLite), one verdict; a guard that trips on the merged data stops every shard; a shard that dies is an
//! error of the run, not a silent gap.

mod common;

use std::time::{Duration, Instant};

use common::{Running, Work};
use drill_fixture::{Behaviour, Server};

const SHARDED: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: sharded}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    exec: ["true"]
traffic:
  requests: [{name: home, path: /}]
  profile:
    - {rate: 100/s}
    - {ramp_to: RATE, over: 2s}
    - {rate: RATE, hold: HOLD}
  distributed: {shards: SHARDS}
slo:
  p95: 500ms
  error_rate: 1%
guards:
  - name: error-rate
    when: error_rate > 20%
    for: 1s
drills:
  - name: hook
    at: 3s
    drill:
      baseline: 2s
      hold: 2s
      recovery: 2s
      faults:
        - {name: noop, action: exec, exec: {inject: {command: ["true"]}, revert: {command: ["true"]}}}
      checks:
        - {name: calm, slo: {error_rate: 1%}}
"#;

fn playbook(w: &Work, server: &Server, rate: &str, hold: &str, shards: u32) -> std::path::PathBuf {
    w.file(
        "sharded.yaml",
        &SHARDED
            .replace("BASE", &server.url(""))
            .replace("RATE", rate)
            .replace("HOLD", hold)
            .replace("SHARDS", &shards.to_string()),
    )
}

/// Four shard processes split the schedule: the fixture counts every arrival of the one
/// schedule exactly once, the store's merged report counts the same, the thresholds and the
/// drill's check are evaluated once, on the merged data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_local_shards_send_the_one_schedule_and_are_judged_once() {
    // The store of staging, PostgreSQL (the other tests here use the SQLite default).
    let db = drill_testkit::postgres_db("drill_shards");
    if !drill_testkit::service("PostgreSQL on 127.0.0.1:5433", db.is_some()) {
        return;
    }
    let server = common::fixture().await;
    let w = Work::with_db(db.expect("checked"));
    let pb = playbook(&w, &server, "1000/s", "6s", 4);
    let run = Running::spawn(w.apply_args(&pb, &[]));
    let (code, out, err) = run.finish(Duration::from_secs(90));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(err.contains("shards: 4 of 4 processes started"), "{err}");
    assert!(err.contains("shards: 4 of 4 finished"), "{err}");

    let report = common::last_report(&w).await;
    let k6 = &report["k6_summary"];
    // A 2 s ramp from 100/s to 1000/s (1,100), then 6 s at 1000/s: 7,100 arrivals.
    let expected = 1_100 + 6_000;
    let reqs = k6["metrics"]["http_reqs"]["count"]
        .as_u64()
        .expect("http_reqs");
    assert_eq!(reqs, expected, "{k6}");
    assert_eq!(server.requests(), expected, "at the server");
    let thresholds = k6["metrics"]["http_req_duration"]["thresholds"]
        .as_object()
        .expect("thresholds");
    assert_eq!(
        thresholds.len(),
        1,
        "one p95 threshold, evaluated once: {k6}"
    );
    let drill = &report["drills"][0];
    assert_eq!(drill["status"], "completed", "{drill}");
    // The drill's phases are measured on whole seconds of the merged data.
    let fault = &drill["phases"]["fault"];
    assert!(fault["requests"].as_u64().unwrap_or(0) >= 1_000, "{fault}");
    // Nothing is left in the store's shard reports: the run's report holds it all.
    let store = w.store().await;
    let id = report["run"].as_str().expect("run id");
    assert!(
        store
            .shard_reports(id, 0)
            .await
            .expect("reports")
            .is_empty()
    );
}

/// A guard on the merged error rate trips, and every shard stops sending within a second of
/// the stop: measured by the shards (the run's log), and by the fixture, which sees no
/// request a second after the abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_on_merged_data_stops_every_shard_within_a_second() {
    let server = Server::start(Behaviour {
        delay: Duration::from_millis(2),
        fail_every: Some((2, 500)),
        ..Behaviour::default()
    })
    .await
    .expect("fixture");
    let w = Work::new();
    let pb = playbook(&w, &server, "400/s", "30s", 4);
    let mut run = Running::spawn(w.apply_args(&pb, &[]));
    run.wait_for("GUARD playbook/error-rate tripped", Duration::from_secs(60));
    let tripped = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let after_1s = server.requests();
    let (code, out, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(3), "aborted: {out}\n{err}");
    assert!(err.contains("guard playbook/error-rate tripped"), "{err}");
    assert_eq!(
        server.requests(),
        after_1s,
        "requests arrived more than 1 s after the abort ({:?} ago)",
        tripped.elapsed()
    );
    let line = err
        .lines()
        .find(|l| l.contains("stopped sending"))
        .unwrap_or_else(|| panic!("no stop measurement: {err}"));
    let worst: f64 = line
        .split('–')
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(line.contains("4 of 4"), "{line}");
    assert!(
        worst < 1.0,
        "the last shard stopped {worst}s after the abort: {line}"
    );
    // The schedule was 31 s long: the shards stopped well before its end.
    assert!(server.requests() < 400 * 20, "{}", server.requests());
}

/// A shard killed mid-run stops reporting: the run says which, and is aborted, not judged
/// on three quarters of its traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_dies_aborts_the_run_and_says_which() {
    let server = common::fixture().await;
    let w = Work::new();
    let pb = playbook(&w, &server, "200/s", "30s", 4);
    let mut run = Running::spawn(w.apply_args(&pb, &[]));
    run.wait_for("4 of 4 processes started", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(4)).await;
    // This run's shard 2/4 (other tests run shards too).
    let id = run
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.split(':').next()))
        .expect("the run's id")
        .to_owned();
    let pattern = format!("[-]-run {id} --shard 2/4");
    let pids = drill_testkit::stdout(&drill_testkit::run("pgrep", &["-f", &pattern]));
    let pid = pids
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no shard 2/4 process"));
    common::nix_kill(pid.trim().parse().expect("pid"), "KILL");
    let (code, out, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(err.contains("shard 2/4 stopped reporting"), "{err}");
}
