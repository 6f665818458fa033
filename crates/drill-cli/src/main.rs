//! `drill`: validate, plan and run chaos drills from YAML playbooks.

use std::process::ExitCode;

mod cli;
mod engine;
mod files;
mod load;
mod render;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("drill: error: {e:#}");
            ExitCode::from(cli::EXIT_INVALID)
        }
    }
}
