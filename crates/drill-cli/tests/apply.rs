//! `drill apply` end to end, as a separate process, against real systems: traffic to a
//! loopback HTTP server (drill-fixture), faults on Docker containers made from the local
//! drill-test-busybox image, Redis on 127.0.0.1:6379, a PostgreSQL streaming replica on
//! 127.0.0.1:5434 (tests/services/). Crash safety is tested with `kill -9` at each point of a
//! fault's life, then `drill recover` or the next `drill apply`.
//! A missing service fails the test (unless DRILL_TEST_SKIP_MISSING=1).

mod common;

use std::time::{Duration, Instant};

use common::{Running, Work, fixture, in_recovery, last_report, nix_kill, replica_ready};
use drill_engine::store::FaultState;

use drill_testkit::{
    cleanup, container_state as state, docker_image_ready as docker_ready, redis, redis_ready,
    service, sleepers, stdout,
};

/// Removes containers when dropped, so a failing test leaves no worker popping the queue
/// another test measures.
struct Removed(Vec<String>);

impl Drop for Removed {
    fn drop(&mut self) {
        cleanup(&self.0);
    }
}

/// Queue workers: each pops up to 500 jobs from the Redis list every 100 ms (RESP over
/// busybox nc, on the host's network to reach 127.0.0.1:6379), and adds how many it popped
/// to `drill:e2e:done`: the target's own count of the jobs worked.
fn workers(prefix: &str, n: usize) -> Vec<String> {
    let script = "trap 'exit 0' TERM; while true; do n=$(printf 'LPOP queues:notifications 500\\r\\n' | nc -w 1 127.0.0.1 6379 | head -n 1 | tr -d '*\\r'); if [ \"${n:-0}\" -gt 0 ] 2>/dev/null; then printf 'INCRBY drill:e2e:done %s\\r\\n' \"$n\" | nc -w 1 127.0.0.1 6379 >/dev/null; fi; sleep 0.1; done";
    drill_testkit::containers(prefix, n, &["/bin/sh", "-c", script], true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_seed_drills_pass_end_to_end_against_real_services() {
    if !service("docker image drill-test-busybox", docker_ready())
        || !service("redis on 127.0.0.1:6379", redis_ready())
        || !service("postgres replica on 127.0.0.1:5434", replica_ready())
    {
        return;
    }
    let server = fixture().await;
    let names = workers("drill-e2e-workers", 2);
    let _removed = Removed(names.clone());
    redis(&["DEL", "queues:notifications", "drill:e2e:done"]);
    // The cache the purge flushes lives in database 1 (FLUSHDB there), so the queue's
    // database keeps the evidence of the drain.
    redis(&["-n", "1", "SET", "drill:e2e:cached", "1"]);
    let w = Work::new();
    let pb = w.file(
        "seed.yaml",
        &SEED
            .replace("BASE", &server.url(""))
            .replace("LABEL", "drill.test=drill-e2e-workers"),
    );
    let (code, out, err) = Running::spawn(w.apply_args(&pb, &["--time-scale", "0.05"]))
        .finish(Duration::from_secs(120));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains(": PASS"), "{out}");
    for n in &names {
        assert_eq!(state(n), "running", "the workers are back");
    }
    assert_eq!(
        redis(&["GET", "drill:e2e:done"]),
        "5000",
        "the workers worked every job of the backlog (none was flushed)"
    );
    assert_eq!(
        redis(&["LLEN", "queues:notifications"]),
        "0",
        "the backlog drained"
    );
    assert_eq!(
        redis(&["-n", "1", "EXISTS", "drill:e2e:cached"]),
        "0",
        "the cache purge flushed the cache's database"
    );
    assert_eq!(in_recovery(), "f", "the replica was promoted for real");

    let r = last_report(&w).await;
    assert_eq!(r["verdict"], "PASS");
    let drills = r["drills"].as_array().expect("drills");
    assert_eq!(drills.len(), 3);
    for d in drills {
        assert_eq!(d["status"], "completed", "{d}");
        for p in ["baseline", "fault", "recovery"] {
            assert!(
                d["phases"][p]["requests"].as_u64().unwrap_or(0) > 0,
                "{p} of {d}"
            );
        }
        for c in d["checks"].as_array().expect("checks") {
            assert_eq!(c["passed"], true, "{c}");
            assert!(!c["measured"].as_str().unwrap_or("").is_empty());
        }
    }
    for d in drills {
        let names: Vec<&str> = d["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            names.last(),
            Some(&"slo.phases.fault"),
            "the playbook's phase SLO is checked in every drill"
        );
    }
    let backlog = &drills[0]["checks"][1];
    assert_eq!(backlog["name"], "backlog-drains");
    assert!(
        backlog["recovery_s"].as_f64().is_some(),
        "the drain time is measured"
    );
    let states: Vec<&str> = r["faults"]
        .as_array()
        .expect("faults")
        .iter()
        .map(|f| f["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["reverted", "permanent", "permanent"]);
    assert!(
        r["k6_summary"]["metrics"]["http_reqs"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    // The same run, from the store, as JUnit and Markdown.
    let id = r["run"].as_str().expect("id");
    let junit = w.drill(&["report", id, "--format", "junit"]);
    let junit = stdout(&junit);
    assert!(
        junit.contains("<testcase classname=\"seed-local.queue-outage\" name=\"backlog-drains\"/>"),
        "{junit}"
    );
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let md = stdout(&w.drill(&["report", &id[..12], "--format", "md"]));
    assert!(md.starts_with(&format!("# drill run {id} — PASS")), "{md}");
    let runs = stdout(&w.drill(&["runs"]));
    assert!(runs.contains(id) && runs.contains("passed"), "{runs}");
    cleanup(&names);
}

/// Where a run is killed.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// The intent is stored; the fault is not applied yet.
    Intent,
    /// The fault is applied; the ledger does not say so yet.
    Applied,
    /// Both faults applied and recorded; the hold is running.
    Hold,
    /// One revert went through; the ledger does not say so, the other fault is untouched.
    Reverting,
}

#[derive(Debug, Clone, Copy)]
enum Then {
    Recover,
    NextApply,
}

const CRASH: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: crash-NAME}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    docker: {containers: ["drill-crash-NAME-*"]}
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 2m}]
drills:
  - name: crash
    at: 1s
    drill:
      baseline: 1s
      hold: HOLD
      recovery: 1s
      faults:
        - {name: stop-a, action: stop, target: {docker: {name: drill-crash-NAME-0}}}
        - {name: pause-b, action: pause, target: {docker: {name: drill-crash-NAME-1}}}
"#;

/// A run that touches nothing the crashed run touched, for "the next apply".
const OTHER: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: other}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    exec: [touch, rm]
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 3s}]
drills:
  - name: noop
    at: 1s
    drill:
      baseline: 1s
      hold: 1s
      recovery: 1s
      faults:
        - name: flag
          action: exec
          exec: {inject: {command: [touch, other.flag]}, revert: {command: [rm, -f, other.flag]}}
"#;

async fn crash(point: Point, then: Then, db: Option<String>) {
    if !service("docker image drill-test-busybox", docker_ready()) {
        return;
    }
    let name = format!(
        "{point:?}-{then:?}-{}",
        if db.is_some() { "pg" } else { "sqlite" }
    )
    .to_lowercase();
    let names = sleepers(&format!("drill-crash-{name}"), 2);
    let server = fixture().await;
    let w = db.map_or_else(Work::new, Work::with_db);
    let hold = if matches!(point, Point::Reverting) {
        "1s"
    } else {
        "1m"
    };
    let pb = w.file(
        "crash.yaml",
        &CRASH
            .replace("NAME", &name)
            .replace("BASE", &server.url(""))
            .replace("HOLD", hold),
    );
    let mut c = w.apply_args(&pb, &[]);
    let marker = match point {
        Point::Intent => "drill: crash point intent",
        Point::Applied => "drill: crash point applied",
        Point::Reverting => "drill: crash point reverting",
        Point::Hold => "crash/pause-b: applied",
    };
    match point {
        Point::Intent => c.env("DRILL_CRASH_POINT", "intent"),
        Point::Applied => c.env("DRILL_CRASH_POINT", "applied"),
        Point::Reverting => c.env("DRILL_CRASH_POINT", "reverting"),
        Point::Hold => &mut c,
    };
    let mut r = Running::spawn(c);
    r.wait_for(marker, Duration::from_secs(30));
    r.kill9();
    let changed = match point {
        Point::Intent => (state(&names[0]) == "running", true),
        Point::Applied => (state(&names[0]) == "exited", true),
        Point::Hold => (state(&names[0]) == "exited", state(&names[1]) == "paused"),
        // pause-b is reverted first (newest first); stop-a is still in effect.
        Point::Reverting => (state(&names[0]) == "exited", state(&names[1]) == "running"),
    };
    assert_eq!(changed, (true, true), "{name}: the state at the crash");
    let store = w.store().await;
    let crashed = store.runs(1).await.expect("runs").remove(0);
    assert_eq!(
        crashed.status, "running",
        "{name}: the killed run still says running"
    );
    assert!(
        store
            .faults(&crashed.id)
            .await
            .expect("ledger")
            .iter()
            .any(|f| f.state.outstanding()),
        "{name}: the ledger holds what to revert"
    );

    let t0 = Instant::now();
    let restored = || state(&names[0]) == "running" && state(&names[1]) == "running";
    let took = match then {
        Then::Recover => {
            let out = w.drill(&["recover"]);
            let took = t0.elapsed();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let said = stdout(&out);
            assert!(said.contains(&format!("run {}", crashed.id)), "{said}");
            if matches!(point, Point::Intent) {
                // The container was never stopped: recovery says so, and claims no revert.
                assert!(
                    said.contains("crash/stop-a: intent only, nothing changed"),
                    "{said}"
                );
                assert!(!said.contains("reverted"), "{said}");
            }
            took
        }
        Then::NextApply => {
            let other = w.file("other.yaml", &OTHER.replace("BASE", &server.url("")));
            let next = Running::spawn(w.apply_args(&other, &[]));
            let mut took = None;
            while t0.elapsed() < Duration::from_secs(30) {
                if restored() {
                    took = Some(t0.elapsed());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let (code, out, err) = next.finish(Duration::from_secs(60));
            assert_eq!(code, Some(0), "{name}: {out}\n{err}");
            assert!(
                err.contains(&format!("recover: run {}", crashed.id)),
                "{err}"
            );
            took.expect("restored by the next apply")
        }
    };
    assert!(restored(), "{name}: both containers run again");
    let leftovers = store.outstanding().await.expect("outstanding").len();
    assert_eq!(leftovers, 0, "{name}: nothing outstanding in the ledger");
    let after = store.run(&crashed.id).await.expect("run").expect("run");
    assert_eq!(after.status, "aborted", "{name}");
    let ledger = store.faults(&crashed.id).await.expect("ledger");
    if matches!(point, Point::Intent) {
        assert_eq!(
            ledger[0].state,
            FaultState::NotApplied,
            "{name}: the target was read, not assumed changed"
        );
        assert!(
            after
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("1 fault intent only (nothing changed)"),
            "{name}: {:?}",
            after.reason
        );
    }
    assert!(
        after
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("exited without finishing the run"),
        "{name}: {:?}",
        after.reason
    );
    eprintln!(
        "crash-safety {name}: restored {:.0} ms after the restart, {leftovers} leftovers",
        took.as_secs_f64() * 1000.0
    );
    cleanup(&names);
}

/// The same crash, with the ledger in PostgreSQL: a fresh database on 127.0.0.1:5433 per test.
async fn crash_pg(point: Point, then: Then) {
    let db = format!(
        "drill_crash_{}_{}",
        format!("{point:?}_{then:?}").to_lowercase(),
        std::process::id()
    );
    let url = drill_testkit::postgres_db(&db);
    if !service("postgres on 127.0.0.1:5433", url.is_some()) {
        return;
    }
    crash(point, then, url).await;
    drill_testkit::drop_postgres_db(&db);
}

/// One test per crash point and restart, with the ledger in SQLite and in PostgreSQL.
macro_rules! crash_tests {
    ($($sqlite:ident, $pg:ident: $point:ident, $then:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            crash(Point::$point, Then::$then, None).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $pg() {
            crash_pg(Point::$point, Then::$then).await;
        }
    )*};
}

crash_tests! {
    kill_9_after_the_intent_is_written_then_recover,
    kill_9_after_the_intent_is_written_with_a_postgres_ledger_then_recover: Intent, Recover;
    kill_9_after_the_fault_is_applied_then_recover,
    kill_9_after_the_fault_is_applied_with_a_postgres_ledger_then_recover: Applied, Recover;
    kill_9_during_the_hold_then_recover,
    kill_9_during_the_hold_with_a_postgres_ledger_then_recover: Hold, Recover;
    kill_9_during_the_revert_then_recover,
    kill_9_during_the_revert_with_a_postgres_ledger_then_recover: Reverting, Recover;
    kill_9_after_the_intent_is_written_then_the_next_apply,
    kill_9_after_the_intent_is_written_with_a_postgres_ledger_then_the_next_apply: Intent, NextApply;
    kill_9_after_the_fault_is_applied_then_the_next_apply,
    kill_9_after_the_fault_is_applied_with_a_postgres_ledger_then_the_next_apply: Applied, NextApply;
    kill_9_during_the_hold_then_the_next_apply,
    kill_9_during_the_hold_with_a_postgres_ledger_then_the_next_apply: Hold, NextApply;
    kill_9_during_the_revert_then_the_next_apply,
    kill_9_during_the_revert_with_a_postgres_ledger_then_the_next_apply: Reverting, NextApply;
}

const AFTER: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: after}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    docker: {containers: ["drill-after-*"]}
    redis: ["redis://127.0.0.1:6379"]
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 10s}]
drills:
  - name: stuck
    at: 1s
    drill:
      baseline: 1s
      hold: 1s
      recovery: 2s
      faults:
        - {name: pause-0, action: pause, target: {docker: {name: drill-after-0}}}
      checks:
        - name: drains
          probe: {redis: {url: "redis://127.0.0.1:6379", llen: "drill:e2e:stuck"}}
          until: value < 1
          within: 2s
  - name: next
    after: AFTER
    drill:
      baseline: 1s
      hold: 1s
      recovery: 1s
      faults:
        - {name: stop-1, action: stop, target: {docker: {name: drill-after-1}}}
"#;

/// When the container last started: a stop and start change it.
fn started_at(name: &str) -> String {
    drill_testkit::docker(&["inspect", "-f", "{{.State.StartedAt}}", name])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_after_one_that_did_not_recover_is_skipped_and_its_fault_never_applied() {
    if !service("docker image drill-test-busybox", docker_ready())
        || !service("redis on 127.0.0.1:6379", redis_ready())
    {
        return;
    }
    let names = sleepers("drill-after", 2);
    let server = fixture().await;
    for after in ["recovered", "previous"] {
        // A queue nobody drains: the first drill's recovery check fails.
        redis(&["DEL", "drill:e2e:stuck"]);
        redis(&["RPUSH", "drill:e2e:stuck", "job"]);
        let before = started_at(&names[1]);
        let w = Work::new();
        let pb = w.file(
            "after.yaml",
            &AFTER
                .replace("BASE", &server.url(""))
                .replace("AFTER", after),
        );
        let (code, out, err) =
            Running::spawn(w.apply_args(&pb, &[])).finish(Duration::from_secs(60));
        assert_eq!(
            code,
            Some(1),
            "{after}: the drain check fails\n{out}\n{err}"
        );
        let r = last_report(&w).await;
        let ledger: Vec<&str> = r["faults"]
            .as_array()
            .expect("faults")
            .iter()
            .map(|f| f["fault"].as_str().unwrap_or(""))
            .collect();
        let next = &r["drills"][1];
        if after == "recovered" {
            assert_eq!(next["status"], "skipped", "{next}");
            let why = next["skipped"].as_str().unwrap_or("");
            assert!(why.contains("recovery check drains failed"), "{why}");
            assert!(err.contains("next: skipped"), "{err}");
            assert_eq!(
                ledger,
                ["pause-0"],
                "the skipped drill's fault was never applied"
            );
            assert_eq!(
                started_at(&names[1]),
                before,
                "drill-after-1 was never stopped"
            );
            assert!(
                r["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("1 drill(s) skipped"),
                "{}",
                r["reason"]
            );
        } else {
            assert_eq!(
                next["status"], "completed",
                "`after: previous` runs it: {next}"
            );
            assert_eq!(ledger, ["pause-0", "stop-1"]);
            assert_ne!(
                started_at(&names[1]),
                before,
                "drill-after-1 was stopped and started"
            );
        }
        assert_eq!(state(&names[0]), "running");
        assert_eq!(state(&names[1]), "running");
    }
    redis(&["DEL", "drill:e2e:stuck"]);
    cleanup(&names);
}

const GUARDED: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: guarded}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    docker: {containers: ["drill-guard-*"]}
    redis: ["redis://127.0.0.1:6379"]
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 2m}]
guards:
  - name: breach
    probe: {redis: {url: "redis://127.0.0.1:6379", get: "drill:e2e:breach"}}
    when: value > 0
drills:
  - name: outage
    at: 1s
    drill:
      baseline: 1s
      hold: 1m
      recovery: 1s
      faults:
        - {name: stop, action: stop, target: {docker: {name: drill-guard-0}}}
        - {name: pause, action: pause, target: {docker: {name: drill-guard-1}}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_breach_aborts_the_run_and_reverts_every_fault() {
    if !service("docker image drill-test-busybox", docker_ready())
        || !service("redis on 127.0.0.1:6379", redis_ready())
    {
        return;
    }
    let names = sleepers("drill-guard", 2);
    redis(&["SET", "drill:e2e:breach", "0"]);
    let server = fixture().await;
    let w = Work::new();
    let pb = w.file("guarded.yaml", &GUARDED.replace("BASE", &server.url("")));
    let mut r = Running::spawn(w.apply_args(&pb, &[]));
    r.wait_for("outage/pause: applied", Duration::from_secs(30));
    // The faults really happened, read from the engine, not from drill's words.
    assert_eq!(state(&names[0]), "exited", "stop did not stop {}", names[0]);
    assert_eq!(
        state(&names[1]),
        "paused",
        "pause did not pause {}",
        names[1]
    );
    let breach_ms = chrono::Utc::now().timestamp_millis();
    let breach = Instant::now();
    redis(&["SET", "drill:e2e:breach", "1"]);
    let mut restored = None;
    while breach.elapsed() < Duration::from_secs(10) {
        if state(&names[0]) == "running" && state(&names[1]) == "running" {
            restored = Some(breach.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, out, err) = r.finish(Duration::from_secs(30));
    assert_eq!(code, Some(3), "{out}\n{err}");
    let restored = restored.expect("restored");
    // A deadline, not a benchmark: the figure is printed below.
    assert!(
        restored <= Duration::from_secs(10),
        "containers back {restored:?} after the breach"
    );
    let rep = last_report(&w).await;
    assert_eq!(rep["verdict"], "ABORTED");
    assert!(
        rep["reason"]
            .as_str()
            .unwrap_or("")
            .contains("guard playbook/breach tripped"),
        "{rep}"
    );
    assert_eq!(rep["guards_tripped"][0]["name"], "playbook/breach");
    let store = w.store().await;
    let id = rep["run"].as_str().expect("id");
    let ledger = store.faults(id).await.expect("ledger");
    assert_eq!(ledger.len(), 2, "both faults are in the ledger: {ledger:?}");
    for f in ledger {
        assert_eq!(f.state, FaultState::Reverted);
        let after = f.reverted_ms.expect("reverted at") - breach_ms;
        assert!(
            after <= 10_000,
            "{} reverted {after} ms after the breach",
            f.fault
        );
    }
    eprintln!(
        "guard breach: containers running again {:.0} ms after the breach",
        restored.as_secs_f64() * 1000.0
    );
    redis(&["DEL", "drill:e2e:breach"]);
    cleanup(&names);
}

const FAILING: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: failing-revert}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    exec: [touch, "false"]
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 4s}]
drills:
  - name: stuck
    at: 1s
    drill:
      baseline: 1s
      hold: 1s
      recovery: 1s
      faults:
        - name: flag
          action: exec
          exec: {inject: {command: [touch, stuck.flag]}, revert: {command: ["false"]}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_that_keeps_failing_exits_4_and_says_what_is_still_changed() {
    let server = fixture().await;
    let w = Work::new();
    let pb = w.file("failing.yaml", &FAILING.replace("BASE", &server.url("")));
    let flag = w.dir.path().join("stuck.flag");
    assert!(!flag.exists(), "the flag is not there before the run");
    let (code, out, err) = Running::spawn(w.apply_args(&pb, &["--revert-timeout", "2s"]))
        .finish(Duration::from_secs(60));
    assert_eq!(code, Some(4), "{out}\n{err}");
    // The target itself is still changed: the fault's file is there, its revert failed.
    assert!(flag.exists(), "the exec fault really ran and stays applied");
    assert!(
        !out.contains("PASS") && !err.contains("PASS"),
        "{out}\n{err}"
    );
    assert!(out.contains("REVERT FAILED"), "{out}");
    assert!(err.contains("1 fault(s) are STILL CHANGED"), "{err}");
    // The command as it ran: `false` resolved to its file.
    let f = common::which("false");
    assert!(
        err.contains(&format!("stuck/flag: exec backend: {f} exited with 1")),
        "{err}"
    );
    assert!(err.contains(&format!("restore with: {f}")), "{err}");
    let rep = last_report(&w).await;
    assert_eq!(rep["status"], "revert_failed");
    assert_eq!(rep["still_changed"][0]["manual_restore"], f.as_str());
    let junit = stdout(&w.drill(&[
        "report",
        rep["run"].as_str().expect("id"),
        "--format",
        "junit",
    ]));
    assert!(junit.contains("name=\"everything reverted\">"), "{junit}");
    // `drill recover` keeps trying, and says the same.
    let again = w.drill(&["recover", "--revert-timeout", "1s"]);
    assert_eq!(again.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("STILL CHANGED"),
        "{again:?}"
    );
    assert!(flag.exists(), "recover says still changed, and it is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_resolves_and_reads_everything_and_changes_nothing() {
    if !service("docker image drill-test-busybox", docker_ready())
        || !service("redis on 127.0.0.1:6379", redis_ready())
        || !service("postgres replica on 127.0.0.1:5434", replica_ready())
    {
        return;
    }
    let server = fixture().await;
    let names = workers("drill-dry-workers", 2);
    let _removed = Removed(names.clone());
    redis(&["SET", "drill:e2e:dry", "kept"]);
    redis(&["DEL", "queues:notifications"]);
    let before = (
        names.iter().map(|n| state(n)).collect::<Vec<_>>(),
        redis(&["DBSIZE"]),
        in_recovery(),
    );
    assert_eq!(before.2, "t");
    let w = Work::new();
    let pb = w.file(
        "seed.yaml",
        &SEED
            .replace("BASE", &server.url(""))
            .replace("LABEL", "drill.test=drill-dry-workers"),
    );
    let out = w.apply_args(&pb, &["--dry-run"]).output().expect("drill");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("queue-outage/stop-workers: would stop drill-dry-workers-0"),
        "{text}"
    );
    assert!(
        text.contains("db-failover/promote-replica: would promote"),
        "{text}"
    );
    assert!(
        text.contains("cache-purge/flush-redis: would FLUSHDB on redis://127.0.0.1:6379/1"),
        "{text}"
    );
    assert!(text.contains("backlog-drains: reads 0"), "{text}");
    assert!(
        !text.contains("warning:"),
        "the cache lives in database 1, the queue in 0: nothing to warn about\n{text}"
    );
    // The same purge on the queue's database: preflight warns, on a line of its own.
    let shared = w.file(
        "shared.yaml",
        &std::fs::read_to_string(&pb).expect("seed").replace(
            "redis: redis://127.0.0.1:6379/1",
            "redis: redis://127.0.0.1:6379",
        ),
    );
    let out = w
        .apply_args(&shared, &["--dry-run"])
        .output()
        .expect("drill");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning is not an error\n{text}"
    );
    let warning = text
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("warning: cache-purge/flush-redis:")
        })
        .unwrap_or_else(|| panic!("a warning line:\n{text}"));
    assert!(
        warning.contains("also holds the queue queues:notifications")
            && warning.contains("0 pending now")
            && warning.contains("FLUSHDB erases"),
        "{warning}"
    );
    let after = (
        names.iter().map(|n| state(n)).collect::<Vec<_>>(),
        redis(&["DBSIZE"]),
        in_recovery(),
    );
    assert_eq!(
        before, after,
        "container states, keys and the replica's role are untouched"
    );
    assert_eq!(redis(&["GET", "drill:e2e:dry"]), "kept");
    assert_eq!(server.requests(), 0, "no traffic");
    assert_eq!(stdout(&w.drill(&["runs"])), "no runs yet");
    redis(&["DEL", "drill:e2e:dry"]);
    cleanup(&names);
}

const LOCKED: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: NAME}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    docker: {containers: ["drill-lock-*"]}
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 2m}]
drills:
  - name: outage
    at: 1s
    drill:
      baseline: 1s
      hold: 1m
      recovery: 1s
      faults:
        - {name: stop, action: stop, target: {docker: {name: drill-lock-0}}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_a_held_target_is_refused_and_sigint_reverts_and_exits_3() {
    if !service("docker image drill-test-busybox", docker_ready()) {
        return;
    }
    let names = sleepers("drill-lock", 1);
    let server = fixture().await;
    let w = Work::new();
    let first = w.file(
        "first.yaml",
        &LOCKED
            .replace("NAME", "first")
            .replace("BASE", &server.url("")),
    );
    let second = w.file(
        "second.yaml",
        &LOCKED
            .replace("NAME", "second")
            .replace("BASE", &server.url("")),
    );
    let mut r = Running::spawn(w.apply_args(&first, &[]));
    r.wait_for("outage/stop: applied", Duration::from_secs(30));
    let holder = w.store().await.runs(1).await.expect("runs").remove(0).id;

    let refused = w.apply_args(&second, &[]).output().expect("second");
    let text = format!(
        "{}{}",
        stdout(&refused),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(refused.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("is held by run {holder} (playbook first")),
        "{text}"
    );
    assert_eq!(
        state(&names[0]),
        "exited",
        "the refused run changed nothing"
    );

    nix_kill(r.child.id(), "INT");
    let (code, out, err) = r.finish(Duration::from_secs(30));
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(
        err.contains("SIGINT: stopping the traffic and reverting every fault"),
        "{err}"
    );
    assert_eq!(state(&names[0]), "running");
    let rep = last_report(&w).await;
    assert_eq!(rep["run"], holder.as_str());
    assert_eq!(rep["verdict"], "ABORTED");
    assert_eq!(rep["reason"], "interrupted by SIGINT");
    assert_eq!(rep["faults"][0]["state"], "reverted");
    // The lock went with the run: nothing holds the target any more.
    let dry = w
        .apply_args(&second, &["--dry-run"])
        .output()
        .expect("dry run");
    assert_eq!(dry.status.code(), Some(0));
    assert!(!stdout(&dry).contains("is held by run"), "{}", stdout(&dry));
    cleanup(&names);
}

const SEED: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: seed-local}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    docker: {labels: ["LABEL"]}
    redis: ["redis://127.0.0.1:6379"]
    sql: ["postgres://postgres@127.0.0.1:5434"]
traffic:
  requests:
    - {name: activity, path: /api/v1/communities/1/members/1/activity}
  profile:
    - {rate: 40/s, hold: 10m}
  errors: [5xx, 429, timeout, connect, reset]
  timeout: 2s
slo: {p95: 800ms, error_rate: 1%, phases: {fault: {p95: 1s}}}
guards:
  - name: queue-depth
    probe: {redis: {url: "redis://127.0.0.1:6379", llen: "queues:notifications"}}
    when: value > 10000
    for: 2m
drills:
  - uses: queue-outage
    at: 1m
    with:
      workers: {docker: {labels: ["LABEL"]}}
      redis: redis://127.0.0.1:6379
      jobs: 5000
      hold: 1m
      drain_within: 5m
  - uses: db-failover
    after: recovered
    with:
      replica: postgres://postgres@127.0.0.1:5434/postgres
  - uses: cache-purge
    after: recovered
    with:
      redis: redis://127.0.0.1:6379/1
      scope: db
"#;

const SLOW_STOP: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: slow-stop}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    docker: {containers: ["drill-slowstop-*"]}
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 12s}]
drills:
  - name: slow
    at: 1s
    drill:
      baseline: 1s
      hold: 2s
      recovery: 1s
      faults:
        - {name: stop, action: stop, target: {docker: {name: drill-slowstop-0}}}
"#;

/// A container whose main process ignores SIGTERM (`sleep` as PID 1) takes the engine's
/// whole stop grace — 3 s here, longer than the 2 s hold — before it is down. The hold counts
/// from when it was down: the Docker engine, polled from here, sees it down for the planned
/// 2 s, not for the moment a hold counted from the injection would have left (#30: "applied
/// for 1ms (planned 8s)", and a PASS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_stop_does_not_eat_the_hold() {
    if !service("docker image drill-test-busybox", docker_ready()) {
        return;
    }
    let name = "drill-slowstop-0";
    let _ = drill_testkit::docker(&["rm", "-f", name]);
    drill_testkit::docker(&[
        "run",
        "-d",
        "--stop-timeout",
        "3",
        "--name",
        name,
        "drill-test-busybox",
        "/bin/sleep",
        "3600",
    ]);
    let _removed = Removed(vec![name.to_owned()]);
    let server = fixture().await;
    let w = Work::new();
    let pb = w.file("slow.yaml", &SLOW_STOP.replace("BASE", &server.url("")));
    // The engine's view of the container, every 50 ms, until the run ends: the longest
    // stretch it was not running.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut down_since, mut longest) = (None::<Instant>, Duration::ZERO);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let running = drill_testkit::docker(&["inspect", "-f", "{{.State.Running}}", name]);
                match (running.trim() == "true", down_since) {
                    (false, None) => down_since = Some(Instant::now()),
                    (true, Some(t)) => {
                        longest = longest.max(t.elapsed());
                        down_since = None;
                    }
                    (false, Some(_)) | (true, None) => {}
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            longest
        })
    };
    let (code, out, err) = Running::spawn(w.apply_args(&pb, &[])).finish(Duration::from_secs(60));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let down = watcher.join().expect("the watcher");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        down >= Duration::from_millis(1800),
        "the container was down for {down:?}, the hold is 2 s\n{err}"
    );
    let line = err
        .lines()
        .find(|l| l.contains("slow: hold over"))
        .unwrap_or_else(|| panic!("no hold line: {err}"));
    assert!(
        line.contains("(planned 2.0s)") && line.contains("applying them took"),
        "the line says the stop took its time and the hold counted from then: {line}"
    );
    assert_eq!(state(name), "running", "started again by the revert");
}
