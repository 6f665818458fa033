//! Mutations of this run, each through the ledger and fenced: inject (intent with its revert
//! record stored first, then each step of a composite, then applied), revert (settled from
//! the record, retried within the budget), the final sweep, and the steps and actions the
//! playbook runs (through `drill_faults::steps`, which checks the allow-list; each recorded in
//! the call log first).
//!
//! Every call to a target is preceded by a fenced write (`store/`): it is made only if the
//! store confirms, in the transaction that records it, that this process still holds the
//! run's lease at its epoch. A lost lease aborts the run and makes every later call here a
//! no-op: the new owner settles what is left.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use drill_faults::FaultError;
use drill_spec::call::{ValidAction, ValidStep};
use drill_spec::fault::ValidFault;
use drill_spec::model::Allow;

use crate::chain;
use crate::checks::fmt_dur;
use crate::context::{LiveFault, Ownership, RunContext, locked};
use crate::outcome::{ActionResult, StillChanged, secs};
use crate::recover::{self, RevertError};
use crate::store::{FaultRow, FaultState, FenceError, Store, now_ms};

/// Why a fault was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InjectError {
    #[error(transparent)]
    Prepare(FaultError),
    #[error("its revert record cannot be stored")]
    Record(#[source] serde_json::Error),
    #[error("the ledger refused the intent, so the fault was not applied")]
    Intent(#[source] FenceError),
    #[error(transparent)]
    Apply(FaultError),
    #[error("the ledger refused a step, so the fault stopped before it")]
    Step(#[source] FenceError),
}

/// Records a fenced write's loss of the lease on the run (which aborts it).
fn note_lost(own: &Ownership, e: &FenceError) {
    if let FenceError::Lost(l) = e {
        own.lose(l.clone());
    }
}

/// A fenced write: a success confirms the lease as of when it was sent, a loss is recorded.
async fn fenced<T>(
    own: &Ownership,
    write: impl std::future::Future<Output = Result<T, FenceError>>,
) -> Result<T, FenceError> {
    let sent = std::time::Instant::now();
    let r = write.await;
    match &r {
        Ok(_) => own.confirm(sent),
        Err(e) => note_lost(own, e),
    }
    r
}

/// Injects one fault: prepare (fresh state), intent in the ledger, apply, applied.
pub(crate) async fn inject(
    cx: &Arc<RunContext>,
    drill: &str,
    f: &ValidFault,
    hold: Duration,
) -> Result<(), InjectError> {
    let prepared = drill_faults::prepare(f, &cx.allow, hold)
        .await
        .map_err(InjectError::Prepare)?;
    inject_prepared(cx, drill, &f.name, prepared).await
}

/// Makes a prepared change through the ledger: its intent (with the revert record) first,
/// fenced, then the change, then `applied`. The shards' Job of a distributed run goes this
/// way too.
pub(crate) async fn inject_prepared(
    cx: &Arc<RunContext>,
    drill: &str,
    name: &str,
    prepared: drill_faults::Prepared,
) -> Result<(), InjectError> {
    let record = serde_json::to_string(&prepared.record).map_err(InjectError::Record)?;
    let seq = cx.seq.fetch_add(1, Ordering::SeqCst);
    let id = format!("{}/{seq}", cx.run_id);
    let backend = prepared.record.backend().name();
    let row = FaultRow {
        id: id.clone(),
        run_id: cx.run_id.clone(),
        seq,
        drill: drill.to_owned(),
        fault: name.to_owned(),
        backend: backend.into(),
        record,
        changes: prepared.changes.clone(),
        manual_restore: prepared.record.manual_restore(),
        state: FaultState::Intent,
        attempts: 0,
        error: None,
        intent_ms: now_ms(),
        applied_ms: None,
        reverted_ms: None,
    };
    let lease = &cx.own.lease;
    // Write-ahead and fenced: the record that undoes the fault is durable before the fault
    // happens, and only if this process still holds the run.
    if let Err(e) = fenced(&cx.own, cx.store.fault_intent(lease, &row)).await {
        return Err(InjectError::Intent(e));
    }
    locked(&cx.faults).push(LiveFault {
        id: id.clone(),
        drill: drill.to_owned(),
        name: name.to_owned(),
        backend,
        record: prepared.record.clone(),
        state: FaultState::Intent,
        error: None,
        manual_restore: row.manual_restore.clone(),
        since: None,
        done: Vec::new(),
    });
    crate::crash_point("intent");
    // Asked by the backend right before its mutating call.
    let sure = || cx.own.sure();
    let steps = drill_faults::steps(&prepared.record);
    if let [only] = steps {
        drill_faults::apply_step(&prepared.record, only, &sure)
            .await
            .map_err(InjectError::Apply)?;
    } else {
        // A composite: each step's intent and completion in the ledger, so that recovery
        // knows where a crash stopped it (and rolls it forward).
        for step in steps {
            if let Err(e) = fenced(&cx.own, cx.store.fault_step(lease, &id, step, "intent")).await {
                return Err(InjectError::Step(e));
            }
            crate::crash_point(&format!("before-{step}"));
            drill_faults::apply_step(&prepared.record, step, &sure)
                .await
                .map_err(InjectError::Apply)?;
            if let Some(lf) = locked(&cx.faults).iter_mut().find(|x| x.id == id) {
                lf.done.push((*step).to_owned());
            }
            if let Err(e) = fenced(&cx.own, cx.store.fault_step(lease, &id, step, "done")).await {
                cx.say(&format!(
                    "error: {drill}/{}: step {step} ran, but the ledger refused to record it: {}; {}",
                    name,
                    chain(&e),
                    lost_after_change(&row.manual_restore)
                ));
                return Err(InjectError::Step(e));
            }
            crate::crash_point(&format!("after-{step}"));
        }
    }
    crate::crash_point("applied");
    cx.set_state(&id, FaultState::Applied, None);
    match fenced(
        &cx.own,
        cx.store.fault_state(lease, &id, FaultState::Applied, None),
    )
    .await
    {
        Ok(()) => {}
        Err(e @ FenceError::Lost(_)) => {
            cx.say(&format!(
                "error: {drill}/{} was applied, but {}; {}",
                name,
                chain(&e),
                lost_after_change(&row.manual_restore)
            ));
        }
        // The intent row still covers it: recovery settles intents too.
        Err(e) => cx.say(&format!("warning: {}", chain(&e))),
    }
    let changes = prepared.changes.join("; ");
    cx.tell(&format!("{drill}/{name}: applied ({changes})"), |m| {
        tracing::info!(
            drill = cx.shown(drill),
            fault = cx.shown(name),
            backend,
            state = "applied",
            "{m}"
        );
    });
    Ok(())
}

/// What to say when a change went through just as the lease was lost (the fence held when
/// it was checked; the takeover came during the call): the new owner may have settled the
/// fault before it happened.
fn lost_after_change(manual: &str) -> String {
    format!(
        "the new owner may have settled this fault before the change landed: check the target, and restore by hand if needed: {manual}"
    )
}

/// Reverts one fault of this run — settles it from its record, retried within the budget —
/// keeping the in-memory state in step with the ledger. A no-op once the lease is lost.
pub(crate) async fn revert(cx: &RunContext, f: &LiveFault) -> Result<(), RevertError> {
    if let Some(l) = cx.own.lost() {
        return Err(RevertError::Lost(l));
    }
    let label = format!("{}/{}", f.drill, f.name);
    let applied = f.since.map(|t| cx.now().saturating_sub(t));
    let applied_for = applied
        .map(|t| format!(" after {} applied", fmt_dur(t)))
        .unwrap_or_default();
    match recover::settle_with_retry(
        &cx.store,
        &cx.own.lease,
        &f.id,
        &label,
        &f.record,
        (f.state, &f.done),
        cx.revert_budget,
        &cx.log,
    )
    .await
    {
        Ok(s) => {
            cx.set_state(&f.id, s.state, None);
            cx.tell(&format!("{label}: {}{applied_for}", s.what), |m| {
                tracing::info!(
                    drill = cx.shown(&f.drill),
                    fault = cx.shown(&f.name),
                    backend = f.backend,
                    state = s.state.as_str(),
                    applied_ms = applied.map(|t| t.as_millis() as u64),
                    "{m}"
                );
            });
            Ok(())
        }
        Err(RevertError::Lost(l)) => {
            cx.own.lose(l.clone());
            Err(RevertError::Lost(l))
        }
        Err(e) => {
            cx.set_state(&f.id, FaultState::RevertFailed, Some(chain(&e)));
            Err(e)
        }
    }
}

/// Reverts everything this run still has changed, concurrently; returns what stays changed.
pub(crate) async fn sweep(cx: &Arc<RunContext>) -> Vec<StillChanged> {
    if cx.own.lost().is_some() {
        // The new owner settles what is left; touching it here would fight it.
        return Vec::new();
    }
    let pending = cx.outstanding(None);
    if !pending.is_empty() {
        cx.say(&format!(
            "reverting {} fault(s) still applied",
            pending.len()
        ));
    }
    let futs = pending.into_iter().rev().map(|f| {
        let cx = cx.clone();
        async move {
            revert(&cx, &f).await.err().map(|e| StillChanged {
                drill: f.drill.clone(),
                fault: f.name.clone(),
                error: chain(&e),
                manual_restore: f.manual_restore.clone(),
            })
        }
    });
    futures_util::future::join_all(futs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Why a setup or teardown step did not run or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error("not run: the call log refused it")]
    Fence(#[source] FenceError),
    #[error("not run: {0}")]
    Unsure(String),
    #[error(transparent)]
    Fault(#[from] FaultError),
}

/// Runs a setup or teardown step, recorded (fenced) in the call log first; the message says
/// what it did.
pub(crate) async fn step(
    store: &Store,
    own: &Ownership,
    s: &ValidStep,
    allow: &Allow,
    label: &str,
) -> Result<String, StepError> {
    if let Err(e) = fenced(own, store.record_call(&own.lease, "step", label)).await {
        return Err(StepError::Fence(e));
    }
    own.sure().map_err(StepError::Unsure)?;
    Ok(drill_faults::steps::run_step(s, allow).await?.to_string())
}

/// Runs a drill's action, recorded (fenced) in the call log first.
pub(crate) async fn action(cx: &Arc<RunContext>, a: &ValidAction, label: &str) -> ActionResult {
    let at_s = secs(cx.now());
    let r = match fenced(
        &cx.own,
        cx.store.record_call(&cx.own.lease, "action", label),
    )
    .await
    {
        Ok(()) => match cx.own.sure() {
            Ok(()) => drill_faults::steps::run_action(a, &cx.allow)
                .await
                .map(|d| d.to_string())
                .map_err(|e| chain(&e)),
            Err(why) => Err(format!("not run: {why}")),
        },
        Err(e) => Err(format!("not run: the call log refused it: {}", chain(&e))),
    };
    match &r {
        Ok(m) => cx.tell(&format!("{label}: {m}"), |m| {
            tracing::info!(action = cx.shown(label), ok = true, "{m}");
        }),
        Err(e) => cx.tell(&format!("{label} failed: {e}"), |m| {
            tracing::warn!(action = cx.shown(label), ok = false, "{m}");
        }),
    }
    ActionResult {
        name: label.to_owned(),
        at_s,
        ok: r.is_ok(),
        result: r.unwrap_or_else(|e| e),
    }
}
