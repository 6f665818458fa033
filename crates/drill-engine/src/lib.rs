//! drill-engine: runs a validated playbook end to end and never leaves a fault behind.
//!
//! What it is:
//! - [`store`] — the run history and the write-ahead fault ledger (sqlx: SQLite by default,
//!   PostgreSQL for `postgres://`), with target locks and run leases.
//! - [`recover`] — the reconciler: reverts every fault whose run has no live owner, from the
//!   record stored before the fault was applied (`drill recover`, and every start-up).
//! - [`run`] — `drill apply`: preflight (fail closed), setup, the traffic for the whole run,
//!   each drill on its timeline (baseline → inject → hold → revert → recovery), guards at
//!   least every second, checks with their measured values, the final revert sweep, reports.
//! - [`report`] — the run report as JSON, Markdown and JUnit XML.
//!
//! What it is not: it parses nothing (`drill-spec` does), sends no request itself
//! (`drill-load` does) and touches no target itself (`drill-faults` does). No CLI.

use std::sync::Arc;

pub mod checks;
mod context;
mod drill;
pub mod error;
mod guards;
mod handle;
mod live;
pub mod outcome;
pub mod owner;
pub mod preflight;
pub mod recover;
pub mod report;
pub mod run;
pub mod status;
pub mod store;

pub use context::Abort;
pub use error::EngineError;
pub use handle::{RunHandle, start};
pub use outcome::{Outcome, Status};
pub use run::{Options, apply};
pub use status::LiveStatus;
pub use store::Store;

/// An error and its sources, joined by ": ", the way the engine prints errors in its log
/// lines and reasons (library errors keep their sources as `#[source]`, not in their text).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Where the engine writes its progress lines (the CLI prints them to standard error).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// A log that drops everything.
pub fn quiet() -> Log {
    Arc::new(|_| {})
}

/// The environment variable that stops the process at a crash point, for the crash-safety
/// tests: `intent` (the intent is stored, the fault not applied), `applied` (the fault is
/// applied, the ledger does not say so yet), `reverting` (a revert went through, the ledger
/// does not say so yet). The process prints `drill: crash point NAME` and waits to be killed.
pub const CRASH_POINT_ENV: &str = "DRILL_CRASH_POINT";

pub(crate) fn crash_point(name: &str) {
    if std::env::var(CRASH_POINT_ENV).is_ok_and(|v| v == name) {
        eprintln!("drill: crash point {name}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
