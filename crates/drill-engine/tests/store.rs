//! The history store and the reconciler, run twice: on a SQLite file and on a real
//! PostgreSQL (127.0.0.1:5433, tests/services/postgres.sh; a fresh database per test).
//! A missing PostgreSQL fails the test (unless DRILL_TEST_SKIP_MISSING=1).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use drill_engine::recover::{reconcile, settle_with_retry};
use drill_engine::store::{FaultRow, FaultState, FenceError, Lease, RunRow, Store, now_ms};
use drill_engine::{owner::Owner, quiet};
use serde_json::json;

/// A fresh PostgreSQL database for one test, or None when PostgreSQL is not running here.
fn postgres_db(name: &str) -> Option<String> {
    drill_testkit::postgres_db(&format!("drill_store_{name}_{}", std::process::id()))
}

/// Both stores: a SQLite file and a PostgreSQL database.
async fn stores(name: &str) -> Vec<(String, Store, String)> {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let file = dir.join("history.db").display().to_string();
    let mut out = vec![(
        "sqlite".to_owned(),
        Store::open(&file).await.expect("sqlite store"),
        file,
    )];
    match postgres_db(name) {
        Some(url) => out.push((
            "postgres".to_owned(),
            Store::open(&url).await.expect("postgres store"),
            url,
        )),
        None => {
            drill_testkit::service("PostgreSQL on 127.0.0.1:5433", false);
        }
    }
    out
}

/// A run row with a lease of `lease_ms` (the store stamps its heartbeat with its own clock).
fn run_row(id: &str, owner: &str, lease_ms: i64) -> RunRow {
    RunRow {
        id: id.into(),
        playbook: "pb".into(),
        file: "pb.yaml".into(),
        status: "running".into(),
        reason: None,
        owner: owner.into(),
        heartbeat_ms: 0,
        lease_ms,
        started_ms: now_ms(),
        finished_ms: None,
        time_scale: 1.0,
        epoch: 0,
        age_ms: 0,
    }
}

const LEASE: i64 = 15_000;

/// Waits until a lease of `ms` has certainly run out.
async fn past(ms: i64) {
    tokio::time::sleep(Duration::from_millis(ms as u64 + 300)).await;
}

/// Another host's owner (its process cannot be looked up from here).
fn remote(n: u32) -> String {
    Owner {
        host: "elsewhere.invalid".into(),
        pid: n,
        start: 1,
        id: format!("{n:016x}"),
    }
    .to_string()
}

/// A dead process's owner string: a pid that has exited.
fn dead_owner() -> String {
    let mut c = Command::new("true").spawn().expect("spawn");
    let pid = c.id();
    c.wait().expect("wait");
    Owner { pid, ..Owner::me() }.to_string()
}

/// An exec fault's record that creates `flag` and whose revert removes it.
async fn flag_record(flag: &PathBuf, revert: &[&str]) -> drill_faults::RevertRecord {
    let f: drill_spec::fault::ValidFault = serde_json::from_value(json!({
        "name": "flag", "action": "exec",
        "exec": {"inject": {"command": ["touch", flag]}, "revert": {"command": revert}}
    }))
    .expect("fault");
    let allow: drill_spec::model::Allow =
        serde_json::from_value(json!({"exec": ["touch", "rm", "false"]})).expect("allow");
    drill_faults::prepare(&f, &allow, Duration::from_secs(1))
        .await
        .expect("prepare")
        .record
}

fn fault_row(run: &str, seq: i64, record: &drill_faults::RevertRecord) -> FaultRow {
    FaultRow {
        id: format!("{run}/{seq}"),
        run_id: run.into(),
        seq,
        drill: "d".into(),
        fault: format!("f{seq}"),
        backend: "exec".into(),
        record: serde_json::to_string(record).expect("json"),
        changes: vec!["run touch".into()],
        manual_restore: record.manual_restore(),
        state: FaultState::Intent,
        attempts: 0,
        error: None,
        intent_ms: now_ms(),
        applied_ms: None,
        reverted_ms: None,
    }
}

#[tokio::test]
async fn the_ledger_moves_through_its_states_and_outlives_the_connection() {
    for (kind, store, url) in stores("ledger").await {
        let run = format!("{kind}-ledger");
        let lease = store
            .create_run(&run_row(&run, &Owner::me().to_string(), LEASE))
            .await
            .expect("create");
        let flag = std::env::temp_dir().join(format!("drill-ledger-{kind}-{}", std::process::id()));
        let rec = flag_record(&flag, &["rm", "-f", &flag.display().to_string()]).await;
        store
            .fault_intent(&lease, &fault_row(&run, 0, &rec))
            .await
            .expect("intent");
        store
            .fault_intent(&lease, &fault_row(&run, 1, &rec))
            .await
            .expect("intent");
        store
            .fault_state(&lease, &format!("{run}/0"), FaultState::Applied, None)
            .await
            .expect("applied");
        for (state, error) in [
            (FaultState::RevertFailed, Some("boom")),
            (FaultState::Reverted, None),
        ] {
            assert!(
                store
                    .revert_attempt(&lease, &format!("{run}/1"))
                    .await
                    .expect("attempt")
            );
            store
                .fault_state(&lease, &format!("{run}/1"), state, error)
                .await
                .expect("state");
        }
        assert!(
            !store
                .revert_attempt(&lease, &format!("{run}/1"))
                .await
                .expect("attempt"),
            "{kind}: a settled fault is not attempted again"
        );
        drop(store);

        let store = Store::open(&url).await.expect("reopen");
        let rows = store.faults(&run).await.expect("faults");
        assert_eq!(rows.len(), 2, "{kind}");
        assert_eq!(rows[0].state, FaultState::Applied, "{kind}");
        assert!(rows[0].applied_ms.is_some(), "{kind}");
        assert_eq!(rows[1].state, FaultState::Reverted, "{kind}");
        assert_eq!(rows[1].attempts, 2, "{kind}: one failed attempt, one good");
        assert!(rows[1].reverted_ms.is_some(), "{kind}");
        let back: drill_faults::RevertRecord =
            serde_json::from_str(&store.record(&rows[0]).expect("it opens"))
                .expect("the record round-trips");
        assert!(
            rows[0].record.starts_with("sealed:v1:"),
            "{kind}: the record is stored sealed"
        );
        assert_eq!(back, rec, "{kind}");
        // A live run's faults are outstanding but not orphaned.
        assert_eq!(
            store.outstanding().await.expect("outstanding").len(),
            1,
            "{kind}"
        );
        assert!(
            store.recoverable().await.expect("recoverable").is_empty(),
            "{kind}"
        );

        store
            .save_reports(&lease, "{\"verdict\":\"PASS\"}", "# md", "<xml/>")
            .await
            .expect("save");
        store
            .finish_run(&lease, "passed", None)
            .await
            .expect("finish");
        let found = store
            .run(&run[..kind.len() + 2])
            .await
            .expect("run")
            .expect("by prefix");
        assert_eq!(found.status, "passed", "{kind}");
        assert!(found.finished_ms.is_some(), "{kind}");
        assert_eq!(
            store
                .report(&run, "junit")
                .await
                .expect("report")
                .as_deref(),
            Some("<xml/>")
        );
        assert_eq!(
            store
                .report(&run, "markdown")
                .await
                .expect("report")
                .as_deref(),
            Some("# md")
        );
        assert_eq!(store.runs(10).await.expect("runs")[0].id, run, "{kind}");
        assert!(store.run("nope").await.expect("run").is_none(), "{kind}");
    }
}

#[tokio::test]
async fn a_run_whose_owner_died_is_reverted_from_the_ledger_and_marked_aborted() {
    for (kind, store, _) in stores("orphan").await {
        let run = format!("{kind}-orphan");
        let lease = store
            .create_run(&run_row(&run, &dead_owner(), LEASE))
            .await
            .expect("create");
        let applied =
            std::env::temp_dir().join(format!("drill-orphan-a-{kind}-{}", std::process::id()));
        let intent =
            std::env::temp_dir().join(format!("drill-orphan-i-{kind}-{}", std::process::id()));
        let rec_a = flag_record(&applied, &["rm", "-f", &applied.display().to_string()]).await;
        let rec_i = flag_record(&intent, &["rm", "-f", &intent.display().to_string()]).await;
        store
            .fault_intent(&lease, &fault_row(&run, 0, &rec_a))
            .await
            .expect("intent");
        drill_faults::apply(&rec_a).await.expect("apply");
        store
            .fault_state(&lease, &format!("{run}/0"), FaultState::Applied, None)
            .await
            .expect("applied");
        // The second crashed between intent and apply... or just after apply: unknown.
        store
            .fault_intent(&lease, &fault_row(&run, 1, &rec_i))
            .await
            .expect("intent");
        drill_faults::apply(&rec_i).await.expect("apply");
        // A third never got past its intent: its target is in the recorded state.
        let never =
            std::env::temp_dir().join(format!("drill-orphan-n-{kind}-{}", std::process::id()));
        let rec_n = flag_record(&never, &["rm", "-f", &never.display().to_string()]).await;
        store
            .fault_intent(&lease, &fault_row(&run, 2, &rec_n))
            .await
            .expect("intent");
        assert!(
            store
                .lock(&run, &["exec:touch".into()])
                .await
                .expect("lock")
                .is_none()
        );
        assert!(applied.exists() && intent.exists());

        let rec = reconcile(&store, None, Duration::from_secs(5), &quiet())
            .await
            .expect("reconcile");
        assert!(
            !applied.exists() && !intent.exists(),
            "{kind}: both reverted"
        );
        assert_eq!(rec.reverted.len(), 3, "{kind}: {rec:?}");
        assert!(rec.failed.is_empty(), "{kind}");
        assert!(!never.exists(), "{kind}");
        let r = store.run(&run).await.expect("run").expect("run");
        assert_eq!(r.status, "aborted", "{kind}");
        let reason = r.reason.unwrap_or_default();
        assert!(
            reason.contains("exited without finishing the run"),
            "{kind}: {reason}"
        );
        assert!(
            reason.contains("`drill recover` reverted 3 faults"),
            "{kind}: {reason}"
        );
        let states: Vec<FaultState> = store
            .faults(&run)
            .await
            .expect("faults")
            .iter()
            .map(|f| f.state)
            .collect();
        // The exec revert `rm -f` cannot tell whether the flag was there: it says reverted.
        assert_eq!(
            states,
            [
                FaultState::Reverted,
                FaultState::Reverted,
                FaultState::Reverted
            ],
            "{kind}"
        );
        let after = store.run(&run).await.expect("run").expect("run");
        assert_eq!(after.epoch, 1, "{kind}: taken over once");
        assert_eq!(after.owner, Owner::me().to_string(), "{kind}");
        assert!(
            matches!(
                store.renew(&lease).await,
                Err(FenceError::Lost(l)) if l.epoch == 1 && l.status == "aborted"
            ),
            "{kind}: the dead owner's lease is fenced off"
        );
        assert!(
            store.holder("exec:touch").await.expect("holder").is_none(),
            "{kind}: lock released"
        );
        // A second pass has nothing to do.
        assert!(
            reconcile(&store, None, Duration::from_secs(5), &quiet())
                .await
                .expect("again")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_lease_is_judged_on_the_stores_clock_whatever_the_pid_says() {
    for (kind, store, _) in stores("lease").await {
        let flag = std::env::temp_dir().join(format!("drill-lease-{kind}-{}", std::process::id()));
        let rec = flag_record(&flag, &["rm", "-f", &flag.display().to_string()]).await;
        let me = Owner::me().to_string();
        // This process, renewing: left alone. This process, frozen past a short lease (its
        // pid is alive): taken over. Another host, fresh: left alone; stale: taken over.
        let live_me = run_row(&format!("{kind}-me"), &me, LEASE);
        let frozen_me = run_row(&format!("{kind}-frozen"), &me, 200);
        let fresh = run_row(&format!("{kind}-fresh"), &remote(1), LEASE);
        let stale = run_row(&format!("{kind}-stale"), &remote(2), 200);
        let mut leases = Vec::new();
        for (i, r) in [&live_me, &frozen_me, &fresh, &stale]
            .into_iter()
            .enumerate()
        {
            let l = store.create_run(r).await.expect("create");
            store
                .fault_intent(&l, &fault_row(&r.id, i as i64, &rec))
                .await
                .expect("intent");
            leases.push(l);
        }
        drill_faults::apply(&rec).await.expect("apply");
        past(200).await;
        let out = reconcile(&store, None, Duration::from_secs(5), &quiet())
            .await
            .expect("reconcile");
        let mut touched: Vec<&str> = out.runs.iter().map(|(r, _)| r.as_str()).collect();
        touched.sort_unstable();
        let mut want = vec![frozen_me.id.as_str(), stale.id.as_str()];
        want.sort_unstable();
        assert_eq!(touched, want, "{kind}: only the expired leases: {out:?}");
        for (_, reason) in &out.runs {
            assert!(
                reason.contains("stopped renewing its lease"),
                "{kind}: {reason}"
            );
        }
        assert!(
            out.runs
                .iter()
                .any(|(r, why)| r == &frozen_me.id && why.contains("is still there")),
            "{kind}: the frozen owner is named as such: {out:?}"
        );
        assert!(!flag.exists(), "{kind}");
        for r in [&live_me, &fresh] {
            let now = store.run(&r.id).await.expect("run").expect("run");
            assert_eq!((now.status.as_str(), now.epoch), ("running", 0), "{kind}");
        }
        // The frozen owner wakes up: every fenced write fails and names the new owner.
        let frozen = &leases[1];
        let lost = match store.renew(frozen).await {
            Err(FenceError::Lost(l)) => l,
            other => panic!("{kind}: the frozen lease still renews: {other:?}"),
        };
        assert_eq!(
            (lost.epoch, lost.owner.as_str()),
            (1, me.as_str()),
            "{kind}"
        );
        assert_eq!(lost.status, "aborted", "{kind}");
        assert!(
            matches!(
                store
                    .fault_intent(frozen, &fault_row(&frozen_me.id, 9, &rec))
                    .await,
                Err(FenceError::Lost(_))
            ),
            "{kind}"
        );
        assert!(
            matches!(
                store.finish_run(frozen, "passed", None).await,
                Err(FenceError::Lost(_))
            ),
            "{kind}"
        );
        assert!(
            matches!(
                store.record_call(frozen, "action", "x").await,
                Err(FenceError::Lost(_))
            ),
            "{kind}"
        );
        let after = store.run(&frozen_me.id).await.expect("run").expect("run");
        assert_eq!(
            after.status, "aborted",
            "{kind}: its status is never overwritten"
        );
        assert_eq!(
            store.faults(&frozen_me.id).await.expect("faults").len(),
            1,
            "{kind}: no intent was written"
        );
        assert!(store.calls(&frozen_me.id).await.expect("calls").is_empty());
        // The live run's lease renews; its fenced writes go through.
        store.renew(&leases[0]).await.expect("renew");
        store
            .record_call(&leases[0], "action", "ok")
            .await
            .expect("call");
        assert_eq!(store.calls(&live_me.id).await.expect("calls").len(), 1);
    }
}

#[tokio::test]
async fn a_run_is_claimed_once_and_only_when_its_lease_expired() {
    for (kind, store, _) in stores("claim").await {
        let id = format!("{kind}-claim");
        let lease = store
            .create_run(&run_row(&id, &remote(3), 300))
            .await
            .expect("create");
        let row = store.run(&id).await.expect("run").expect("run");
        assert!(
            store
                .claim(&row, "a", false)
                .await
                .expect("claim")
                .is_none(),
            "{kind}: not before the lease ran out"
        );
        past(300).await;
        let row = store.run(&id).await.expect("run").expect("run");
        assert!(row.age_ms > row.lease_ms, "{kind}: {row:?}");
        let a = store.claim(&row, "a", false).await.expect("claim");
        assert_eq!(
            a,
            Some(Lease {
                run_id: id.clone(),
                owner: "a".into(),
                epoch: 1,
                ttl_ms: 300
            }),
            "{kind}"
        );
        // A second claimer read the same row: too late.
        assert!(
            store.claim(&row, "b", true).await.expect("claim").is_none(),
            "{kind}: claimed once"
        );
        assert!(matches!(store.renew(&lease).await, Err(FenceError::Lost(l)) if l.owner == "a"));
    }
}

#[tokio::test]
async fn a_held_target_refuses_a_second_run_until_its_holder_is_done() {
    for (kind, store, _) in stores("locks").await {
        let a = format!("{kind}-a");
        let b = format!("{kind}-b");
        let lease_a = store
            .create_run(&run_row(&a, &Owner::me().to_string(), LEASE))
            .await
            .expect("a");
        store
            .create_run(&run_row(&b, &Owner::me().to_string(), LEASE))
            .await
            .expect("b");
        let t = |s: &str| s.to_owned();
        assert!(
            store
                .lock(&a, &[t("docker:x"), t("redis:r")])
                .await
                .expect("lock")
                .is_none()
        );
        let held = store
            .lock(&b, &[t("sql:s"), t("redis:r")])
            .await
            .expect("lock")
            .expect("refused");
        assert_eq!(held.target, "redis:r", "{kind}");
        assert_eq!(held.run.id, a, "{kind}");
        // The refused run keeps nothing.
        assert!(
            store.holder("sql:s").await.expect("holder").is_none(),
            "{kind}"
        );
        // A finished holder with something still changed keeps its lock…
        let flag = std::env::temp_dir().join(format!("drill-locks-{kind}"));
        let rec = flag_record(&flag, &["false"]).await;
        store
            .fault_intent(&lease_a, &fault_row(&a, 0, &rec))
            .await
            .expect("intent");
        store
            .finish_run(&lease_a, "revert_failed", Some("x"))
            .await
            .expect("finish");
        assert!(
            store
                .lock(&b, &[t("redis:r")])
                .await
                .expect("lock")
                .is_some(),
            "{kind}"
        );
        // …and once that is reverted, its locks are stale and taken over.
        store
            .fault_state(&lease_a, &format!("{a}/0"), FaultState::Reverted, None)
            .await
            .expect("reverted");
        assert!(
            store
                .lock(&b, &[t("redis:r")])
                .await
                .expect("lock")
                .is_none(),
            "{kind}"
        );
        assert_eq!(
            store.holder("redis:r").await.expect("holder").as_deref(),
            Some(b.as_str())
        );
    }
}

#[tokio::test]
async fn a_revert_that_keeps_failing_is_recorded_with_its_attempts_and_error() {
    for (kind, store, _) in stores("failing").await {
        let run = format!("{kind}-failing");
        let lease = store
            .create_run(&run_row(&run, &Owner::me().to_string(), LEASE))
            .await
            .expect("run");
        let flag = std::env::temp_dir().join(format!("drill-failing-{kind}"));
        let rec = flag_record(&flag, &["false"]).await;
        store
            .fault_intent(&lease, &fault_row(&run, 0, &rec))
            .await
            .expect("intent");
        let started = std::time::Instant::now();
        let err = settle_with_retry(
            &store,
            &lease,
            &format!("{run}/0"),
            "d/f0",
            &rec,
            (FaultState::Applied, &[]),
            Duration::from_secs(1),
            &quiet(),
        )
        .await
        .expect_err("keeps failing");
        let err = drill_engine::chain(&err);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{kind}: bounded"
        );
        assert!(err.contains("false exited with 1"), "{kind}: {err}");
        let row = &store.faults(&run).await.expect("faults")[0];
        assert_eq!(row.state, FaultState::RevertFailed, "{kind}");
        assert!(row.attempts >= 2, "{kind}: {} attempts", row.attempts);
        assert_eq!(row.error.as_deref(), Some(err.as_str()), "{kind}");
        // The command as it runs: `false` resolved to its file.
        assert!(
            row.manual_restore.ends_with("/false"),
            "{kind}: {}",
            row.manual_restore
        );
    }
}
