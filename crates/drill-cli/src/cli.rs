//! Command-line interface: the subcommands and their dispatch. Each subcommand's arguments
//! and code live in `commands/NAME.rs`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::commands::{
    apply, daemon, demo, load, plan, recover, report, revert, runs, schema, token, validate,
};
use crate::exit;

/// drill: chaos drills from YAML playbooks, with load, checks and a guaranteed revert.
#[derive(Debug, Parser)]
#[command(name = "drill", version, after_help = exit::HELP, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check playbooks and drills: YAML, types, units, allow-list, timeline. Prints every
    /// error as PATH:LINE:COL: error: MESSAGE; exit 2 when there is any.
    Validate(validate::ValidateArgs),
    /// Print the exact timeline of a playbook: traffic stages, faults, reverts, actions,
    /// check windows and guards, the expected request count and the named targets.
    /// Contacts nothing.
    Plan(plan::PlanArgs),
    /// Run traffic only, k6-style: a playbook's traffic with its SLOs as thresholds (exit 1
    /// when one fails), or an ad-hoc load on one URL (--rate for the open model,
    /// --connections for a closed loop).
    Load(Box<load::LoadArgs>),
    /// Run a playbook end to end: preflight, traffic, the drills on their timeline, guards,
    /// checks, and a guaranteed revert. Exit 0 passed, 1 a check failed, 3 aborted, 4 a fault
    /// is still changed.
    Apply(Box<apply::ApplyArgs>),
    /// Bring up the reference target (API, Redis, PostgreSQL primary + replica, queue
    /// workers in Docker containers or as a process), run playbooks/local.yaml (or
    /// local-processes.yaml) against it time-scaled, print the verdicts, and tear everything
    /// down (unless --keep). Run it from the root of a checkout.
    Demo(demo::DemoArgs),
    /// List past runs from the history store, newest first.
    Runs(runs::RunsArgs),
    /// Print a run's report (Markdown, JSON or JUnit XML) from the history store.
    Report(report::ReportArgs),
    /// Revert every fault left changed by a run whose owner is gone (crashed, killed, lost its
    /// lease), from the ledger; mark such runs aborted. What a watchdog cron or CronJob runs.
    Recover(recover::RecoverArgs),
    /// Restore what a fault changed, from its saved revert record (JSON): what `drill
    /// recover` does for each leftover fault, by hand. Idempotent.
    Revert(revert::RevertArgs),
    /// Print the JSON Schema of playbooks and drills (for editors); the same file is
    /// committed as schema/drill.schema.json.
    Schema(schema::SchemaArgs),
    /// Run the playbooks of a directory on their `schedule:` (Kubernetes CronJob semantics:
    /// each nominal time ends as one run or one missed record), recover at start-up and
    /// periodically, obey a halt within 2 s.
    Daemon(Box<daemon::DaemonArgs>),
    /// Halt every daemon on the store: runs are aborted and their faults reverted within
    /// 2 s, and nothing fires (recorded as missed, reason `halted`) until `drill resume`.
    Halt(daemon::HaltArgs),
    /// Lift a halt: the daemons fire their schedules again.
    Resume(daemon::ResumeArgs),
    /// Manage the daemon's API tokens.
    Token(token::TokenArgs),
}

/// Parses arguments and runs the command.
pub fn run() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::INVALID
            } else {
                exit::OK
            };
            let _ = e.print();
            return Ok(exit::code(code));
        }
    };
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Load(args) => load::run(*args),
        Command::Apply(args) => apply::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Report(args) => report::run(args),
        Command::Recover(args) => recover::run(args),
        Command::Revert(args) => revert::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Daemon(args) => daemon::run(*args),
        Command::Halt(args) => daemon::halt(args),
        Command::Resume(args) => daemon::resume(args),
        Command::Token(args) => token::run(args),
    }
}
