//! `drill report RUN`: a run's report from the history store, in any format, and the
//! baseline gate (`--compare OTHER_RUN`, `--baseline last-pass`).

use std::process::ExitCode;

use anyhow::Result;
use drill_engine::Store;
use drill_engine::store::RunRow;
use drill_report::{Report, compare, html};

use crate::exit;
use crate::support::{DbArg, runtime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Junit,
    Html,
}

/// The options of `drill report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run (its id, or a unique prefix; `drill runs` lists them).
    pub run: String,
    /// Report format: Markdown (the default), JSON, JUnit XML or HTML (one self-contained
    /// page with the SVG timeline; works offline). With --compare or --baseline: a text table
    /// by default, or md or json.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Compare the run with another run instead (its id or a unique prefix): per scope and
    /// SLO metric the change; exit 1 when a metric is over 10% worse.
    #[arg(long, value_name = "RUN", conflicts_with = "baseline")]
    pub compare: Option<String>,
    /// Compare with a baseline run: `last-pass` (the newest passed run of the same playbook
    /// that started before this one) or a run id. Exit 1 on a regression over 10%.
    #[arg(long, value_name = "last-pass|RUN")]
    pub baseline: Option<String>,
    #[command(flatten)]
    pub db: DbArg,
}

/// A stored run and its report, or what to say instead.
pub async fn run_and_report(store: &Store, id: &str) -> Result<Result<(RunRow, Report), String>> {
    Ok(stored_json(store, id)
        .await?
        .and_then(|(run, text)| match drill_report::parse(&text) {
            Ok(r) => Ok((run, r)),
            Err(e) => Err(format!(
                "the stored report of run {} does not read as a drill report: {e}",
                run.id
            )),
        }))
}

/// A stored run and its report's JSON as stored, or what to say instead.
async fn stored_json(store: &Store, id: &str) -> Result<Result<(RunRow, String), String>> {
    let Some(run) = store.run(id).await? else {
        return Ok(Err(format!(
            "no run {id} in {}; `drill runs` lists them",
            store.url()
        )));
    };
    let Some(text) = store.report(&run.id, "json").await? else {
        return Ok(Err(format!(
            "run {} has no report yet (status {}{})",
            run.id,
            run.status,
            run.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )));
    };
    Ok(Ok((run, text)))
}

/// The baseline run named by `--baseline` (`last-pass` or an id) for `run`.
pub async fn baseline_of(
    store: &Store,
    run: &RunRow,
    which: &str,
) -> Result<Result<(RunRow, Report), String>> {
    if which != "last-pass" {
        return run_and_report(store, which).await;
    }
    match store.last_pass_before(run).await? {
        Some(b) => run_and_report(store, &b.id).await,
        None => Ok(Err(format!(
            "no passed run of playbook {} before run {}: nothing to compare with (the first passing run becomes the baseline)",
            run.playbook, run.id
        ))),
    }
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.db.open().await?;
        let format = args.format.unwrap_or(Format::Md);
        let compared = args.compare.is_some() || args.baseline.is_some();
        if !compared && format == Format::Json {
            // As stored, byte for byte: what the run wrote.
            let (_, text) = match stored_json(&store, &args.run).await? {
                Ok(x) => x,
                Err(e) => return Ok(invalid(&e)),
            };
            println!("{}", text.trim_end());
            return Ok(exit::code(exit::OK));
        }
        let (run, report) = match run_and_report(&store, &args.run).await? {
            Ok(x) => x,
            Err(e) => return Ok(invalid(&e)),
        };
        if let Some(other) = args.compare.as_deref().or(args.baseline.as_deref()) {
            let base = if args.compare.is_some() {
                run_and_report(&store, other).await?
            } else {
                baseline_of(&store, &run, other).await?
            };
            let (_, base) = match base {
                Ok(x) => x,
                Err(e) => return Ok(invalid(&e)),
            };
            let c = compare::compare(&base, &report);
            match args.format {
                Some(Format::Json) => println!("{}", serde_json::to_string_pretty(&c)?),
                Some(Format::Md) => print!("{}", c.markdown()),
                _ => print!("{}", c.table()),
            }
            return Ok(exit::code(if c.has_regression() {
                exit::CHECK_FAILED
            } else {
                exit::OK
            }));
        }
        let text = match format {
            Format::Json => serde_json::to_string_pretty(&report)?,
            Format::Html => html::render(&report),
            Format::Md | Format::Junit => {
                let fmt = if format == Format::Md {
                    "markdown"
                } else {
                    "junit"
                };
                store.report(&run.id, fmt).await?.unwrap_or_default()
            }
        };
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
        anyhow::Ok(exit::code(exit::OK))
    })
}

fn invalid(e: &str) -> ExitCode {
    eprintln!("error: {e}");
    exit::code(exit::INVALID)
}
