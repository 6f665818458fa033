//! `drill plan`: the exact timeline of a playbook; contacts nothing.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::support::{Output, load, parse_scale, print_diags};
use crate::{exit, render};

/// The options of `drill plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The playbook file.
    pub path: PathBuf,
    /// Where `uses:` finds drills (default: drills/ beside or above the playbook, and ./drills).
    #[arg(long = "drills", value_name = "DIR")]
    pub drills: Vec<PathBuf>,
    /// Output format: text for people, json for tools.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Multiply every duration by F (0.1 rehearses a 9-minute plan in 54 s).
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = parse_scale)]
    pub time_scale: f64,
}

pub fn run(args: PlanArgs) -> Result<ExitCode> {
    let (path, drills, output, scale) = (&args.path, &args.drills, args.output, args.time_scale);
    let (outcome, unreadable) = load(std::slice::from_ref(path), drills)?;
    print_diags(&outcome);
    if outcome.has_errors() || unreadable > 0 {
        eprintln!(
            "the playbook is invalid; run `drill validate {}` for details",
            path.display()
        );
        return Ok(exit::code(exit::INVALID));
    }
    let Some(pb) = outcome.playbooks.first() else {
        eprintln!(
            "{}: error: no playbook in this file (kind: Playbook)",
            path.display()
        );
        return Ok(exit::code(exit::INVALID));
    };
    let plan = render::PlanView::new(pb, scale);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match output {
        Output::Text => plan.write_text(&mut out)?,
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?,
    }
    Ok(exit::code(exit::OK))
}
