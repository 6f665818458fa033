//! The reconciler: settles what runs without a live owner left changed.
//!
//! Nothing should be changed on behalf of a run that has no live owner. At start-up, on every
//! heartbeat of a running run and on demand (`drill recover`), each run that needs it
//! ([`Store::recoverable`]: running with an expired lease or a dead owner, or finished with
//! faults outstanding) is first **claimed** — the epoch bumped, so the old owner's fenced
//! writes fail from then on, and two recoverers never work on one run. Then each of its
//! outstanding faults is **settled** from its stored record ([`drill_faults::settle`]): the
//! target is read first, and the ledger and the messages say what is true — "intent only,
//! nothing changed", "reverted", "changed for good" — and a composite whose irreversible step
//! happened is rolled forward (a promoted replica gets its route switch), or, if it cannot be,
//! stays `revert_failed` with what is inconsistent and the command that fixes it. Finally a run
//! left `running` is marked aborted with a reason that says exactly that.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use drill_faults::{RevertRecord, Reverted};
use serde::Serialize;

use crate::owner::Owner;
use crate::store::{FaultRow, FaultState, FenceError, Lease, LostLease, RunRow, Store, StoreError};
use crate::{Log, chain};

/// What a reconciliation pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovered {
    /// Runs taken over and ended, with the reason they were marked aborted.
    pub runs: Vec<(String, String)>,
    /// Faults undone now: `(run, drill/fault, what was done)`.
    pub reverted: Vec<(String, String, String)>,
    /// Faults whose intent was stored but which, read on the target, never took effect.
    pub not_applied: Vec<(String, String, String)>,
    /// Faults that changed the target for good, recorded as such.
    pub permanent: Vec<(String, String, String)>,
    /// Faults still changed or inconsistent: `(run, drill/fault, error, how to fix by hand)`.
    pub failed: Vec<(String, String, String, String)>,
}

impl Recovered {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
            && self.reverted.is_empty()
            && self.not_applied.is_empty()
            && self.permanent.is_empty()
            && self.failed.is_empty()
    }
}

/// Why a fault could not be settled (yet).
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error("the stored revert record cannot be read")]
    Record(#[source] serde_json::Error),
    /// The record is sealed with another key (or damaged): nothing was touched.
    #[error(transparent)]
    Sealed(crate::seal::SealError),
    /// The backend's last error, after every attempt the budget allowed.
    #[error(transparent)]
    Fault(#[from] drill_faults::FaultError),
    /// The run was taken over: the fault is the new owner's to settle, and was not touched.
    #[error(transparent)]
    Lost(LostLease),
    /// The store could not confirm the lease, so nothing was touched.
    #[error(
        "the store cannot confirm this process still owns the run, so the fault was not touched"
    )]
    Unfenced(#[source] StoreError),
    /// The ledger says the fault is settled already: left alone.
    #[error("the ledger says it is settled already")]
    Settled,
}

impl From<FenceError> for RevertError {
    fn from(e: FenceError) -> Self {
        match e {
            FenceError::Lost(l) => RevertError::Lost(l),
            FenceError::Store(s) => RevertError::Unfenced(s),
        }
    }
}

/// What settling a fault found and did.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The state now in the ledger.
    pub state: FaultState,
    /// In words, as measured.
    pub what: String,
}

/// Why the owner of a run is considered gone.
fn gone_reason(run: &RunRow) -> String {
    match Owner::parse(&run.owner) {
        Some(o) if o.alive() == Some(false) => format!(
            "its owner (pid {} on {}) exited without finishing the run",
            o.pid, o.host
        ),
        Some(o) if o.alive() == Some(true) => format!(
            "its owner (pid {} on {}) is still there but stopped renewing its lease {:.1} s ago (lease {:.1} s): taken over",
            o.pid,
            o.host,
            run.age_ms as f64 / 1000.0,
            run.lease_ms as f64 / 1000.0
        ),
        _ => format!(
            "its owner ({}) stopped renewing its lease {:.1} s ago (lease {:.1} s)",
            run.owner,
            run.age_ms as f64 / 1000.0,
            run.lease_ms as f64 / 1000.0
        ),
    }
}

/// One reconciliation pass over every run but `except` (the caller's own run). Each settle is
/// retried with backoff for at most `budget`.
pub async fn reconcile(
    store: &Store,
    except: Option<&str>,
    budget: Duration,
    log: &Log,
) -> Result<Recovered, StoreError> {
    let mut out = Recovered::default();
    let me = Owner::me().to_string();
    for run in store.recoverable().await? {
        if Some(run.id.as_str()) == except {
            continue;
        }
        let owner_gone = Owner::parse(&run.owner).and_then(|o| o.alive()) == Some(false);
        // Claimed, or renewed / claimed by someone else meanwhile: not ours.
        let Some(lease) = store.claim(&run, &me, owner_gone).await? else {
            continue;
        };
        let why = gone_reason(&run);
        if run.status == "running" {
            log(&format!(
                "recover: run {}: {why}; this process ({me}) holds it now (epoch {})",
                run.id, lease.epoch
            ));
        }
        match settle_run(store, &lease, &run, &why, budget, log, &mut out).await {
            Ok(()) => {}
            Err(RevertError::Lost(l)) => log(&format!("recover: {l}")),
            Err(e) => log(&format!("recover: run {}: {}", run.id, chain(&e))),
        }
    }
    Ok(out)
}

async fn settle_run(
    store: &Store,
    lease: &Lease,
    run: &RunRow,
    why: &str,
    budget: Duration,
    log: &Log,
    out: &mut Recovered,
) -> Result<(), RevertError> {
    let faults = store.faults(&run.id).await.map_err(RevertError::Unfenced)?;
    let mut counts = Counts::default();
    // Newest first: the reverse of the order they were applied in.
    for f in faults.iter().rev().filter(|f| f.state.outstanding()) {
        let label = format!("{}/{}", f.drill, f.fault);
        log(&format!(
            "recover: run {} left {label} {}; settling it",
            run.id,
            f.state.as_str()
        ));
        let entry = |what: String| (run.id.clone(), label.clone(), what);
        match settle_row(store, lease, f, budget, log).await {
            Ok(s) => match s.state {
                FaultState::NotApplied => {
                    counts.not_applied += 1;
                    out.not_applied.push(entry(s.what));
                }
                FaultState::Permanent => {
                    counts.permanent += 1;
                    out.permanent.push(entry(s.what));
                }
                // Settled means no longer changed: what is not one of the two above was
                // restored.
                FaultState::Reverted
                | FaultState::Intent
                | FaultState::Applied
                | FaultState::RevertFailed => {
                    counts.reverted += 1;
                    out.reverted.push(entry(s.what));
                }
            },
            Err(RevertError::Settled) => {}
            Err(e @ (RevertError::Lost(_) | RevertError::Unfenced(_))) => return Err(e),
            Err(e) => {
                counts.failed += 1;
                out.failed
                    .push((run.id.clone(), label, chain(&e), f.manual_restore.clone()));
            }
        }
    }
    let left = store
        .faults(&run.id)
        .await
        .map_err(RevertError::Unfenced)?
        .iter()
        .filter(|f| f.state.outstanding())
        .count();
    if run.status == "running" {
        let reason = format!("aborted: {why}; `drill recover` {}", counts.say(left));
        let status = if left == 0 {
            "aborted"
        } else {
            "revert_failed"
        };
        store.finish_run(lease, status, Some(&reason)).await?;
        out.runs.push((run.id.clone(), reason));
    } else if left == 0 && run.status == "revert_failed" {
        let reason = format!(
            "{}; settled later by `drill recover`: {}",
            run.reason.clone().unwrap_or_default(),
            counts.say(0)
        );
        store.finish_run(lease, "aborted", Some(&reason)).await?;
    }
    if left == 0 {
        store.unlock(lease).await?;
    }
    Ok(())
}

/// How a run's faults were settled, for its final reason.
#[derive(Debug, Default)]
struct Counts {
    reverted: usize,
    not_applied: usize,
    permanent: usize,
    failed: usize,
}

impl Counts {
    /// Exactly what was found and done, e.g. "reverted 1 fault; 1 was intent only (nothing
    /// changed)".
    fn say(&self, left: usize) -> String {
        let n = |k: usize| if k == 1 { "fault" } else { "faults" };
        let mut parts = Vec::new();
        if self.reverted > 0 {
            parts.push(format!("reverted {} {}", self.reverted, n(self.reverted)));
        }
        if self.not_applied > 0 {
            parts.push(format!(
                "found {} {} intent only (nothing changed)",
                self.not_applied,
                n(self.not_applied)
            ));
        }
        if self.permanent > 0 {
            parts.push(format!(
                "recorded {} {} changed for good",
                self.permanent,
                n(self.permanent)
            ));
        }
        if left > 0 {
            parts.push(format!("{left} {} STILL CHANGED", n(left)));
        }
        if parts.is_empty() {
            "found nothing left changed".into()
        } else {
            parts.join("; ")
        }
    }
}

/// Settles one ledger row from its stored record, retrying until `budget` is spent.
pub async fn settle_row(
    store: &Store,
    lease: &Lease,
    f: &FaultRow,
    budget: Duration,
    log: &Log,
) -> Result<Settled, RevertError> {
    let plain = match store.record(f) {
        Ok(p) => p,
        Err(e) => {
            let e = RevertError::Sealed(e);
            store
                .fault_state(lease, &f.id, FaultState::RevertFailed, Some(&chain(&e)))
                .await?;
            return Err(e);
        }
    };
    let record: RevertRecord = match serde_json::from_str(&plain) {
        Ok(r) => r,
        Err(e) => {
            let e = RevertError::Record(e);
            store
                .fault_state(lease, &f.id, FaultState::RevertFailed, Some(&chain(&e)))
                .await?;
            return Err(e);
        }
    };
    let done = store
        .steps_done(&f.id)
        .await
        .map_err(RevertError::Unfenced)?;
    settle_with_retry(
        store,
        lease,
        &f.id,
        &format!("{}/{}", f.drill, f.fault),
        &record,
        (f.state, &done),
        budget,
        log,
    )
    .await
}

/// Settles a fault ([`drill_faults::settle`]), each attempt fenced and recorded in the ledger,
/// with exponential backoff (200 ms doubling to 5 s, jittered) until it succeeds or `budget`
/// is spent. `(was, done)`: its state in the ledger and the steps that completed. Stops at
/// once, touching nothing more, when the lease is lost.
#[allow(clippy::too_many_arguments)]
pub async fn settle_with_retry(
    store: &Store,
    lease: &Lease,
    id: &str,
    label: &str,
    record: &RevertRecord,
    (was, done): (FaultState, &[String]),
    budget: Duration,
    log: &Log,
) -> Result<Settled, RevertError> {
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
        // The fence: no call to the target unless the store confirms the lease now, and
        // the backend asks again right before its mutation whether that confirmation is
        // still recent enough to rely on (it is not, for a process frozen in between).
        let sent = Instant::now();
        let sure = move || {
            if sent.elapsed() < lease.trust() {
                Ok(())
            } else {
                Err(format!(
                    "this process is not sure it still owns run {}: its lease was confirmed {:.1} s ago (lease {:.1} s), so it makes no change",
                    lease.run_id,
                    sent.elapsed().as_secs_f64(),
                    lease.ttl_ms as f64 / 1000.0
                ))
            }
        };
        let result = match store.revert_attempt(lease, id).await {
            Ok(true) => drill_faults::settle(record, done, &sure)
                .await
                .map_err(RevertError::Fault),
            Ok(false) => return Err(RevertError::Settled),
            Err(FenceError::Lost(l)) => return Err(RevertError::Lost(l)),
            Err(FenceError::Store(e)) => Err(RevertError::Unfenced(e)),
        };
        match result {
            Ok(r) => {
                crate::crash_point("reverting");
                let s = settled(&r, was, record);
                // The settle happened; a failure to record it is retried by the next pass
                // (settling is idempotent), so it is logged, not fatal — unless the lease is
                // gone, which the caller must know.
                match store.fault_state(lease, id, s.state, None).await {
                    Ok(()) => {}
                    Err(FenceError::Lost(l)) => return Err(RevertError::Lost(l)),
                    Err(FenceError::Store(e)) => log(&format!(
                        "warning: {label} was settled ({}) but the ledger could not say so: {}",
                        s.what,
                        chain(&e)
                    )),
                }
                return Ok(s);
            }
            Err(e) => {
                let msg = chain(&e);
                if let RevertError::Fault(_) = e {
                    match store
                        .fault_state(lease, id, FaultState::RevertFailed, Some(&msg))
                        .await
                    {
                        Err(FenceError::Lost(l)) => return Err(RevertError::Lost(l)),
                        Ok(()) | Err(FenceError::Store(_)) => {}
                    }
                }
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                if Instant::now() + delay > deadline {
                    log(&format!(
                        "error: settling {label} failed {attempt} time(s), giving up for now: {msg}"
                    ));
                    return Err(e);
                }
                log(&format!(
                    "warning: settling {label} failed (attempt {attempt}): {msg}; retrying in {:.1} s",
                    delay.as_secs_f64()
                ));
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// What a settle's result means, given the state the ledger had: the words say what was
/// read on the target, not what was hoped.
fn settled(r: &Reverted, was: FaultState, record: &RevertRecord) -> Settled {
    let (state, what) = match r {
        Reverted::Restored(d) if d.is_empty() => (FaultState::Reverted, "reverted".to_owned()),
        Reverted::Restored(d) => (FaultState::Reverted, format!("reverted ({})", d.join("; "))),
        Reverted::AlreadyRestored if was == FaultState::Intent => (
            FaultState::NotApplied,
            "intent only, nothing changed: the target is in its recorded state".to_owned(),
        ),
        Reverted::AlreadyRestored => (
            FaultState::Reverted,
            "already in the recorded state".to_owned(),
        ),
        Reverted::NotApplied(d) => (
            FaultState::NotApplied,
            format!("intent only, nothing changed: {d}"),
        ),
        // A promotion is read on the target; other one-way faults cannot be.
        Reverted::Permanent(d) if was == FaultState::Intent && !record.checks_applied() => (
            FaultState::Permanent,
            format!(
                "may have been changed for good (the run stopped between the intent and the result, and this fault cannot be read back): {d}"
            ),
        ),
        Reverted::Permanent(d) => (FaultState::Permanent, format!("changed for good: {d}")),
    };
    Settled { state, what }
}
