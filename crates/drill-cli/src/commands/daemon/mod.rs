//! `drill daemon`: runs the playbooks of a directory on their `schedule:`, with the
//! scheduler of `drill_engine::schedule` over the store; `drill halt` / `drill resume` stop
//! and restart every daemon on a store.
//!
//! What it does: loads every playbook under `--playbooks` (and reads the directory again
//! when it changes: a new invalid version is refused with its errors logged, the last good
//! one stays), runs `drill recover` at start-up and every `--watchdog`, fires each schedule
//! at its nominal times (each ends as one run or one missed record), obeys a halt within
//! 2 s (every run aborted, so its faults are reverted; fires recorded missed, reason
//! `halted`), and on SIGTERM/SIGINT stops firing, aborts its runs and waits for their
//! reverts (a second signal exits at once; `drill recover` finishes later).
//!
//! With `--listen`, it serves the HTTP API of [`api`] (bearer tokens from `--tokens`, see
//! [`tokens`]): list playbooks, runs and fires, trigger (by name or a posted playbook) and
//! abort runs, follow one as server-sent events, halt and resume, and `/metrics`
//! ([`metrics`]).
//!
//! Logs are `tracing` events (`--log-format text|json`); the engine opens a `run` span, so
//! each line a run logs names it.
//!
//! What it is not yet: highly available (several daemons share a store's fires and halt,
//! but a dead daemon's runs are taken over only by `drill recover`'s lease rule).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use drill_engine::schedule::{Clock, Entry, Scheduler};
use drill_engine::{Abort, Log, Options};
use drill_spec::policy::Policy;
use tokio::sync::Notify;

pub mod api;
pub mod metrics;
pub mod openapi;
pub mod posted;
pub mod runs;
pub mod serve;
pub mod state;
pub mod tokens;

use runs::{record_latency, scheduled};
use state::{Loaded, Shared, reload};

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
    Arc::new(|line: &str| {
        if line.starts_with("warning") || line.contains(": warning:") {
            tracing::warn!("{line}");
        } else if line.starts_with("error") || line.contains("cannot ") {
            tracing::error!("{line}");
        } else {
            tracing::info!("{line}");
        }
    })
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
    let budget = dur(&args.revert_timeout, "revert-timeout")?;
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
    let policy = policy.unwrap_or_else(Policy::safe_default);
    runtime()?.block_on(async {
        let store = args.db.open().await?;
        let me = drill_engine::owner::Owner::me().to_string();
        log(&format!("daemon: {me} on {}", store.url()));
        let rec = drill_engine::recover::reconcile(&store, None, budget, &log).await?;
        if !rec.is_empty() {
            log("daemon: recovered what earlier runs left changed (see above)");
        }
        let shared = Arc::new(Shared {
            store: store.clone(),
            loaded: Mutex::new(Loaded::default()),
            runs: Mutex::default(),
            tokens: Arc::new(tokens),
            opts: Options {
                time_scale: args.time_scale,
                dry_run: false,
                report_dir: Some(args.report_dir.clone()),
                lease,
                revert_budget: budget,
                log: log.clone(),
            },
            log: log.clone(),
            halt_now: Notify::new(),
            metrics: metrics::Metrics::default(),
            metrics_open: args.metrics_open,
            playbooks_dir: args.playbooks.clone(),
            drills: args.drills.clone(),
            policy,
            reloading: std::sync::atomic::AtomicBool::new(false),
        });
        reload(&shared).await;
        if let Some(f) = &args.tokens
            && let Some(mode) = tokens::too_open(f)
        {
            log(&format!(
                "daemon: warning: the token file {} is mode {mode:o}, readable by others; `chmod 600 {}`",
                f.display(),
                f.display()
            ));
        }
        tokio::spawn(shared.tokens.clone().watch(log.clone()));
        if let Some(addr) = &args.listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            log(&format!(
                "daemon: API on {scheme}://{}/api/v1/",
                listener.local_addr()?
            ));
            let app = api::router(shared.clone());
            tokio::spawn(serve::serve(listener, app, tls.clone(), log.clone()));
        }
        let sched = Scheduler { owner: me.clone() };
        let clock = Clock::System;
        let mut tasks = tokio::task::JoinSet::new();
        let mut last_watchdog = Instant::now();
        let mut halt_seen: Option<String> = None;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let signal = loop {
            // Read the directory in a task of its own: the loop (and the halt it obeys)
            // never waits on a file; the next tick sees what the reading found.
            let s = shared.clone();
            tokio::spawn(async move { reload(&s).await });
            let entries = match shared.loaded.lock() {
                Ok(l) => l.entries(),
                Err(_) => Vec::new(),
            };
            // The halt first: a halt stops runs before any new one would start.
            let halted = store.halted().await;
            shared
                .metrics
                .halt_active
                .set(i64::from(matches!(halted, Ok(Some(_)))));
            match halted {
                Ok(Some(h)) => {
                    let why = format!("halted by {}: {}", h.by, h.reason);
                    if halt_seen.as_deref() != Some(why.as_str()) {
                        log(&format!("daemon: {why}; aborting every run, firing nothing"));
                        halt_seen = Some(why.clone());
                    }
                    for a in aborts(&shared) {
                        a.trigger(why.clone());
                    }
                }
                Ok(None) => {
                    if halt_seen.take().is_some() {
                        log("daemon: resumed: firing schedules again");
                    }
                }
                Err(e) => log(&format!("daemon: cannot read the halt: {e}")),
            }
            match sched.tick_counted(&store, &entries, clock.now()).await {
                Ok((starts, missed)) => {
                    for (playbook, reason, n) in missed {
                        shared
                            .metrics
                            .missed
                            .get_or_create(&metrics::MissLabels {
                                playbook: playbook.into(),
                                reason: reason.as_str().into(),
                            })
                            .inc_by(n);
                    }
                    for s in starts {
                        tasks.spawn(scheduled(shared.clone(), s));
                    }
                }
                Err(e) => log(&format!("daemon: the scheduler cannot read the store: {e}")),
            }
            if last_watchdog.elapsed() >= watchdog {
                last_watchdog = Instant::now();
                if let Err(e) = drill_engine::recover::reconcile(&store, None, budget, &log).await {
                    log(&format!("daemon: watchdog: {e}"));
                }
            }
            while tasks.try_join_next().is_some() {}
            sample(&shared, &entries, clock.now());
            let next = Scheduler::next(&entries, clock.now())
                .unwrap_or_else(|| clock.now() + chrono::Duration::seconds(1));
            tokio::select! {
                () = clock.sleep_until(next, Duration::from_secs(1)) => {}
                () = shared.halt_now.notified() => {}
                _ = term.recv() => break "SIGTERM",
                _ = tokio::signal::ctrl_c() => break "SIGINT",
            }
        };
        let mine = aborts(&shared);
        log(&format!(
            "daemon: {signal}: firing nothing more; aborting {} run(s) and reverting their faults (again to exit at once; `drill recover` then finishes the revert)",
            mine.len()
        ));
        for a in &mine {
            a.trigger(format!("the daemon is stopping ({signal})"));
        }
        let api_runs = || shared.runs.lock().map(|r| r.len()).unwrap_or(0);
        tokio::select! {
            () = async {
                while tasks.join_next().await.is_some() {}
                // Runs started through the API are not in `tasks`.
                while api_runs() > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } => {}
            _ = term.recv() => std::process::exit(i32::from(exit::ABORTED)),
            _ = tokio::signal::ctrl_c() => std::process::exit(i32::from(exit::ABORTED)),
        }
        log("daemon: stopped");
        anyhow::Ok(())
    })?;
    Ok(exit::code(exit::OK))
}

/// The gauges read off the schedules and the running runs' live status.
fn sample(shared: &Shared, entries: &[Entry], now: chrono::DateTime<chrono::Utc>) {
    let m = &shared.metrics;
    for e in entries {
        if let Some(t) = e.cron.after(&now).next() {
            m.next_fire
                .get_or_create(&metrics::Playbook {
                    playbook: e.playbook.clone().into(),
                })
                .set(t.timestamp_millis() as f64 / 1000.0);
        }
    }
    let mut active: BTreeMap<&'static str, i64> = [
        "docker",
        "kubernetes",
        "process",
        "exec",
        "redis",
        "sql",
        "http",
    ]
    .into_iter()
    .map(|b| (b, 0))
    .collect();
    if let Ok(runs) = shared.runs.lock() {
        for (id, r) in runs.iter() {
            let st = r.status.borrow();
            record_latency(m, id, &st, false);
            for f in &st.active_faults {
                *active.entry(f.backend).or_default() += 1;
            }
            let pb = metrics::Playbook {
                playbook: st.playbook.clone().into(),
            };
            m.target_rate.get_or_create(&pb).set(st.target_rate);
            m.achieved_rate.get_or_create(&pb).set(st.achieved_rate);
        }
    }
    for (b, n) in active {
        m.faults_active
            .get_or_create(&metrics::Backend { backend: b.into() })
            .set(n);
    }
}

fn aborts(shared: &Shared) -> Vec<Abort> {
    shared
        .runs
        .lock()
        .map(|r| r.values().map(|e| e.abort.clone()).collect())
        .unwrap_or_default()
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
