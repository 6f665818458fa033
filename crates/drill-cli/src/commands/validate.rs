//! `drill validate`: every error of playbooks and drills, located.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::exit;
use crate::support::{Output, PolicyArg, load_scoped, plural, print_diags};

/// The options of `drill validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or directories (their *.yaml and *.yml files).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Where `uses:` finds drills (default: drills/ beside or above each playbook, and ./drills).
    #[arg(long = "drills", value_name = "DIR")]
    pub drills: Vec<PathBuf>,
    /// Output format: text for people, json for tools.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub policy: PolicyArg,
}

pub fn run(args: ValidateArgs) -> Result<ExitCode> {
    let ValidateArgs {
        paths,
        drills,
        output,
        policy,
    } = args;
    let Ok(policy) = policy.read() else {
        return Ok(exit::code(exit::INVALID));
    };
    let (outcome, unreadable) = load_scoped(&paths, &drills, policy.as_ref())?;
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
                // The drills the playbooks run (resolved, parameters filled), and the drill
                // documents named on the command line, checked on their own.
                let used: usize = outcome.playbooks.iter().map(|p| p.drills.len()).sum();
                let docs = if outcome.drills_checked > 0 {
                    format!(
                        ", {} drill document{}",
                        outcome.drills_checked,
                        plural(outcome.drills_checked)
                    )
                } else {
                    String::new()
                };
                println!(
                    "ok: {} playbook{} ({used} drill{} resolved){docs} valid",
                    outcome.playbooks.len(),
                    plural(outcome.playbooks.len()),
                    plural(used),
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
                "drills_resolved": outcome.playbooks.iter().map(|p| p.drills.len()).sum::<usize>(),
                "diagnostics": diags,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(exit::code(if errors == 0 {
        exit::OK
    } else {
        exit::INVALID
    }))
}
