//! drill-faults: the part of drill that touches other systems.
//!
//! What it is: one module per backend (`docker/`, `kubernetes/`, `process/`, `exec/`,
//! `redis/`, `sql/`, `http/`), each
//! following the contract in `docs/specs/fault.md`:
//!
//! 1. [`prepare`] — preflight: checks the target against the allow-list *before any call to
//!    it*, resolves it, reads the state it is in now, and returns a serializable
//!    [`RevertRecord`] with that original state and a list of exactly what would change.
//!    No mutating call.
//! 2. [`apply`] — performs the mutation described by the record. The engine stores the record
//!    before calling it, so a crash between the two leaves a record to revert.
//! 3. [`revert`] — restores the state recorded before the change (never a value from the
//!    playbook); idempotent; "already restored" and "gone" are success; needs nothing but
//!    the record, so a fresh process can run it.
//!
//! Faults that cannot be undone (FLUSHALL, deleted keys, killed clients) say so: their
//! record's [`RevertRecord::permanent`] describes what was changed for good.
//!
//! Beside the faults, [`steps`] runs the one-shot calls of a playbook (setup, teardown, a
//! drill's actions) through the same allow-list check.
//!
//! Layout: this file dispatches a [`ValidFault`]'s typed kind to its backend and wraps each
//! backend's record into a [`RevertRecord`]; the backends depend on `contract.rs` (the error,
//! [`Prepared`], [`Reverted`], the [`Guard`]) and on `exec` for commands, never on this file
//! or on each other.
//!
//! What it is not: no scheduling, no persistence, no traffic: the engine decides when, and
//! stores the records.

use std::time::Duration;

pub use contract::{FaultError, Guard, Reverted, chain, unguarded};
pub(crate) use contract::{allowed, guarded};
use drill_spec::fault::{Kind, ValidFault};
use drill_spec::model::{Allow, Probe};
use serde::{Deserialize, Serialize};

mod contract;
pub mod docker;
pub mod exec;
pub mod http;
pub mod kubernetes;
pub mod process;
pub mod redis;
pub mod sql;
pub mod steps;

/// What preflight prepared for one fault: its revert record, and what would change.
pub type Prepared<R = RevertRecord> = contract::Prepared<R>;

/// Everything needed to apply and revert one fault, with the original state read just before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum RevertRecord {
    Docker(docker::Record),
    Process(process::Record),
    Exec(exec::Record),
    Redis(redis::Record),
    Sql(sql::Record),
    Kubernetes(kubernetes::Record),
    Http(http::Record),
}

impl RevertRecord {
    /// The backend that applies and reverts it.
    pub fn backend(&self) -> drill_spec::fault::Backend {
        use drill_spec::fault::Backend;
        match self {
            RevertRecord::Docker(_) => Backend::Docker,
            RevertRecord::Process(_) => Backend::Process,
            RevertRecord::Exec(_) => Backend::Exec,
            RevertRecord::Redis(_) => Backend::Redis,
            RevertRecord::Sql(_) => Backend::Sql,
            RevertRecord::Kubernetes(_) => Backend::Kubernetes,
            RevertRecord::Http(_) => Backend::Http,
        }
    }

    /// What the fault changes for good, and what restores redundancy, when it cannot be undone.
    pub fn permanent(&self) -> Option<String> {
        match self {
            RevertRecord::Redis(r) => r.permanent(),
            RevertRecord::Sql(r) => r.permanent(),
            RevertRecord::Exec(r) => r
                .revert
                .is_none()
                .then(|| format!("ran {} with no revert command", r.inject.command.join(" "))),
            // Undone from their records.
            RevertRecord::Docker(_)
            | RevertRecord::Process(_)
            | RevertRecord::Kubernetes(_)
            | RevertRecord::Http(_) => None,
        }
    }

    /// Whether [`settle`] reads on the target whether a one-way fault really happened (a
    /// promotion: is the replica still in recovery?), rather than assuming it did.
    pub fn checks_applied(&self) -> bool {
        matches!(self, RevertRecord::Sql(r) if r.steps().contains(&"promote"))
    }

    /// A command an operator can run to restore the original state by hand.
    pub fn manual_restore(&self) -> String {
        match self {
            RevertRecord::Docker(r) => r.manual_restore(),
            RevertRecord::Process(r) => r.manual_restore(),
            RevertRecord::Exec(r) => r.revert.as_ref().map_or_else(
                || "nothing to run: the fault has no revert".into(),
                |c| c.command.join(" "),
            ),
            RevertRecord::Redis(r) => r.manual_restore(),
            RevertRecord::Sql(r) => r.manual_restore(),
            RevertRecord::Kubernetes(r) => r.manual_restore(),
            RevertRecord::Http(r) => r.revert.as_ref().map_or_else(
                || "nothing to call: the fault has no revert".into(),
                |c| format!("curl -X {} {}", c.method, c.url),
            ),
        }
    }
}

/// Preflight for one fault: allow-list first (no call to a target outside it), then resolve
/// and read the current state. Makes no mutating call.
pub async fn prepare(
    fault: &ValidFault,
    allow: &Allow,
    hold: Duration,
) -> Result<Prepared, FaultError> {
    match &fault.kind {
        Kind::Docker { target, action } => docker::prepare(target, action, allow)
            .await
            .map(|p| p.map(RevertRecord::Docker)),
        Kind::Process { target, action } => {
            process::prepare(target, *action, allow).map(|p| p.map(RevertRecord::Process))
        }
        Kind::Redis { endpoint, action } => redis::prepare(action, &endpoint.url, allow, hold)
            .await
            .map(|p| p.map(RevertRecord::Redis)),
        Kind::Exec(e) => exec::prepare(e, allow).map(|p| p.map(RevertRecord::Exec)),
        Kind::Kubernetes { target, .. } => {
            // The allow-list is checked before a client (and its kubeconfig) is even built.
            allowed(drill_spec::allow::kubernetes(allow, target))?;
            let client = kubernetes::client(target.context.as_deref()).await?;
            kubernetes::prepare_with(&client, fault, allow)
                .await
                .map(|p| p.map(RevertRecord::Kubernetes))
        }
        Kind::Sql { endpoint, action } => sql::prepare(&fault.name, action, &endpoint.url, allow)
            .await
            .map(|p| p.map(RevertRecord::Sql)),
        Kind::Http(h) => http::prepare(h, allow).map(|p| p.map(RevertRecord::Http)),
    }
}

/// The steps a fault's mutation is made of, in order. Most faults are one step, `apply`; a
/// composite — a promotion, then its route switch — is several, which the engine records one
/// by one in the ledger, so that [`settle`] knows where a crash stopped it.
pub fn steps(record: &RevertRecord) -> &'static [&'static str] {
    match record {
        RevertRecord::Sql(r) => r.steps(),
        RevertRecord::Docker(_)
        | RevertRecord::Process(_)
        | RevertRecord::Exec(_)
        | RevertRecord::Redis(_)
        | RevertRecord::Kubernetes(_)
        | RevertRecord::Http(_) => &["apply"],
    }
}

/// Performs one step of [`steps`], asking `guard` right before each mutating call.
pub async fn apply_step(
    record: &RevertRecord,
    step: &str,
    guard: Guard<'_>,
) -> Result<(), FaultError> {
    if let RevertRecord::Sql(r) = record {
        return sql::apply_step(r, step, guard).await;
    }
    // Every other record is the one step of `steps`.
    if step != "apply" {
        return Err(FaultError::backend(
            record.backend().name(),
            format!("a {} fault has no step {step:?}", record.backend().name()),
        ));
    }
    guarded(guard)?;
    apply(record).await
}

/// Performs the whole mutation a prepared record describes: every step, in order.
pub async fn apply(record: &RevertRecord) -> Result<(), FaultError> {
    match record {
        RevertRecord::Docker(r) => docker::apply(r).await,
        RevertRecord::Process(r) => process::apply(r),
        RevertRecord::Exec(r) => exec::apply(r).await,
        RevertRecord::Redis(r) => redis::apply(r).await,
        RevertRecord::Sql(r) => sql::apply(r).await,
        RevertRecord::Kubernetes(r) => {
            kubernetes::apply_with(&kubernetes::client(r.context.as_deref()).await?, r).await
        }
        RevertRecord::Http(r) => http::apply(r).await,
    }
}

/// Restores the state recorded before the fault. Idempotent; works from the record alone.
pub async fn revert(record: &RevertRecord) -> Result<Reverted, FaultError> {
    match record {
        RevertRecord::Docker(r) => docker::revert(r).await,
        RevertRecord::Process(r) => process::revert(r).await,
        RevertRecord::Exec(r) => exec::revert(r).await,
        RevertRecord::Redis(r) => redis::revert(r).await,
        RevertRecord::Sql(r) => sql::revert(r).await,
        RevertRecord::Kubernetes(r) => {
            kubernetes::revert_with(&kubernetes::client(r.context.as_deref()).await?, r).await
        }
        RevertRecord::Http(r) => http::revert(r).await,
    }
}

/// Settles a fault that may have been interrupted: reads the target's real state first, then
/// undoes what changed ([`revert`]), or — for a composite whose irreversible step happened —
/// runs the steps still missing (*rolls forward*: a promoted replica gets its route switch).
/// `done` names the steps the ledger says completed. An error means the target is still
/// changed or inconsistent; its message says what, and how to finish by hand.
/// `guard` is asked right before each mutating call.
pub async fn settle(
    record: &RevertRecord,
    done: &[String],
    guard: Guard<'_>,
) -> Result<Reverted, FaultError> {
    match record {
        RevertRecord::Sql(r) => sql::settle(r, done, guard).await,
        // One step each: reverting reads the target first, so it is the settling.
        RevertRecord::Docker(_)
        | RevertRecord::Process(_)
        | RevertRecord::Exec(_)
        | RevertRecord::Redis(_)
        | RevertRecord::Kubernetes(_)
        | RevertRecord::Http(_) => {
            guarded(guard)?;
            revert(record).await
        }
    }
}

/// Reads a probe's value. Read-only; the target must be inside the allow-list.
pub async fn probe(p: &Probe, allow: &Allow) -> Result<f64, FaultError> {
    match p {
        Probe::Redis(r) => redis::probe(r, allow).await,
        Probe::Docker(t) => docker::probe(t, allow).await,
        Probe::Sql(q) => sql::probe(q, allow).await,
        Probe::Http(h) => http::probe(h, allow).await,
        Probe::Prometheus(q) => http::prometheus(q, allow).await,
        Probe::Kubernetes(t) => {
            allowed(drill_spec::allow::kubernetes(allow, t))?;
            kubernetes::probe_with(&kubernetes::client(t.context.as_deref()).await?, t, allow).await
        }
    }
}
