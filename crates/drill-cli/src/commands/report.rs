//! `drill report RUN`: a run's report from the history store.

use std::process::ExitCode;

use anyhow::Result;

use crate::exit;
use crate::support::{DbArg, runtime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Junit,
}

/// The options of `drill report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run (its id, or a unique prefix; `drill runs` lists them).
    pub run: String,
    /// Report format: Markdown, JSON or JUnit XML.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let text = runtime()?.block_on(async {
        let store = args.db.open().await?;
        let Some(run) = store.run(&args.run).await? else {
            return anyhow::Ok(Err(format!(
                "no run {} in {}; `drill runs` lists them",
                args.run,
                store.url()
            )));
        };
        let fmt = match args.format {
            Format::Md => "markdown",
            Format::Json => "json",
            Format::Junit => "junit",
        };
        Ok(store.report(&run.id, fmt).await?.ok_or_else(|| {
            format!(
                "run {} has no report yet (status {}{})",
                run.id,
                run.status,
                run.reason.map(|r| format!(": {r}")).unwrap_or_default()
            )
        }))
    })?;
    match text {
        Ok(t) => {
            print!("{t}");
            if !t.ends_with('\n') {
                println!();
            }
            Ok(exit::code(exit::OK))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit::code(exit::INVALID))
        }
    }
}
