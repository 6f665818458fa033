//! What the commands share: loading playbooks, the history store argument, durations, the
//! runtime, signals, and the log line printer.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use drill_engine::{Log, Store};
use drill_spec::Outcome;
use drill_spec::policy::Policy;
use drill_spec::units::Dur;

/// Where the run history is kept.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArg {
    /// The history store: a SQLite file path (default: ~/.local/share/drill/history.db) or a
    /// postgres:// URL. DATABASE_URL is used when this is not given.
    #[arg(long, value_name = "PATH|URL", global = true)]
    pub db: Option<String>,
}

impl DbArg {
    pub fn url(&self) -> Result<String> {
        let url = self
            .db
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| drill_engine::store::default_path().display().to_string());
        if let Some((scheme, _)) = url.split_once("://")
            && !matches!(scheme, "postgres" | "postgresql" | "sqlite")
        {
            bail!(
                "--db {}: the history store is a SQLite file or a postgres:// URL",
                drill_spec::redact::url(&url)
            );
        }
        Ok(url)
    }

    pub async fn open(&self) -> Result<Store> {
        Ok(Store::open(&self.url()?).await?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

pub fn dur(s: &str, flag: &str) -> Result<Duration> {
    s.parse::<Dur>()
        .map(|d| d.0)
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Watches SIGINT and SIGTERM (call inside the runtime): the first calls `first` with the
/// signal's name; the second prints `again` and exits at once (exit 3, aborted).
pub fn on_signals(first: impl FnOnce(&'static str) + Send + 'static, again: &'static str) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let mut first = Some(first);
        loop {
            let name = tokio::select! {
                r = tokio::signal::ctrl_c() => { if r.is_err() { return; } "SIGINT" }
                _ = term.recv() => "SIGTERM",
            };
            match first.take() {
                Some(f) => f(name),
                None => {
                    eprintln!("drill: {name} again: {again}");
                    std::process::exit(i32::from(crate::exit::ABORTED));
                }
            }
        }
    });
}

/// A log that prints above the progress bar when there is one.
pub fn log_to(bar: Option<indicatif::ProgressBar>) -> Log {
    Arc::new(move |line: &str| match &bar {
        Some(b) => {
            b.set_message(line.to_owned());
            b.println(line);
        }
        None => eprintln!("{line}"),
    })
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

pub fn load(paths: &[PathBuf], drills: &[PathBuf]) -> Result<(Outcome, usize)> {
    load_scoped(paths, drills, None)
}

/// Loads playbooks, validated against a policy when one is in force; each named file that
/// cannot be read is printed as `PATH: error: …` and counted.
pub fn load_scoped(
    paths: &[PathBuf],
    drills: &[PathBuf],
    policy: Option<&Policy>,
) -> Result<(Outcome, usize)> {
    let (outcome, unreadable) = drill_engine::files::load_scoped(paths, drills, policy)?;
    for u in &unreadable {
        eprintln!("{u}");
    }
    Ok((outcome, unreadable.len()))
}

/// `--policy FILE`: the operator's policy (`kind: Policy`, see docs/SECURITY.md).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArg {
    /// Check every playbook against an operator's policy (kind: Policy): its targets inside
    /// the policy's envelope, its actions and sizes within the policy's limits.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

impl PolicyArg {
    /// The policy, or `Err` after printing its errors (file:line:col) to stderr.
    pub fn read(&self) -> std::result::Result<Option<Policy>, ()> {
        let Some(path) = &self.policy else {
            return Ok(None);
        };
        read_policy(path).map(Some)
    }
}

/// Reads and validates a policy file; prints every error, located, when it is not valid.
pub fn read_policy(path: &std::path::Path) -> std::result::Result<Policy, ()> {
    let name = path.display().to_string();
    let text = match drill_engine::files::read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            return Err(());
        }
    };
    drill_spec::policy::parse(&name, &text).map_err(|(diags, sources)| {
        for d in &diags {
            eprintln!("{}", sources.render(d));
        }
        eprintln!("the policy {name} is invalid; nothing was executed");
    })
}

pub fn print_diags(outcome: &Outcome) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for d in &outcome.diags {
        let _ = writeln!(err, "{}", outcome.sources.render(d));
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
