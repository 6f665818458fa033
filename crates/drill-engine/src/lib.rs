//! drill-engine: runs a validated playbook end to end and never leaves a fault behind.
//!
//! What it is, by role (each file one job, no two files importing each other):
//! - [`run`] — one run: reconcile, lease and locks, the heartbeat; then `execute`, its
//!   stages (preflight and setup, traffic with the drills and guards, sweep and teardown, a
//!   pure verdict, the reports). [`apply`] awaits it; [`start`] spawns it and returns a
//!   [`RunHandle`] (abort, a watch of [`LiveStatus`], the outcome).
//! - [`preflight`] — URLs resolved by the spec's one rule, lock keys, every fault prepared
//!   and every probe read before the first mutation (fail closed).
//! - `drill` — one drill's state machine: start, baseline, inject, hold, revert, recovery,
//!   checks. `guards` — the guards, at least every second. `live` — every mutation of the
//!   run through the ledger (inject, revert, sweep) and its steps and actions, each fenced:
//!   made only after the store confirmed, in the write that records it, that this process
//!   still holds the run's lease at its epoch.
//! - `context` — the state a run's tasks share (clock, [`Abort`], the lease and whether it
//!   was lost, recorder, live ledger). `lines` — where a run's lines go: redacted, to the
//!   caller's [`Log`] as text and to `tracing` as events, with fields where they matter
//!   ([`emit`] is the level rule the daemon's own lines share).
//! - [`outcome`] — the typed result (per drill, check, fault) the CLI, reports and daemon
//!   read, with the first cause of a failure in words; [`status`] — the live status;
//!   [`report`] — the outcome, the traffic and the ledger built into one
//!   `drill_report::Report` (with the per-second timeline), redacted, and every rendering
//!   of it (the renderers, the baseline gate and the trend are `drill-report`'s).
//! - [`files`] — playbook and drill files read from disk into the spec's loader (the CLI's
//!   and the daemon's one way to read them).
//! - [`store`] — run history, write-ahead fault ledger, target locks, leases on the store's
//!   clock and the fence (SQLite or PostgreSQL); [`recover`] — the reconciler that claims
//!   runs without a live owner and settles what they left, reading the targets first
//!   (`drill recover`, and every start-up); [`owner`] — who owns a run.
//! - [`shards`] — a distributed run's traffic: N shard processes (local, or an Indexed Job
//!   recorded in the ledger) split the one schedule and report per second to the store;
//!   the engine adds their HdrHistograms up into the run's recorder (`shards::collect`), so
//!   everything is judged once. `shards::runner` is the shard's side (`drill load --run`).
//! - [`checks`] — a check's measured value against its limit.
//! - [`schedule`] — the scheduler (CronJob semantics) that decides which nominal times run
//!   and records the rest as missed; [`fires`] — its records and the halt, in the store.
//!   It starts nothing: the daemon (`drill-daemon`) starts what it returns.
//!
//! What it is not: it parses nothing (`drill-spec` does), sends no request itself
//! (`drill-load` does) and touches no target itself (`drill-faults` does). No CLI.

use std::sync::Arc;

pub mod checks;
mod context;
mod drill;
pub mod error;
mod execute;
pub mod files;
pub mod fires;
mod guards;
mod handle;
mod lines;
mod live;
mod options;
pub mod outcome;
pub mod owner;
pub mod preflight;
pub mod recover;
pub mod report;
pub mod run;
pub mod schedule;
pub mod seal;
pub mod shards;
pub mod status;
pub mod store;

pub use context::Abort;
pub use error::EngineError;
pub use handle::{RunHandle, start};
pub use lines::emit;
pub use outcome::{Outcome, Status};
pub use run::{Options, apply};
pub use status::{LATENCY_BUCKETS_S, LiveStatus, PhaseLatency};
pub use store::Store;

/// An error and its sources, joined by ": " (one printer, in drill-faults, for every crate).
pub use drill_faults::chain;

/// Where the engine writes its progress lines (the CLI prints them to standard error).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// A log that drops everything.
pub fn quiet() -> Log {
    Arc::new(|_| {})
}

/// The environment variable that stops the process at a crash point, for the crash-safety
/// tests: `intent` (the intent is stored, the fault not applied), `applied` (the fault is
/// applied, the ledger does not say so yet), `reverting` (a revert went through, the ledger
/// does not say so yet), `before-STEP` (a composite's step is recorded as begun, its call not
/// made), `after-STEP` (a composite's step is done, the next not started).
/// The process prints `drill: crash point NAME` and waits to be killed.
pub const CRASH_POINT_ENV: &str = "DRILL_CRASH_POINT";

/// The environment variable that freezes the process at one of the same points: it prints
/// `drill: freeze point NAME` and stops itself (SIGSTOP, every thread at once, as a hung
/// process would); SIGCONT resumes it right there. For the fencing tests.
pub const FREEZE_POINT_ENV: &str = "DRILL_FREEZE_POINT";

pub(crate) fn crash_point(name: &str) {
    if std::env::var(CRASH_POINT_ENV).is_ok_and(|v| v == name) {
        eprintln!("drill: crash point {name}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    if std::env::var(FREEZE_POINT_ENV).is_ok_and(|v| v == name) {
        eprintln!("drill: freeze point {name}");
        if let Err(e) = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP) {
            eprintln!("drill: cannot freeze: {e}");
        }
    }
}
