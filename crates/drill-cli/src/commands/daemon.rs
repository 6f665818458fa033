//! `drill daemon`: the command line of `drill_daemon` — its flags, its logger (`tracing`
//! events, `--log-format text|json`; the engine opens a `run` span, so each line a run logs
//! names it), and its signals (the first SIGTERM/SIGINT stops it: firing nothing more, its
//! runs aborted and reverted; a second exits at once and `drill recover` finishes later).
//! What the daemon does is `drill_daemon`'s.
//!
//! `drill halt` / `drill resume` stop and restart every daemon on a store, through the store
//! or through a daemon's API (`--server`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use drill_daemon::{Config, Stop, serve, tokens};
use drill_engine::Log;
use drill_spec::policy::Policy;

use crate::exit;
use crate::support::{DbArg, dur, parse_scale, runtime};

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// The directory of playbooks (`*.yaml`, `*.yml`); those with a `schedule:` run on it.
    /// Read again when a file in it changes.
    #[arg(long, value_name = "DIR")]
    pub playbooks: PathBuf,
    /// Where `uses:` finds drills (default: drills/ beside or above the playbooks, and
    /// ./drills).
    #[arg(long = "drills", value_name = "DIR")]
    pub drills: Vec<PathBuf>,
    /// Where each run's reports go (a directory per run).
    #[arg(long, value_name = "DIR", default_value = "drill-reports")]
    pub report_dir: PathBuf,
    /// Multiply every duration of the playbooks' runs by F (not the schedules).
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = parse_scale)]
    pub time_scale: f64,
    /// How long a failing revert is retried before a run gives up.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub revert_timeout: String,
    /// How long a run's lease lasts without a heartbeat.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub lease: String,
    /// How often `drill recover` runs over the store (the watchdog).
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    pub watchdog: String,
    /// Serve the HTTP API on this address, like 127.0.0.1:8090 (needs --tokens).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The API's token file (`drill token add` writes it); required with --listen.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Serve the API over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve /metrics without a token (for a Prometheus scraper inside the cluster); by
    /// default it needs a viewer token like every other route.
    #[arg(long)]
    pub metrics_open: bool,
    /// The operator's policy (kind: Policy): the envelope every playbook this daemon runs,
    /// loaded or posted, must fit inside, the fault actions and sizes it allows, and what a
    /// posted playbook may do. Without it, the safe default: loaded playbooks keep their own
    /// allow-lists, posted playbooks are refused (see docs/SECURITY.md).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// How log lines look on stderr: `text` for a terminal, `json` (one object per line,
    /// with the run id of every line a run logs) for a log collector. Levels from RUST_LOG
    /// (default: info).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The daemon's logs: `tracing` events on stderr; a run's lines carry its `run` span (run
/// id, playbook), which the engine opens.
fn init_logs(format: LogFormat) -> Log {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,kube=warn,bollard=warn"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => fmt
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
    };
    Arc::new(drill_engine::emit)
}

#[derive(Debug, clap::Args)]
pub struct HaltArgs {
    /// Why (required): shown to whoever looks, and kept with the halt.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Halt through a daemon's API (its base URL) instead of the store; an admin token
    /// from DRILL_TOKEN.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// Resume through a daemon's API (its base URL); an admin token from DRILL_TOKEN.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn run(args: DaemonArgs) -> Result<ExitCode> {
    if !args.playbooks.is_dir() {
        eprintln!(
            "drill daemon: {} is not a directory; pass --playbooks DIR with the playbooks to schedule",
            args.playbooks.display()
        );
        return Ok(exit::code(exit::INVALID));
    }
    let tokens = match (&args.listen, &args.tokens) {
        (Some(_), None) => {
            eprintln!(
                "drill daemon: --listen needs --tokens FILE: the API has no default credentials. Make one with\n  drill token add --tokens /etc/drill/tokens --role admin --subject $USER"
            );
            return Ok(exit::code(exit::INVALID));
        }
        (Some(_), Some(f)) => match tokens::Live::load(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("drill daemon: {e:#}");
                return Ok(exit::code(exit::INVALID));
            }
        },
        (None, _) => tokens::Live::none(),
    };
    let policy = match &args.policy {
        Some(f) => match crate::support::read_policy(f) {
            Ok(p) => Some(p),
            Err(()) => return Ok(exit::code(exit::INVALID)),
        },
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => match serve::tls(c, k) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("drill daemon: {e:#}");
                return Ok(exit::code(exit::INVALID));
            }
        },
        _ => None,
    };
    let revert_budget = dur(&args.revert_timeout, "revert-timeout")?;
    let lease = dur(&args.lease, "lease")?;
    let watchdog = dur(&args.watchdog, "watchdog")?;
    let log = init_logs(args.log_format);
    match (&args.policy, &policy) {
        (Some(f), Some(p)) => log(&format!("daemon: policy {}: {}", f.display(), p.summary())),
        _ => log(&format!(
            "daemon: no --policy: the safe default policy: {}",
            Policy::safe_default().summary()
        )),
    }
    if let Some(f) = &args.tokens
        && let Some(mode) = tokens::too_open(f)
    {
        log(&format!(
            "daemon: warning: the token file {} is mode {mode:o}, readable by others; `chmod 600 {}`",
            f.display(),
            f.display()
        ));
    }
    let cfg = Config {
        playbooks: args.playbooks.clone(),
        drills: args.drills.clone(),
        report_dir: args.report_dir.clone(),
        time_scale: args.time_scale,
        revert_budget,
        lease,
        watchdog,
        listen: args.listen.clone(),
        tokens,
        tls,
        metrics_open: args.metrics_open,
        policy: policy.unwrap_or_else(Policy::safe_default),
        log,
    };
    runtime()?.block_on(async {
        let store = args.db.open().await?;
        let stop = Stop::new();
        tokio::spawn(signals(stop.clone()));
        drill_daemon::run(store, cfg, stop).await
    })?;
    Ok(exit::code(exit::OK))
}

/// The first SIGTERM or SIGINT stops the daemon (its runs are aborted and reverted); a second
/// exits at once (`drill recover` finishes the reverts later).
async fn signals(stop: Stop) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    loop {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        if stop.is_stopped() {
            std::process::exit(i32::from(exit::ABORTED));
        }
        stop.stop(which);
    }
}

pub fn halt(args: HaltArgs) -> Result<ExitCode> {
    if args.reason.trim().is_empty() {
        eprintln!("drill halt: --reason must say why (it is kept with the halt)");
        return Ok(exit::code(exit::INVALID));
    }
    if let Some(server) = &args.server {
        let body = serde_json::json!({"reason": args.reason});
        return match super::remote::call(server, "POST", "/api/v1/halt", Some(body))? {
            Err(code) => Ok(exit::code(code)),
            Ok((200, v)) => {
                use super::remote::{read, reply};
                let h = read::<reply::Halted>(v, "POST /api/v1/halt")?.halt;
                println!(
                    "halted by {}: {} (every daemon on the store aborts its runs within 1 s and fires nothing until `drill resume`)",
                    h.by, h.reason
                );
                Ok(exit::code(exit::OK))
            }
            Ok((status, v)) => Ok(super::remote::refused(server, status, &v)),
        };
    }
    let by = std::env::var("USER").unwrap_or_else(|_| drill_engine::owner::Owner::me().to_string());
    let h = runtime()?.block_on(async {
        let store = args.db.open().await?;
        anyhow::Ok(store.halt(&args.reason, &by).await?)
    })?;
    println!(
        "halted since {} by {}: {} (every daemon on this store aborts its runs within 1 s and fires nothing until `drill resume`)",
        chrono::DateTime::from_timestamp_millis(h.since_ms).unwrap_or_default(),
        h.by,
        h.reason
    );
    Ok(exit::code(exit::OK))
}

pub fn resume(args: ResumeArgs) -> Result<ExitCode> {
    if let Some(server) = &args.server {
        return match super::remote::call(server, "POST", "/api/v1/resume", None)? {
            Err(code) => Ok(exit::code(code)),
            Ok((200, v)) => {
                use super::remote::{read, reply};
                match read::<reply::Resumed>(v, "POST /api/v1/resume")?.resumed {
                    Some(h) => println!("resumed: the halt by {} ({}) is lifted", h.by, h.reason),
                    None => println!("nothing to resume: no halt was in force"),
                }
                Ok(exit::code(exit::OK))
            }
            Ok((status, v)) => Ok(super::remote::refused(server, status, &v)),
        };
    }
    let was = runtime()?.block_on(async {
        let store = args.db.open().await?;
        anyhow::Ok(store.resume().await?)
    })?;
    match was {
        Some(h) => println!("resumed: the halt by {} ({}) is lifted", h.by, h.reason),
        None => println!("nothing to resume: no halt was in force"),
    }
    Ok(exit::code(exit::OK))
}
