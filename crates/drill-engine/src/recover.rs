//! The reconciler: compares the ledger with what should be changed now and reverts the rest.
//!
//! Nothing should be changed on behalf of a run that has no live owner. At start-up, on every
//! heartbeat of a running run and on demand (`drill recover`), every fault in state `intent`,
//! `applied` or `revert_failed` whose run has no live owner is reverted from its stored
//! record (an `intent` may or may not have been applied; reverts are idempotent, so it is
//! reverted either way), and a run left `running` by a dead owner is marked aborted with the
//! reason.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use drill_faults::{RevertRecord, Reverted};
use serde::Serialize;

use crate::owner::Owner;
use crate::store::{FaultRow, FaultState, RunRow, Store, StoreError, now_ms};
use crate::{Log, chain};

/// What a reconciliation pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovered {
    /// Runs whose owner was gone, with the reason they were marked aborted.
    pub runs: Vec<(String, String)>,
    /// Faults restored now: `(run, drill/fault, what was done)`.
    pub reverted: Vec<(String, String, String)>,
    /// Faults that cannot be undone, recorded as such.
    pub permanent: Vec<(String, String, String)>,
    /// Faults still changed: `(run, drill/fault, error, how to restore by hand)`.
    pub failed: Vec<(String, String, String, String)>,
}

impl Recovered {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
            && self.reverted.is_empty()
            && self.permanent.is_empty()
            && self.failed.is_empty()
    }
}

/// Why a fault could not be reverted (yet).
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error("the stored revert record cannot be read")]
    Record(#[source] serde_json::Error),
    /// The backend's last error, after every attempt the budget allowed.
    #[error(transparent)]
    Fault(#[from] drill_faults::FaultError),
}

/// Why the owner of a run is considered gone.
fn gone_reason(run: &RunRow) -> String {
    match Owner::parse(&run.owner) {
        Some(o) if o.alive() == Some(false) => format!(
            "its owner (pid {} on {}) exited without finishing the run",
            o.pid, o.host
        ),
        _ => format!(
            "its owner ({}) stopped renewing its lease {:.0} s ago",
            run.owner,
            (now_ms() - run.heartbeat_ms) as f64 / 1000.0
        ),
    }
}

/// One reconciliation pass over every run but `except` (the caller's own run). Each revert is
/// retried with backoff for at most `budget`.
pub async fn reconcile(
    store: &Store,
    except: Option<&str>,
    budget: Duration,
    log: &Log,
) -> Result<Recovered, StoreError> {
    let mut out = Recovered::default();
    let orphaned: Vec<RunRow> = store
        .orphaned_runs()
        .await?
        .into_iter()
        .filter(|r| Some(r.id.as_str()) != except)
        .collect();
    let now = now_ms();
    let mut touched: Vec<RunRow> = Vec::new();
    for (f, run) in store.outstanding().await? {
        if Some(run.id.as_str()) == except || run.live(now) {
            continue;
        }
        let label = format!("{}/{}", f.drill, f.fault);
        log(&format!(
            "recover: run {} left {label} {}; reverting it",
            run.id,
            f.state.as_str()
        ));
        match revert_row(store, &f, budget, log).await {
            Ok(Reverted::Permanent(what)) => out.permanent.push((run.id.clone(), label, what)),
            Ok(Reverted::Restored(done)) => {
                out.reverted.push((run.id.clone(), label, done.join("; ")))
            }
            Ok(Reverted::AlreadyRestored) => out.reverted.push((
                run.id.clone(),
                label,
                "already in the recorded state".into(),
            )),
            Err(e) => out
                .failed
                .push((run.id.clone(), label, chain(&e), f.manual_restore.clone())),
        }
        if !touched.iter().any(|r| r.id == run.id) {
            touched.push(run);
        }
    }
    for run in orphaned {
        if !touched.iter().any(|r| r.id == run.id) {
            touched.push(run);
        }
    }
    for run in touched {
        let left = store
            .faults(&run.id)
            .await?
            .iter()
            .filter(|f| f.state.outstanding())
            .count();
        if run.status == "running" {
            let mut reason = format!("aborted: {}", gone_reason(&run));
            if left == 0 {
                reason.push_str("; `drill recover` restored what it changed");
            } else {
                reason.push_str(&format!("; {left} fault(s) are still changed"));
            }
            store
                .finish_run(
                    &run.id,
                    if left == 0 {
                        "aborted"
                    } else {
                        "revert_failed"
                    },
                    Some(&reason),
                )
                .await?;
            out.runs.push((run.id.clone(), reason));
        } else if left == 0 && run.status == "revert_failed" {
            let reason = format!(
                "{}; restored later by `drill recover`",
                run.reason.clone().unwrap_or_default()
            );
            store.finish_run(&run.id, "aborted", Some(&reason)).await?;
        }
        if left == 0 {
            store.unlock(&run.id).await?;
        }
    }
    Ok(out)
}

/// Reverts one ledger row from its stored record, retrying until `budget` is spent.
pub async fn revert_row(
    store: &Store,
    f: &FaultRow,
    budget: Duration,
    log: &Log,
) -> Result<Reverted, RevertError> {
    let record: RevertRecord = match serde_json::from_str(&f.record) {
        Ok(r) => r,
        Err(e) => {
            let e = RevertError::Record(e);
            let _ = store
                .fault_state(&f.id, FaultState::RevertFailed, Some(&chain(&e)))
                .await;
            return Err(e);
        }
    };
    revert_with_retry(
        store,
        &f.id,
        &format!("{}/{}", f.drill, f.fault),
        &record,
        budget,
        log,
    )
    .await
}

/// Reverts a fault, recording each attempt in the ledger, with exponential backoff (200 ms
/// doubling to 5 s, jittered) until it succeeds or `budget` is spent.
pub async fn revert_with_retry(
    store: &Store,
    id: &str,
    label: &str,
    record: &RevertRecord,
    budget: Duration,
    log: &Log,
) -> Result<Reverted, RevertError> {
    let deadline = Instant::now() + budget;
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match drill_faults::revert(record).await {
            Ok(r) => {
                crate::crash_point("reverting");
                let state = if matches!(r, Reverted::Permanent(_)) {
                    FaultState::Permanent
                } else {
                    FaultState::Reverted
                };
                // The revert happened; a failure to record it is retried by the next pass
                // (the revert is idempotent), so it is logged, not fatal.
                if let Err(e) = store.fault_state(id, state, None).await {
                    log(&format!(
                        "warning: {label} was reverted but the ledger could not say so: {}",
                        chain(&e)
                    ));
                }
                return Ok(r);
            }
            Err(e) => {
                let msg = chain(&e);
                let _ = store
                    .fault_state(id, FaultState::RevertFailed, Some(&msg))
                    .await;
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                if Instant::now() + delay > deadline {
                    log(&format!(
                        "error: reverting {label} failed {attempt} time(s), giving up for now: {msg}"
                    ));
                    return Err(e.into());
                }
                log(&format!(
                    "warning: reverting {label} failed (attempt {attempt}): {msg}; retrying in {:.1} s",
                    delay.as_secs_f64()
                ));
                tokio::time::sleep(delay).await;
            }
        }
    }
}
