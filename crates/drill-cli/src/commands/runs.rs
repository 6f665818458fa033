//! `drill runs`: the run history, newest first; with `--playbook NAME`, that playbook's
//! trend across runs (verdict, each drill's recovery time, p95 per phase), oldest first.

use std::process::ExitCode;

use anyhow::Result;

use crate::exit;
use crate::support::{DbArg, Output, runtime};

/// The options of `drill runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// One playbook's runs as a trend, oldest first: each run's verdict and p95, each
    /// drill's recovery time and p95 in its baseline, fault and recovery phases (from the
    /// stored reports), the checks that failed.
    #[arg(long, value_name = "NAME")]
    pub playbook: Option<String>,
    /// Output format: text for people, json for tools.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Ask a `drill daemon` (its API's base URL) instead of the store; token from
    /// DRILL_TOKEN.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn run(args: RunsArgs) -> Result<ExitCode> {
    if let Some(name) = &args.playbook {
        return trend(&args, name);
    }
    let rows: Vec<drill_engine::store::RunRow> = if let Some(server) = &args.server {
        let path = format!("/api/v1/runs?limit={}", args.limit);
        match super::remote::call(server, "GET", &path, None)? {
            Err(code) => return Ok(exit::code(code)),
            Ok((200, v)) => {
                super::remote::read::<super::remote::reply::Runs>(v, "GET /api/v1/runs")?.runs
            }
            Ok((status, v)) => return Ok(super::remote::refused(server, status, &v)),
        }
    } else {
        runtime()?.block_on(async {
            let store = args.db.open().await?;
            anyhow::Ok(store.runs(args.limit).await?)
        })?
    };
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::code(exit::OK));
    }
    if rows.is_empty() {
        println!("no runs yet");
        return Ok(exit::code(exit::OK));
    }
    println!(
        "{:<22} {:<20} {:<24} {:<14} {:>9}  REASON",
        "RUN", "STARTED (UTC)", "PLAYBOOK", "STATUS", "DURATION"
    );
    for r in rows {
        let started = chrono::DateTime::from_timestamp_millis(r.started_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let took = r
            .finished_ms
            .map(|f| format!("{:.1}s", (f - r.started_ms) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let mut reason = r.reason.unwrap_or_default();
        if reason.len() > 80 {
            let mut cut = 77;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push_str("...");
        }
        println!(
            "{:<22} {:<20} {:<24} {:<14} {:>9}  {}",
            r.id, started, r.playbook, r.status, took, reason
        );
    }
    Ok(exit::code(exit::OK))
}

/// `--playbook NAME`: the trend, from the store or a daemon's API.
fn trend(args: &RunsArgs, name: &str) -> Result<ExitCode> {
    use drill_report::trend;
    let mut points: Vec<trend::Point> = Vec::new();
    if let Some(server) = &args.server {
        // The API lists the newest runs; those of this playbook are read one report at a time.
        let path = format!("/api/v1/runs?limit={}", args.limit.max(1) * 10);
        let rows: Vec<drill_engine::store::RunRow> =
            match super::remote::call(server, "GET", &path, None)? {
                Err(code) => return Ok(exit::code(code)),
                Ok((200, v)) => {
                    super::remote::read::<super::remote::reply::Runs>(v, "GET /api/v1/runs")?.runs
                }
                Ok((status, v)) => return Ok(super::remote::refused(server, status, &v)),
            };
        for r in rows
            .iter()
            .filter(|r| r.playbook == name)
            .take(usize::try_from(args.limit).unwrap_or(20))
        {
            let path = format!("/api/v1/runs/{}/report?format=json", r.id);
            let report = match super::remote::call(server, "GET", &path, None)? {
                Ok((200, v)) => serde_json::from_value::<drill_report::Report>(v).ok(),
                _ => None,
            };
            points.push(trend::point(
                &r.id,
                r.started_ms,
                &r.status,
                report.as_ref(),
            ));
        }
    } else {
        points = runtime()?.block_on(async {
            let store = args.db.open().await?;
            let mut out = Vec::new();
            for r in store.runs_of(name, args.limit).await? {
                let report = store
                    .report(&r.id, "json")
                    .await?
                    .and_then(|t| drill_report::parse(&t).ok());
                out.push(trend::point(
                    &r.id,
                    r.started_ms,
                    &r.status,
                    report.as_ref(),
                ));
            }
            anyhow::Ok(out)
        })?;
    }
    points.reverse();
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&points)?);
    } else if points.is_empty() {
        println!("no runs of playbook {name} yet");
    } else {
        print!("{}", trend::table(&points));
    }
    Ok(exit::code(exit::OK))
}
