//! Command-line interface: argument parsing and the commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use drill_spec::{Loader, Outcome};

use crate::{files, render};

/// Everything passed, or nothing to do.
pub const EXIT_OK: u8 = 0;
/// A check or threshold failed.
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Invalid input or usage: nothing was executed.
pub const EXIT_INVALID: u8 = 2;
/// Aborted: a guard tripped, or an operator stopped the run.
pub const EXIT_ABORTED: u8 = 3;

const EXIT_CODES: &str = "\
Exit codes (all commands):
  0  ok
  1  a check or threshold failed
  2  invalid input or usage (nothing was executed)
  3  aborted (a guard tripped, or an operator stopped the run)
  4  a fault could not be reverted (the output says what is still changed)";

/// drill: chaos drills from YAML playbooks, with load, checks and a guaranteed revert.
#[derive(Debug, Parser)]
#[command(name = "drill", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check playbooks and drills: YAML, types, units, allow-list, timeline. Prints every
    /// error as PATH:LINE:COL: error: MESSAGE; exit 2 when there is any.
    Validate {
        /// Files or directories (their *.yaml and *.yml files).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where `uses:` finds drills (default: drills/ beside or above each playbook, and ./drills).
        #[arg(long = "drills", value_name = "DIR")]
        drills: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the exact timeline of a playbook: traffic stages, faults, reverts, actions,
    /// check windows and guards, the expected request count and the named targets.
    /// Contacts nothing.
    Plan {
        /// The playbook file.
        path: PathBuf,
        #[arg(long = "drills", value_name = "DIR")]
        drills: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Multiply every duration by F (0.1 rehearses a 9-minute plan in 54 s).
        #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = parse_scale)]
        time_scale: f64,
    },
    /// Run traffic only, k6-style: a playbook's traffic with its SLOs as thresholds (exit 1
    /// when one fails), or an ad-hoc load on one URL (--rate for the open model,
    /// --connections for a closed loop).
    Load(Box<crate::load::LoadArgs>),
    /// Run a playbook end to end: preflight, traffic, the drills on their timeline, guards,
    /// checks, and a guaranteed revert. Exit 0 passed, 1 a check failed, 3 aborted, 4 a fault
    /// is still changed.
    Apply(Box<crate::engine::ApplyArgs>),
    /// Bring up the reference target (API, Redis, PostgreSQL primary + replica, queue
    /// workers in Docker containers or as a process), run playbooks/local.yaml (or
    /// local-processes.yaml) against it time-scaled, print the verdicts, and tear everything
    /// down (unless --keep). Run it from the root of a checkout.
    Demo(crate::engine::DemoArgs),
    /// List past runs from the history store, newest first.
    Runs(crate::engine::RunsArgs),
    /// Print a run's report (Markdown, JSON or JUnit XML) from the history store.
    Report(crate::engine::ReportArgs),
    /// Revert every fault left changed by a run whose owner is gone (crashed, killed, lost its
    /// lease), from the ledger; mark such runs aborted. What a watchdog cron or CronJob runs.
    Recover(crate::engine::RecoverArgs),
    /// Restore what a fault changed, from its saved revert record (JSON): what `drill
    /// recover` does for each leftover fault, by hand. Idempotent.
    Revert {
        /// A revert record file, as the engine stores it.
        record: PathBuf,
    },
    /// Print the JSON Schema of playbooks and drills (for editors); the same file is
    /// committed as schema/drill.schema.json.
    Schema {
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

pub fn parse_scale(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("\"{s}\" is not a number"))?;
    if !(f.is_finite() && f > 0.0 && f <= 100.0) {
        return Err(format!(
            "time scale must be above 0 and at most 100, found {s}"
        ));
    }
    Ok(f)
}

/// Parses arguments and runs the command.
pub fn run() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_INVALID
            } else {
                EXIT_OK
            };
            let _ = e.print();
            return Ok(ExitCode::from(code));
        }
    };
    match cli.command {
        Command::Validate {
            paths,
            drills,
            output,
        } => validate(&paths, &drills, output),
        Command::Plan {
            path,
            drills,
            output,
            time_scale,
        } => plan(&path, &drills, output, time_scale),
        Command::Load(args) => crate::load::run(*args),
        Command::Apply(args) => crate::engine::apply(*args),
        Command::Demo(args) => crate::engine::demo(args),
        Command::Runs(args) => crate::engine::runs(args),
        Command::Report(args) => crate::engine::report(args),
        Command::Recover(args) => crate::engine::recover(args),
        Command::Revert { record } => revert(&record),
        Command::Schema { output } => schema(output),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub fn load(paths: &[PathBuf], drills: &[PathBuf]) -> Result<(Outcome, usize)> {
    let explicit = files::expand(paths)?;
    let library = files::library_dirs(&explicit, drills);
    let env = env_var;
    let mut loader = Loader::new(&env);
    let unreadable = files::load(&mut loader, &explicit, &library)?;
    Ok((loader.finish(), unreadable))
}

pub fn print_diags(outcome: &Outcome) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for d in &outcome.diags {
        let _ = writeln!(err, "{}", outcome.sources.render(d));
    }
}

fn validate(paths: &[PathBuf], drills: &[PathBuf], output: Output) -> Result<ExitCode> {
    let (outcome, unreadable) = load(paths, drills)?;
    let errors = outcome
        .diags
        .iter()
        .filter(|d| d.severity == drill_spec::Severity::Error)
        .count()
        + unreadable;
    match output {
        Output::Text => {
            print_diags(&outcome);
            if errors == 0 {
                println!(
                    "ok: {} playbook{}, {} drill{} valid",
                    outcome.playbooks.len(),
                    plural(outcome.playbooks.len()),
                    outcome.drills_checked,
                    plural(outcome.drills_checked)
                );
            } else {
                eprintln!(
                    "{errors} error{} found; nothing was executed",
                    plural(errors)
                );
            }
        }
        Output::Json => {
            let diags: Vec<serde_json::Value> = outcome
                .diags
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "file": outcome.sources.name(d.loc.src),
                        "line": d.loc.line,
                        "column": d.loc.col,
                        "severity": d.severity,
                        "message": d.message,
                        "hint": d.hint,
                    })
                })
                .collect();
            let report = serde_json::json!({
                "valid": errors == 0,
                "errors": errors,
                "playbooks": outcome.playbooks.iter().map(|p| &p.playbook.metadata.name).collect::<Vec<_>>(),
                "drills_checked": outcome.drills_checked,
                "diagnostics": diags,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(ExitCode::from(if errors == 0 {
        EXIT_OK
    } else {
        EXIT_INVALID
    }))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn plan(path: &PathBuf, drills: &[PathBuf], output: Output, scale: f64) -> Result<ExitCode> {
    let (outcome, unreadable) = load(std::slice::from_ref(path), drills)?;
    print_diags(&outcome);
    if outcome.has_errors() || unreadable > 0 {
        eprintln!(
            "the playbook is invalid; run `drill validate {}` for details",
            path.display()
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let Some(pb) = outcome.playbooks.first() else {
        eprintln!(
            "{}: error: no playbook in this file (kind: Playbook)",
            path.display()
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let plan = render::PlanView::new(pb, scale);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match output {
        Output::Text => plan.write_text(&mut out)?,
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?,
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// A fault could not be reverted; the output says what is still changed.
pub const EXIT_REVERT_FAILED: u8 = 4;

fn revert(path: &PathBuf) -> Result<ExitCode> {
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
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    match rt.block_on(drill_faults::revert(&record)) {
        Ok(drill_faults::Reverted::Restored(done)) => {
            for d in done {
                println!("restored: {d}");
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        Ok(drill_faults::Reverted::AlreadyRestored) => {
            println!("nothing to do: already in the recorded state (or gone)");
            Ok(ExitCode::from(EXIT_OK))
        }
        Ok(drill_faults::Reverted::Permanent(what)) => {
            println!("cannot be undone: {what}");
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(e) => {
            eprintln!("error: the revert failed: {e}");
            eprintln!(
                "still changed; to restore by hand: {}",
                record.manual_restore()
            );
            Ok(ExitCode::from(EXIT_REVERT_FAILED))
        }
    }
}

fn schema(output: Option<PathBuf>) -> Result<ExitCode> {
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(&drill_spec::json_schema())?
    );
    match output {
        Some(f) => {
            std::fs::write(&f, text).with_context(|| format!("cannot write {}", f.display()))?
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::from(EXIT_OK))
}
