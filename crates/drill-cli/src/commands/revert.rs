//! `drill revert RECORD.json`: restore what one fault changed, from its saved record. The
//! target is read first ([`drill_faults::settle`]); a promotion's route switch is run again
//! (the record does not say whether it completed, and a route switch must be idempotent).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::exit;

/// The options of `drill revert`.
#[derive(Debug, clap::Args)]
pub struct RevertArgs {
    /// A revert record file, as the engine stores it.
    pub record: PathBuf,
}

pub fn run(args: RevertArgs) -> Result<ExitCode> {
    let path = &args.record;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let record: drill_faults::RevertRecord = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{}:{}:{}: error: not a revert record: {e}",
                path.display(),
                e.line(),
                e.column()
            );
            return Ok(exit::code(exit::INVALID));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    match rt.block_on(drill_faults::settle(&record, &[], &drill_faults::unguarded)) {
        Ok(drill_faults::Reverted::Restored(done)) => {
            for d in done {
                println!("restored: {d}");
            }
            Ok(exit::code(exit::OK))
        }
        Ok(drill_faults::Reverted::AlreadyRestored) => {
            println!("nothing to do: already in the recorded state (or gone)");
            Ok(exit::code(exit::OK))
        }
        Ok(drill_faults::Reverted::Permanent(what)) => {
            println!("changed for good: {what}");
            Ok(exit::code(exit::OK))
        }
        Ok(drill_faults::Reverted::NotApplied(what)) => {
            println!("nothing changed: {what}");
            Ok(exit::code(exit::OK))
        }
        Err(e) => {
            eprintln!("error: the revert failed: {}", drill_engine::chain(&e));
            eprintln!(
                "still changed; to restore by hand: {}",
                record.manual_restore()
            );
            Ok(exit::code(exit::REVERT_FAILED))
        }
    }
}
