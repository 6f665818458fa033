//! Fencing and truthful recovery, end to end, on real targets: a run frozen (SIGSTOP) past its
//! lease is taken over by `drill recover` in another process, and once resumed makes no
//! mutating call — while a second run holds the target; and a run killed in the middle of a
//! PostgreSQL failover (between the promotion and the route switch, or before the promotion)
//! is settled by what the replica really is, rolling the route switch forward.
//! A missing service fails the test (unless DRILL_TEST_SKIP_MISSING=1).

mod common;

use std::time::Duration;

use common::{Running, Work, fixture, in_recovery, nix_kill, replica_ready};
use drill_engine::store::FaultState;
use drill_testkit::{
    cleanup, container_state as state, docker_image_ready as docker_ready, service, sleepers,
    stdout,
};

const FENCE: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: fence}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    docker: {containers: ["drill-fence-*"]}
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 2m}]
drills:
  - name: outage
    at: 1s
    drill:
      baseline: 1s
      hold: HOLD
      recovery: 1s
      faults:
        - {name: stop, action: stop, target: {docker: {name: drill-fence-0}}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_frozen_past_its_lease_is_taken_over_and_once_resumed_changes_nothing() {
    if !service("docker image drill-test-busybox", docker_ready()) {
        return;
    }
    let names = sleepers("drill-fence", 1);
    let server = fixture().await;
    let w = Work::new();
    // A's hold ends while it is frozen: on waking up it is due to revert at once.
    let a_pb = w.file(
        "a.yaml",
        &FENCE.replace("BASE", &server.url("")).replace("HOLD", "3s"),
    );
    let b_pb = w.file(
        "b.yaml",
        &FENCE.replace("BASE", &server.url("")).replace("HOLD", "1m"),
    );

    let mut a = Running::spawn(w.apply_args(&a_pb, &["--lease", "1s"]));
    a.wait_for("outage/stop: applied", Duration::from_secs(30));
    assert_eq!(state(&names[0]), "exited", "A stopped the container");
    let a_pid = a.child.id();
    nix_kill(a_pid, "STOP");
    let store = w.store().await;
    let a_run = store.runs(1).await.expect("runs").remove(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store
        .run(&a_run.id)
        .await
        .expect("run")
        .is_none_or(|r| r.age_ms <= r.lease_ms)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "A's lease never expired on the store's clock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another process (another owner identity) takes A over: A's pid is alive, and frozen.
    let rec = w.drill(&["recover"]);
    let rec_out = stdout(&rec);
    assert_eq!(
        rec.status.code(),
        Some(0),
        "{rec_out}\n{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    assert!(rec_out.contains(&format!("run {}", a_run.id)), "{rec_out}");
    assert!(
        rec_out.contains("is still there but stopped renewing its lease"),
        "{rec_out}"
    );
    assert_eq!(
        state(&names[0]),
        "running",
        "recover restored the container"
    );
    let taken = store.run(&a_run.id).await.expect("run").expect("run");
    assert_eq!((taken.status.as_str(), taken.epoch), ("aborted", 1));
    assert_ne!(taken.owner, a_run.owner, "a different owner identity");

    // A second run takes the lock and stops the container for its own drill.
    let mut b = Running::spawn(w.apply_args(&b_pb, &[]));
    b.wait_for("outage/stop: applied", Duration::from_secs(30));
    assert_eq!(state(&names[0]), "exited", "B's outage");
    let b_run = store.runs(1).await.expect("runs").remove(0);
    assert_ne!(b_run.id, a_run.id);

    // A wakes up, past its hold: it must find out it lost the run, and touch nothing.
    nix_kill(a_pid, "CONT");
    let (code, out, err) = a.finish(Duration::from_secs(60));
    assert_eq!(code, Some(3), "A exits 3 (aborted)\n{out}\n{err}");
    assert!(err.contains("is no longer ours"), "{err}");
    assert!(err.contains(&taken.owner), "A names who took over: {err}");
    assert!(!err.contains("outage/stop: reverted"), "{err}");
    assert_eq!(
        state(&names[0]),
        "exited",
        "B's outage is undisturbed: A did not restart the container"
    );
    let after = store.run(&a_run.id).await.expect("run").expect("run");
    assert_eq!(after.status, "aborted", "A never overwrote its status");
    assert_eq!(after.reason, taken.reason, "nor its reason");
    assert_eq!(after.epoch, 1);
    let ledger = store.faults(&a_run.id).await.expect("ledger");
    assert_eq!(ledger.len(), 1, "A wrote no new intent: {ledger:?}");
    assert_eq!(ledger[0].state, FaultState::Reverted, "as recover left it");
    assert_eq!(ledger[0].attempts, 1, "A made no revert attempt");
    assert!(
        store
            .report(&a_run.id, "json")
            .await
            .expect("report")
            .is_none()
    );
    let b_now = store.run(&b_run.id).await.expect("run").expect("run");
    assert_eq!((b_now.status.as_str(), b_now.epoch), ("running", 0));
    assert_eq!(
        store.faults(&b_run.id).await.expect("ledger")[0].state,
        FaultState::Applied
    );

    // B ends normally on SIGINT and restores its own change.
    nix_kill(b.child.id(), "INT");
    let (code, out, err) = b.finish(Duration::from_secs(60));
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert_eq!(state(&names[0]), "running");
    cleanup(&names);
}

const FAILOVER: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: failover}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    sql: ["postgres://postgres@127.0.0.1:5434"]
    exec: [touch]
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 2m}]
drills:
  - name: failover
    at: 1s
    drill:
      baseline: 1s
      hold: 1m
      recovery: 1s
      faults:
        - name: promote
          action: promote
          target: {sql: "postgres://postgres@127.0.0.1:5434/postgres"}
          route_switch: {exec: {command: [touch, ROUTE]}}
          irreversible: true
"#;

/// Where the failover run is killed, and whether the route switch can run afterwards.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kill {
    /// The intent is stored; `pg_promote` was never called.
    BeforePromote,
    /// The replica is promoted; the route switch has not run: two writable primaries.
    AfterPromote,
    /// As `AfterPromote`, and the route switch fails during recovery too.
    AfterPromoteSwitchBroken,
}

async fn failover_crash(kill: Kill) {
    if !service("postgres replica on 127.0.0.1:5434", replica_ready()) {
        return;
    }
    assert_eq!(in_recovery(), "t", "the replica is a replica");
    let server = fixture().await;
    let w = Work::new();
    let route = w.dir.path().join("route-switched");
    let route_arg = if kill == Kill::AfterPromoteSwitchBroken {
        w.dir.path().join("no-such-dir/route-switched")
    } else {
        route.clone()
    };
    let pb = w.file(
        "failover.yaml",
        &FAILOVER
            .replace("BASE", &server.url(""))
            .replace("ROUTE", &route_arg.display().to_string()),
    );
    let mut c = w.apply_args(&pb, &[]);
    let point = if kill == Kill::BeforePromote {
        "intent"
    } else {
        "after-promote"
    };
    c.env("DRILL_CRASH_POINT", point);
    let mut r = Running::spawn(c);
    r.wait_for(
        &format!("drill: crash point {point}"),
        Duration::from_secs(60),
    );
    r.kill9();
    let promoted = kill != Kill::BeforePromote;
    assert_eq!(
        in_recovery(),
        if promoted { "f" } else { "t" },
        "the state at the crash"
    );
    assert!(!route.exists(), "the route switch has not run");

    let rec = w.drill(&["recover", "--revert-timeout", "2s"]);
    let (out, err) = (
        stdout(&rec),
        String::from_utf8_lossy(&rec.stderr).to_string(),
    );
    let store = w.store().await;
    let run = store.runs(1).await.expect("runs").remove(0);
    let fault = store.faults(&run.id).await.expect("ledger").remove(0);
    let reason = run.reason.clone().unwrap_or_default();
    match kill {
        Kill::BeforePromote => {
            assert_eq!(rec.status.code(), Some(0), "{out}\n{err}");
            assert!(out.contains("nothing changed"), "{out}");
            assert!(out.contains("never promoted"), "{out}");
            assert!(!out.contains("cannot be undone"), "{out}");
            assert_eq!(in_recovery(), "t", "recovery did not promote it either");
            assert!(!route.exists());
            assert_eq!(fault.state, FaultState::NotApplied);
            assert!(reason.contains("intent only (nothing changed)"), "{reason}");
            assert!(!reason.contains("reverted"), "{reason}");
        }
        Kill::AfterPromote => {
            assert_eq!(rec.status.code(), Some(0), "{out}\n{err}");
            assert!(
                route.exists(),
                "recovery ran the route switch (rolled forward)"
            );
            assert!(out.contains("rolled forward"), "{out}");
            assert!(out.contains("changed for good"), "{out}");
            assert_eq!(fault.state, FaultState::Permanent);
            assert!(reason.contains("changed for good"), "{reason}");
        }
        Kill::AfterPromoteSwitchBroken => {
            assert_eq!(rec.status.code(), Some(4), "{out}\n{err}");
            assert!(err.contains("INCONSISTENT"), "{err}");
            assert!(err.contains("old primary may still accept writes"), "{err}");
            assert!(
                err.contains(&format!("touch {}", route_arg.display())),
                "the command that finishes it: {err}"
            );
            assert_eq!(fault.state, FaultState::RevertFailed);
            assert_eq!(run.status, "revert_failed");
            assert!(reason.contains("STILL CHANGED"), "{reason}");
        }
    }
    assert!(
        store.outstanding().await.expect("outstanding").len()
            == usize::from(kill == Kill::AfterPromoteSwitchBroken)
    );
    // Put the replica back for the next test.
    assert!(replica_ready(), "the replica is rebuilt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_the_promotion_and_the_route_switch_rolls_the_route_switch_forward() {
    failover_crash(Kill::AfterPromote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_switch_that_cannot_be_rolled_forward_exits_4_naming_the_inconsistency() {
    failover_crash(Kill::AfterPromoteSwitchBroken).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_before_the_promotion_is_recovered_as_intent_only_nothing_changed() {
    failover_crash(Kill::BeforePromote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_stretched_by_a_freeze_is_reported_as_measured() {
    if !service("docker image drill-test-busybox", docker_ready()) {
        return;
    }
    let names = sleepers("drill-fence", 1);
    let server = fixture().await;
    let w = Work::new();
    let pb = w.file(
        "hold.yaml",
        &FENCE
            .replace("BASE", &server.url(""))
            .replace("HOLD", "2s")
            .replace("hold: 2m", "hold: 20s"),
    );
    // The lease outlasts the freeze: nobody takes over, the run goes on.
    let mut r = Running::spawn(w.apply_args(&pb, &["--lease", "1m"]));
    r.wait_for("outage/stop: applied", Duration::from_secs(30));
    let pid = r.child.id();
    nix_kill(pid, "STOP");
    std::thread::sleep(Duration::from_secs(4));
    nix_kill(pid, "CONT");
    let (code, out, err) = r.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{out}\n{err}");
    let line = err
        .lines()
        .find(|l| l.contains("outage: hold over"))
        .unwrap_or_else(|| panic!("no hold line: {err}"));
    let measured: f64 = line
        .split("applied for ")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no measured time in {line:?}"));
    assert!(
        measured >= 4.0,
        "the freeze is in the measured hold: {line}"
    );
    assert!(line.contains("(planned 2.0s)"), "{line}");
    let store = w.store().await;
    let run = store.runs(1).await.expect("runs").remove(0);
    let report: serde_json::Value = serde_json::from_str(
        &store
            .report(&run.id, "json")
            .await
            .expect("report")
            .expect("stored"),
    )
    .expect("json");
    let applied_for = report["faults"][0]["applied_for_s"].as_f64().unwrap_or(0.0);
    assert!(
        applied_for >= 4.0,
        "the report's window is measured: {applied_for}"
    );
    assert_eq!(state(&names[0]), "running");
    cleanup(&names);
}

/// Whether process `pid` is stopped (state `T` in /proc/PID/stat).
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_frozen_just_before_its_promotion_and_taken_over_never_promotes() {
    if !service("postgres replica on 127.0.0.1:5434", replica_ready()) {
        return;
    }
    assert_eq!(in_recovery(), "t", "the replica is a replica");
    let server = fixture().await;
    let w = Work::new();
    let route = w.dir.path().join("route-switched");
    let pb = w.file(
        "failover.yaml",
        &FAILOVER
            .replace("BASE", &server.url(""))
            .replace("ROUTE", &route.display().to_string()),
    );
    // Frozen with the promotion step recorded as begun and pg_promote not called yet: the
    // worst moment, as the fence it passed for that record is the last the store said, and
    // no fenced write stands between it and the call.
    let mut c = w.apply_args(&pb, &["--lease", "2s"]);
    c.env("DRILL_FREEZE_POINT", "before-promote");
    let mut r = Running::spawn(c);
    r.wait_for(
        "drill: freeze point before-promote",
        Duration::from_secs(60),
    );
    let pid = r.child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !stopped(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not freeze"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(2500));
    let rec = w.drill(&["recover", "--revert-timeout", "2s"]);
    let out = stdout(&rec);
    let rec_err = String::from_utf8_lossy(&rec.stderr);
    assert_eq!(rec.status.code(), Some(0), "{out}\n{rec_err}");
    assert!(out.contains("never promoted"), "{out}");
    // Wake it: it must find out before the call, not after.
    nix_kill(pid, "CONT");
    let (code, out, err) = r.finish(Duration::from_secs(60));
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(
        err.contains("not sure it still owns run") || err.contains("no longer ours"),
        "{err}"
    );
    assert_eq!(
        in_recovery(),
        "t",
        "the resumed run did not promote the replica behind recovery's back\n{err}"
    );
    assert!(!route.exists(), "nor switch the route");
    let store = w.store().await;
    let run = store.runs(1).await.expect("runs").remove(0);
    assert_eq!(run.status, "aborted");
    assert_eq!(
        store.faults(&run.id).await.expect("ledger")[0].state,
        FaultState::NotApplied,
        "the ledger stays true"
    );
    assert!(replica_ready());
}
