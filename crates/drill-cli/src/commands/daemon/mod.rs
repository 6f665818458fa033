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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use drill_engine::schedule::{Clock, Entry, Scheduler, Start};
use drill_engine::{Abort, LiveStatus, Log, Options, Store};
use drill_spec::ValidPlaybook;
use drill_spec::policy::Policy;
use tokio::sync::{Notify, watch};

pub mod api;
pub mod metrics;
pub mod serve;
pub mod tokens;

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

/// The playbooks of the directory, as last loaded with success, by file, and the errors of
/// the files whose newest version is invalid.
#[derive(Default)]
pub struct Loaded {
    fingerprint: Fingerprint,
    pub good: BTreeMap<PathBuf, ValidPlaybook>,
    pub errors: BTreeMap<PathBuf, Vec<String>>,
}

/// One run of this daemon: its abort signal and its live status.
pub struct RunEntry {
    pub abort: Abort,
    pub status: watch::Receiver<LiveStatus>,
}

/// What the scheduler loop and the API share.
pub struct Shared {
    pub store: Store,
    pub loaded: Mutex<Loaded>,
    pub runs: Mutex<HashMap<String, RunEntry>>,
    pub tokens: Arc<tokens::Live>,
    pub opts: Options,
    pub log: Log,
    /// Wakes the loop at once after a halt or resume through the API.
    pub halt_now: Notify,
    pub metrics: metrics::Metrics,
    pub metrics_open: bool,
    pub playbooks_dir: PathBuf,
    pub drills: Vec<PathBuf>,
    /// The operator's policy (the safe default without `--policy`).
    pub policy: Policy,
    /// A reading of the playbook directory is under way.
    pub reloading: std::sync::atomic::AtomicBool,
}

/// Why a posted playbook does not run.
#[derive(Debug)]
pub enum Refused {
    /// It is not a valid playbook (400).
    Invalid(Vec<String>),
    /// It is valid, but outside the daemon's policy (403).
    Policy(Vec<String>),
}

/// The variables a posted playbook's `${NAME}` may read: the request's own `params`, and the
/// names the policy exposes (`posted.env`) from the daemon's environment — nothing else, so
/// a poster learns nothing of the daemon's secrets, not even whether one is set.
struct PostedEnv<'a> {
    params: &'a BTreeMap<String, String>,
    exposed: &'a [String],
}

impl drill_spec::interp::Env for PostedEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.params.get(name).cloned().or_else(|| {
            self.exposed
                .iter()
                .any(|e| e == name)
                .then(|| std::env::var(name).ok())
                .flatten()
        })
    }

    fn unset_hint(&self, name: &str) -> Option<String> {
        Some(format!(
            "a posted playbook reads variables from the request's params only (and the names the daemon's policy exposes, posted.env): send {{\"params\": {{\"{name}\": …}}}}, or give a default: ${{{name}:-value}}"
        ))
    }
}

/// A playbook posted to the API, validated with the daemon's drills, interpolated from the
/// request's `params` (see [`PostedEnv`]), then checked against the daemon's policy as a
/// posted playbook. Returns it with a name for its file (relative paths start in the
/// playbook directory), or why it does not run, every error located.
pub fn posted(
    shared: &Shared,
    text: &str,
    params: &BTreeMap<String, String>,
) -> Result<(PathBuf, ValidPlaybook), Refused> {
    let name = shared.playbooks_dir.join("posted.yaml");
    let env = PostedEnv {
        params,
        exposed: &shared.policy.posted.env,
    };
    let validate = |scope: Option<drill_spec::policy::Scope<'_>>| {
        let mut loader = drill_spec::Loader::new(&env);
        if let Some(s) = scope {
            loader = loader.with_scope(s);
        }
        loader.add(&name.display().to_string(), text, true);
        let library = crate::files::library_dirs(std::slice::from_ref(&name), &shared.drills);
        if let Err(e) = crate::files::load(&mut loader, &[], &library) {
            return Err(vec![format!("{e:#}")]);
        }
        let outcome = loader.finish();
        if outcome.has_errors() || outcome.playbooks.len() != 1 {
            let mut errs: Vec<String> = outcome
                .diags
                .iter()
                .filter(|d| d.severity == drill_spec::Severity::Error)
                .map(|d| outcome.sources.render(d))
                .collect();
            if errs.is_empty() {
                errs.push("the text holds no playbook (kind: Playbook)".into());
            }
            return Err(errs);
        }
        Ok(outcome.playbooks.into_iter().next().expect("one playbook"))
    };
    // First as a playbook (400 when it is not one), then inside the policy (403).
    validate(None).map_err(Refused::Invalid)?;
    let vp = validate(Some(drill_spec::policy::Scope {
        policy: &shared.policy,
        origin: drill_spec::policy::Origin::Posted,
        host: Some(&crate::support::HOST),
    }))
    .map_err(Refused::Policy)?;
    Ok((name, vp))
}

/// Where a playbook's relative paths start.
pub fn dir_of(file: &Path) -> PathBuf {
    file.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml")
        })
        .map(|e| {
            let m = e.metadata().ok();
            (
                e.path(),
                m.as_ref().map_or(0, std::fs::Metadata::len),
                m.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    out.sort();
    out
}

/// One file of the directory, read and validated: its playbook, or its errors.
type FileLoad = (PathBuf, Result<ValidPlaybook, Vec<String>>);

/// Reads and validates every file of the directory against the policy (blocking: run it off
/// the async threads). Each file on its own, so one invalid file does not hold the others
/// back.
fn load_dir(files: &Fingerprint, drills: &[PathBuf], policy: &Policy) -> Vec<FileLoad> {
    files
        .iter()
        .map(|(file, ..)| {
            // A file that cannot be read (a FIFO, a device, too big) says why in its errors.
            if let Err(e) = crate::files::read(file) {
                return (
                    file.clone(),
                    Err(vec![format!("{}: {e:#}", file.display())]),
                );
            }
            let r =
                match crate::support::load_scoped(std::slice::from_ref(file), drills, Some(policy))
                {
                    Ok((outcome, 0)) if !outcome.has_errors() && outcome.playbooks.len() == 1 => {
                        Ok(outcome.playbooks.into_iter().next().expect("one playbook"))
                    }
                    Ok((outcome, unreadable)) => {
                        let mut errs: Vec<String> = outcome
                            .diags
                            .iter()
                            .filter(|d| d.severity == drill_spec::Severity::Error)
                            .map(|d| outcome.sources.render(d))
                            .collect();
                        if errs.is_empty() {
                            errs.push(if unreadable > 0 {
                                format!("{}: cannot be read (see the log)", file.display())
                            } else {
                                format!("{}: holds no playbook (kind: Playbook)", file.display())
                            });
                        }
                        Err(errs)
                    }
                    Err(e) => Err(vec![format!("{e:#}")]),
                };
            (file.clone(), r)
        })
        .collect()
}

/// How long one reading of the playbook directory may take before the daemon gives up on it
/// (the playbooks loaded before stay): a file on a hung mount must not stall the scheduler,
/// the API or the halt.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the directory again when it changed, off the async threads and bounded in time, and
/// swaps the result in under a short lock.
async fn reload(shared: &Arc<Shared>) {
    use std::sync::atomic::Ordering;
    if shared.reloading.swap(true, Ordering::AcqRel) {
        return; // the last reading has not ended (stuck on a file): not another thread
    }
    let known = shared
        .loaded
        .lock()
        .map(|l| l.fingerprint.clone())
        .unwrap_or_default();
    let (dir, drills, policy) = (
        shared.playbooks_dir.clone(),
        shared.drills.clone(),
        shared.policy.clone(),
    );
    let flag = shared.clone();
    let job = tokio::task::spawn_blocking(move || {
        let now = fingerprint(&dir);
        let out = (now != known).then(|| {
            let loads = load_dir(&now, &drills, &policy);
            (now, loads)
        });
        flag.reloading.store(false, Ordering::Release);
        out
    });
    match tokio::time::timeout(RELOAD_TIMEOUT, job).await {
        Ok(Ok(Some((now, loads)))) => {
            if let Ok(mut l) = shared.loaded.lock() {
                l.apply(now, loads, &shared.log);
            }
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => (shared.log)(&format!(
            "daemon: cannot read {}: {e}",
            shared.playbooks_dir.display()
        )),
        Err(_) => (shared.log)(&format!(
            "daemon: warning: reading {} took more than {} s; the playbooks loaded before stay",
            shared.playbooks_dir.display(),
            RELOAD_TIMEOUT.as_secs()
        )),
    }
}

impl Loaded {
    /// Takes a new reading of the directory: a valid file replaces its last version, an
    /// invalid one keeps it (and its errors are logged), a removed file is dropped.
    fn apply(&mut self, now: Fingerprint, loads: Vec<FileLoad>, log: &Log) {
        self.fingerprint = now;
        let seen: Vec<PathBuf> = loads.iter().map(|(f, _)| f.clone()).collect();
        for (file, r) in loads {
            match r {
                Ok(vp) => {
                    let what = match &vp.playbook.schedule {
                        Some(s) => format!("schedule {}", s.cron),
                        None => "no schedule (not fired)".into(),
                    };
                    log(&format!(
                        "daemon: loaded {} ({}): {what}",
                        vp.playbook.metadata.name,
                        file.display()
                    ));
                    self.good.insert(file.clone(), vp);
                    self.errors.remove(&file);
                }
                Err(errs) => {
                    let kept = if self.good.contains_key(&file) {
                        "the last good version stays"
                    } else {
                        "not loaded"
                    };
                    log(&format!("daemon: {} is invalid, {kept}:", file.display()));
                    for e in &errs {
                        log(&format!("  {e}"));
                    }
                    self.errors.insert(file, errs);
                }
            }
        }
        self.good.retain(|f, _| seen.contains(f));
        self.errors.retain(|f, _| seen.contains(f));
    }

    fn entries(&self) -> Vec<Entry> {
        self.good
            .values()
            .filter_map(|vp| {
                Some(Entry {
                    playbook: vp.playbook.metadata.name.clone(),
                    cron: vp.schedule.clone()?,
                    spec: vp.playbook.schedule.clone()?,
                })
            })
            .collect()
    }

    pub fn get(&self, playbook: &str) -> Option<(PathBuf, ValidPlaybook)> {
        self.good
            .iter()
            .find(|(_, vp)| vp.playbook.metadata.name == playbook)
            .map(|(f, vp)| (f.clone(), vp.clone()))
    }
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

/// A run's latency histograms so far; `ended` keeps its last figures for good.
fn record_latency(m: &metrics::Metrics, run: &str, st: &LiveStatus, ended: bool) {
    for l in &st.latency {
        let h = m.latency.get_or_create(&metrics::PhaseLabels {
            playbook: st.playbook.clone().into(),
            drill: l.drill.clone().into(),
            phase: l.phase.clone().into(),
        });
        h.set(run, l);
        if ended {
            h.end(run);
        }
    }
}

fn aborts(shared: &Shared) -> Vec<Abort> {
    shared
        .runs
        .lock()
        .map(|r| r.values().map(|e| e.abort.clone()).collect())
        .unwrap_or_default()
}

/// A scheduled run: after its jitter, after the runs it replaces have ended, named on its
/// fire.
async fn scheduled(shared: Arc<Shared>, s: Start) {
    let log = shared.log.clone();
    let opts = shared.opts.clone();
    tokio::time::sleep(s.delay).await;
    if !s.replace.is_empty() {
        let why = format!("replaced by the run of {}", s.nominal);
        let theirs: Vec<String> = match shared.runs.lock() {
            Ok(r) => s
                .replace
                .iter()
                .filter(|id| match r.get(*id) {
                    Some(e) => {
                        e.abort.trigger(why.clone());
                        false
                    }
                    None => true,
                })
                .cloned()
                .collect(),
            Err(_) => s.replace.clone(),
        };
        // Another daemon's runs: asked through the store, aborted at their next renewal.
        let me = drill_engine::owner::Owner::me().to_string();
        for id in &theirs {
            if let Err(e) = shared.store.request_abort(id, &why, &me).await {
                log(&format!(
                    "daemon: {}: cannot ask run {id} to abort: {e}",
                    s.playbook
                ));
            }
        }
        // Until the old runs are over (their faults reverted), whoever owned them.
        let until = Instant::now() + opts.revert_budget + opts.lease * 2;
        while Instant::now() < until {
            match shared.store.running(&s.playbook).await {
                Ok(r) if r.iter().all(|r| !s.replace.contains(&r.id)) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                Err(e) => {
                    log(&format!(
                        "daemon: {}: cannot read its runs: {e}",
                        s.playbook
                    ));
                    return;
                }
            }
        }
    }
    let Some((file, vp)) = shared.loaded.lock().ok().and_then(|l| l.get(&s.playbook)) else {
        log(&format!(
            "daemon: {} is no longer loaded; its fire {} starts nothing",
            s.playbook, s.nominal
        ));
        return;
    };
    let skew = (chrono::Utc::now() - s.nominal)
        .to_std()
        .unwrap_or_default();
    shared.metrics.start_skew.observe(skew.as_secs_f64());
    let (_, task) = launch(shared, file, vp, opts, Some(s)).await;
    task.await;
}

/// Starts a run with the engine and registers it; returns its id (once the run is recorded)
/// and the future that waits for its end, logs the verdict and unregisters it.
pub async fn launch(
    shared: Arc<Shared>,
    file: PathBuf,
    vp: ValidPlaybook,
    opts: Options,
    fire: Option<Start>,
) -> (
    Option<String>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let log = shared.log.clone();
    let playbook = vp.playbook.metadata.name.clone();
    let handle = drill_engine::start(shared.store.clone(), vp, dir_of(&file), opts);
    let mut status = handle.status();
    let id = loop {
        if let Some(id) = status.borrow().run_id.clone() {
            break Some(id);
        }
        if status.changed().await.is_err() {
            break None;
        }
    };
    let what = match &fire {
        Some(s) => format!("{playbook} (nominal {})", s.nominal),
        None => format!("{playbook} (through the API)"),
    };
    if let Some(id) = &id {
        if let Ok(mut r) = shared.runs.lock() {
            r.insert(
                id.clone(),
                RunEntry {
                    abort: handle.aborter(),
                    status: handle.status(),
                },
            );
        }
        if let Some(s) = &fire
            && let Err(e) = shared
                .store
                .fire_run(&s.playbook, s.nominal.timestamp_millis(), id)
                .await
        {
            log(&format!(
                "daemon: run {id}: cannot record it on its fire: {e}"
            ));
        }
        tracing::info!(run = %id, playbook = %playbook, "daemon: run {id}: {what} started");
    }
    let run_id = id.clone();
    let started = Instant::now();
    let done = async move {
        let last = handle.status();
        let out = handle.wait().await;
        let m = &shared.metrics;
        if let Some(id) = &run_id {
            let st = last.borrow().clone();
            record_latency(m, id, &st, true);
        }
        m.run_duration.observe(started.elapsed().as_secs_f64());
        let pb = metrics::Playbook {
            playbook: playbook.clone().into(),
        };
        m.target_rate.get_or_create(&pb).set(0.0);
        m.achieved_rate.get_or_create(&pb).set(0.0);
        let outcome = match &out {
            Ok(o) => o.status.as_str(),
            Err(_) => "error",
        };
        if outcome == "revert_failed" {
            m.revert_failures.inc();
        }
        m.runs
            .get_or_create(&metrics::RunLabels {
                playbook: playbook.clone().into(),
                outcome: outcome.into(),
            })
            .inc();
        let run = run_id.as_deref().unwrap_or("-");
        match out {
            Ok(out) => tracing::info!(
                run,
                playbook = %playbook,
                outcome,
                "daemon: run {run}: {what} {}{}",
                out.status.verdict(),
                out.reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
            Err(e) => tracing::error!(run, playbook = %playbook, outcome, "daemon: {what}: {e}"),
        }
        if let (Some(id), Ok(mut r)) = (run_id, shared.runs.lock()) {
            r.remove(&id);
        }
    };
    (id, done)
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
                println!(
                    "halted by {}: {} (every daemon on the store aborts its runs within 1 s and fires nothing until `drill resume`)",
                    v["halt"]["by"].as_str().unwrap_or("?"),
                    v["halt"]["reason"].as_str().unwrap_or("?")
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
                match v["resumed"].as_object() {
                    Some(h) => println!(
                        "resumed: the halt by {} ({}) is lifted",
                        h["by"].as_str().unwrap_or("?"),
                        h["reason"].as_str().unwrap_or("?")
                    ),
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
