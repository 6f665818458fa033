//! `drill schema`: the JSON Schema of playbooks and drills.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::exit;

/// The options of `drill schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: SchemaArgs) -> Result<ExitCode> {
    let output = args.output;
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
    Ok(exit::code(exit::OK))
}
