//! `drill token add`: a token for the daemon's API, its hash appended to the token file
//! (`drill_daemon::tokens::add`), the token printed once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use drill_daemon::tokens::{Role, add, too_open};

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a random token: its hash is appended to FILE, the token printed once on
    /// standard output (it is not kept anywhere).
    Add {
        /// The token file the daemon reads (`--tokens`); created when missing (mode 0600).
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
        /// What the token may do: viewer, operator or admin.
        #[arg(long, value_parser = role)]
        role: Role,
        /// Who holds it (shown in the daemon's log and audit).
        #[arg(long, value_name = "NAME")]
        subject: String,
    },
}

fn role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: viewer, operator or admin"))
}

pub fn run(args: TokenArgs) -> Result<ExitCode> {
    let TokenCommand::Add {
        tokens,
        role,
        subject,
    } = args.command;
    if let Some(mode) = too_open(&tokens) {
        eprintln!(
            "drill: warning: {} is mode {mode:o}, readable by others; `chmod 600 {}`",
            tokens.display(),
            tokens.display()
        );
    }
    let token = match add(&tokens, role, &subject) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("drill token add: {e:#}");
            return Ok(exit::code(exit::INVALID));
        }
    };
    println!("{token}");
    eprintln!(
        "drill: the {} token of {subject} is printed above, once; {} keeps only its hash",
        role.as_str(),
        tokens.display()
    );
    Ok(exit::code(exit::OK))
}
