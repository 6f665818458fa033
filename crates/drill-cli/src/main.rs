//! `drill`: validate, plan and run chaos drills from YAML playbooks.

use std::process::ExitCode;

mod cli;
mod commands;
mod exit;
mod render;
mod support;
mod verdict;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("drill: error: {e:#}");
            exit::code(exit::INVALID)
        }
    }
}
