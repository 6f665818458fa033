//! `drill recover`: take over the runs without a live owner (an expired lease on the store's
//! clock, or a dead process on this host) and settle what they left changed, saying what the
//! targets were found in.

use std::process::ExitCode;

use anyhow::Result;

use crate::exit;
use crate::support::{DbArg, dur, log_to, runtime};

/// The options of `drill recover`.
#[derive(Debug, clap::Args)]
pub struct RecoverArgs {
    /// How long each failing revert is retried.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub revert_timeout: String,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn run(args: RecoverArgs) -> Result<ExitCode> {
    let budget = dur(&args.revert_timeout, "revert-timeout")?;
    let log = log_to(None);
    let rec = match runtime()?.block_on(async {
        let store = args.db.open().await?;
        anyhow::Ok(drill_engine::recover::reconcile(&store, None, budget, &log).await?)
    }) {
        Ok(r) => r,
        Err(e) if format!("{e:#}").contains("database is locked") => {
            eprintln!("drill: error: {e:#}");
            eprintln!(
                "  another process holds the history store's write lock and does not let go: a drill frozen (SIGSTOP, a hung host) in the middle of a write. Nothing was changed. Find it (`drill runs` names each run's owner: host/pid/…), resume or kill it, then run `drill recover` again"
            );
            return Ok(exit::code(exit::INVALID));
        }
        Err(e) => return Err(e),
    };
    if rec.is_empty() {
        println!("nothing to recover: no run without a live owner has anything changed");
        return Ok(exit::code(exit::OK));
    }
    for (run, reason) in &rec.runs {
        println!("run {run}: {reason}");
    }
    for (run, f, what) in &rec.reverted {
        println!("run {run}: {f}: {what}");
    }
    for (run, f, what) in &rec.not_applied {
        println!("run {run}: {f}: {what}");
    }
    for (run, f, what) in &rec.permanent {
        println!("run {run}: {f}: {what}");
    }
    for (run, f, e, how) in &rec.failed {
        eprintln!("STILL CHANGED: run {run}: {f}: {e}\n  to fix by hand: {how}");
    }
    Ok(ExitCode::from(if rec.failed.is_empty() {
        exit::OK
    } else {
        exit::REVERT_FAILED
    }))
}
