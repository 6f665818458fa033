//! Mutations of this run, each through the ledger: inject (intent with its revert record
//! stored first, then applied), revert (retried within the budget), the final sweep, and
//! the steps and actions the playbook runs (through `drill_faults::steps`, which checks the
//! allow-list).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use drill_faults::{FaultError, RevertRecord, Reverted};
use drill_spec::fault::Backend;
use drill_spec::model::{Action, Allow, Fault, Step};

use crate::chain;
use crate::context::{LiveFault, RunContext, locked};
use crate::outcome::{ActionResult, StillChanged, secs};
use crate::recover::{self, RevertError};
use crate::store::{FaultRow, FaultState, StoreError, now_ms};

/// Why a fault was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InjectError {
    #[error(transparent)]
    Prepare(FaultError),
    #[error("its revert record cannot be stored")]
    Record(#[source] serde_json::Error),
    #[error("the ledger refused the intent, so the fault was not applied")]
    Intent(#[source] StoreError),
    #[error(transparent)]
    Apply(FaultError),
}

/// Injects one fault: prepare (fresh state), intent in the ledger, apply, applied.
pub(crate) async fn inject(
    cx: &Arc<RunContext>,
    drill: &str,
    f: &Fault,
    hold: Duration,
) -> Result<(), InjectError> {
    let prepared = drill_faults::prepare(f, &cx.allow, hold)
        .await
        .map_err(InjectError::Prepare)?;
    let record = serde_json::to_string(&prepared.record).map_err(InjectError::Record)?;
    let seq = cx.seq.fetch_add(1, Ordering::SeqCst);
    let id = format!("{}/{seq}", cx.run_id);
    let backend = backend_of(&prepared.record);
    let row = FaultRow {
        id: id.clone(),
        run_id: cx.run_id.clone(),
        seq,
        drill: drill.to_owned(),
        fault: f.name.clone(),
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
    // Write-ahead: the record that undoes the fault is durable before the fault happens.
    cx.store
        .fault_intent(&row)
        .await
        .map_err(InjectError::Intent)?;
    locked(&cx.faults).push(LiveFault {
        id: id.clone(),
        drill: drill.to_owned(),
        name: f.name.clone(),
        backend,
        record: prepared.record.clone(),
        state: FaultState::Intent,
        error: None,
        manual_restore: row.manual_restore.clone(),
        since: None,
    });
    crate::crash_point("intent");
    drill_faults::apply(&prepared.record)
        .await
        .map_err(InjectError::Apply)?;
    crate::crash_point("applied");
    cx.set_state(&id, FaultState::Applied, None);
    if let Err(e) = cx.store.fault_state(&id, FaultState::Applied, None).await {
        // The intent row still covers it: recover reverts intents too.
        cx.say(&format!("warning: {}", chain(&e)));
    }
    cx.say(&format!(
        "{drill}/{}: applied ({})",
        f.name,
        prepared.changes.join("; ")
    ));
    Ok(())
}

/// The backend's name ([`Backend::name`], the one list of names).
fn backend_of(r: &RevertRecord) -> &'static str {
    match r {
        RevertRecord::Docker(_) => Backend::Docker,
        RevertRecord::Process(_) => Backend::Process,
        RevertRecord::Exec(_) => Backend::Exec,
        RevertRecord::Redis(_) => Backend::Redis,
        RevertRecord::Sql(_) => Backend::Sql,
        RevertRecord::Kubernetes(_) => Backend::Kubernetes,
        RevertRecord::Http(_) => Backend::Http,
    }
    .name()
}

/// Reverts one fault of this run (retried within the budget), keeping the in-memory state
/// in step with the ledger.
pub(crate) async fn revert(cx: &RunContext, f: &LiveFault) -> Result<(), RevertError> {
    let label = format!("{}/{}", f.drill, f.name);
    match recover::revert_with_retry(
        &cx.store,
        &f.id,
        &label,
        &f.record,
        cx.revert_budget,
        &cx.log,
    )
    .await
    {
        Ok(r) => {
            cx.set_state(&f.id, state_of(&r), None);
            cx.say(&format!("{label}: {}", describe(&r)));
            Ok(())
        }
        Err(e) => {
            cx.set_state(&f.id, FaultState::RevertFailed, Some(chain(&e)));
            Err(e)
        }
    }
}

fn state_of(r: &Reverted) -> FaultState {
    if matches!(r, Reverted::Permanent(_)) {
        FaultState::Permanent
    } else {
        FaultState::Reverted
    }
}

fn describe(r: &Reverted) -> String {
    match r {
        Reverted::Restored(d) if d.is_empty() => "reverted".into(),
        Reverted::Restored(d) => format!("reverted ({})", d.join("; ")),
        Reverted::AlreadyRestored => "already in the recorded state".into(),
        Reverted::Permanent(w) => format!("cannot be undone: {w}"),
    }
}

/// Reverts everything this run still has changed, concurrently; returns what stays changed.
pub(crate) async fn sweep(cx: &Arc<RunContext>) -> Vec<StillChanged> {
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

/// Runs a setup or teardown step; the message says what it did.
pub(crate) async fn step(s: &Step, allow: &Allow) -> Result<String, FaultError> {
    drill_faults::steps::run_step(s, allow)
        .await
        .map(|d| d.to_string())
}

/// Runs a drill's action.
pub(crate) async fn action(cx: &Arc<RunContext>, a: &Action, label: &str) -> ActionResult {
    let at_s = secs(cx.now());
    let r = drill_faults::steps::run_action(a, &cx.allow)
        .await
        .map(|d| d.to_string())
        .map_err(|e| chain(&e));
    match &r {
        Ok(m) => cx.say(&format!("{label}: {m}")),
        Err(e) => cx.say(&format!("{label} failed: {e}")),
    }
    ActionResult {
        name: label.to_owned(),
        at_s,
        ok: r.is_ok(),
        result: r.unwrap_or_else(|e| e),
    }
}
