//! How a run runs ([`Options`]): what `drill apply`'s flags and the daemon's settings become.

use std::path::PathBuf;
use std::time::Duration;

use crate::Log;

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// Multiplies every duration of the playbook (0.1 runs a 9-minute plan in 54 s).
    pub time_scale: f64,
    /// Preflight only: resolve targets, read probes, print what would change; no mutation,
    /// no traffic, nothing stored.
    pub dry_run: bool,
    /// Where the reports go (a directory per run).
    pub report_dir: Option<PathBuf>,
    /// How long a run's lease lasts without a heartbeat (renewed every third of it).
    pub lease: Duration,
    /// How long a failing revert is retried before the run gives up (exit 4).
    pub revert_budget: Duration,
    pub log: Log,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("time_scale", &self.time_scale)
            .field("dry_run", &self.dry_run)
            .field("report_dir", &self.report_dir)
            .field("lease", &self.lease)
            .field("revert_budget", &self.revert_budget)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_scale: 1.0,
            dry_run: false,
            report_dir: None,
            lease: Duration::from_secs(15),
            revert_budget: Duration::from_secs(120),
            log: crate::quiet(),
        }
    }
}
