//! drill-daemon: `drill daemon` as a library. [`run`] runs the playbooks of a directory on
//! their `schedule:` with the scheduler of `drill_engine::schedule` over the store, until its
//! [`CancellationToken`] is cancelled.
//!
//! What it does: loads every playbook under [`Config::playbooks`] (and reads the directory
//! again when it changes, in a task of its own, bounded in time: a new invalid version is
//! refused with its errors logged, the last good one stays — [`state`]), runs `drill
//! recover` at start-up and every [`Config::watchdog`], fires each schedule at its nominal
//! times (each ends as one run or one missed record — [`runs`]), obeys a halt within 2 s
//! (every run aborted, so its faults are reverted; fires recorded missed, reason `halted`),
//! and once cancelled stops firing, aborts its runs and waits for their reverts: every run,
//! scheduled or started through the API, is a task of one [`TaskTracker`].
//!
//! With [`Config::listen`], it serves the HTTP API of [`api`] ([`serve`]: TLS, a header
//! timeout, a connection cap): bearer tokens ([`tokens`]), playbooks, runs and fires, trigger
//! (by name, or a posted playbook judged by the operator's policy — [`posted`]) and abort,
//! follow one as server-sent events, halt and resume, the OpenAPI document ([`openapi`]) and
//! `/metrics` ([`metrics`]).
//!
//! What it is not: a command line. It parses no argument, installs no logger and handles no
//! signal — the CLI (`drill daemon`) does, and cancels the token on SIGTERM/SIGINT (a second
//! signal exits at once there; `drill recover` finishes later). Its logs go through
//! [`Config::log`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use drill_engine::schedule::{Clock, Entry, Scheduler};
use drill_engine::{Abort, Log, Options, Store};
use drill_spec::policy::Policy;
use tokio::sync::Notify;
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

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

/// How a daemon is told to stop: one [`CancellationToken`], and why (said in the log and in
/// the reason each aborted run records).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    token: CancellationToken,
    why: Arc<OnceLock<String>>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Stops the daemon; the first reason given is the one kept.
    pub fn stop(&self, why: impl Into<String>) {
        let _ = self.why.set(why.into());
        self.token.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    fn why(&self) -> &str {
        self.why.get().map_or("stopped", String::as_str)
    }
}

/// What a daemon runs, and how.
pub struct Config {
    /// The directory of playbooks (`*.yaml`, `*.yml`); those with a `schedule:` run on it.
    pub playbooks: PathBuf,
    /// Where `uses:` finds drills (empty: drills/ beside or above the playbooks, ./drills).
    pub drills: Vec<PathBuf>,
    /// Where each run's reports go (a directory per run).
    pub report_dir: PathBuf,
    /// Multiplies every duration of the playbooks' runs (not the schedules).
    pub time_scale: f64,
    /// How long a failing revert is retried before a run gives up.
    pub revert_budget: Duration,
    /// How long a run's lease lasts without a heartbeat.
    pub lease: Duration,
    /// How often `drill recover` runs over the store.
    pub watchdog: Duration,
    /// Serve the API on this address.
    pub listen: Option<String>,
    /// The API's tokens (watched for changes when read from a file).
    pub tokens: tokens::Live,
    /// Serve the API over TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `/metrics` without a token.
    pub metrics_open: bool,
    /// The operator's policy (the safe default when none was given).
    pub policy: Policy,
    /// Where its lines go.
    pub log: Log,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("playbooks", &self.playbooks)
            .field("drills", &self.drills)
            .field("report_dir", &self.report_dir)
            .field("time_scale", &self.time_scale)
            .field("listen", &self.listen)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs the daemon until `stop`, then aborts its runs and waits for their reverts. `Err` when
/// it cannot start: the store cannot be read, the address not bound.
pub async fn run(store: Store, cfg: Config, stop: Stop) -> anyhow::Result<()> {
    let log = cfg.log.clone();
    let me = drill_engine::owner::Owner::me().to_string();
    log(&format!("daemon: {me} on {}", store.url()));
    let budget = cfg.revert_budget;
    let rec = drill_engine::recover::reconcile(&store, None, budget, &log).await?;
    if !rec.is_empty() {
        log("daemon: recovered what earlier runs left changed (see above)");
    }
    let tracker = TaskTracker::new();
    let shared = Arc::new(Shared {
        store: store.clone(),
        loaded: Mutex::new(Loaded::default()),
        runs: Mutex::default(),
        tokens: Arc::new(cfg.tokens),
        opts: Options {
            time_scale: cfg.time_scale,
            dry_run: false,
            report_dir: Some(cfg.report_dir.clone()),
            lease: cfg.lease,
            revert_budget: budget,
            // A run writes its lines to `tracing` itself, with their fields, inside its
            // span: the daemon's log would only repeat them.
            log: drill_engine::quiet(),
        },
        log: log.clone(),
        halt_now: Notify::new(),
        metrics: metrics::Metrics::default(),
        metrics_open: cfg.metrics_open,
        playbooks_dir: cfg.playbooks.clone(),
        drills: cfg.drills.clone(),
        policy: cfg.policy,
        reloading: std::sync::atomic::AtomicBool::new(false),
        tracker: tracker.clone(),
    });
    reload(&shared).await;
    tokio::spawn(shared.tokens.clone().watch(log.clone()));
    if let Some(addr) = &cfg.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        log(&format!(
            "daemon: API on {scheme}://{}/api/v1/",
            listener.local_addr()?
        ));
        let app = api::router(shared.clone());
        tokio::spawn(serve::serve(listener, app, cfg.tls.clone(), log.clone()));
    }
    fire_until(&shared, &me, cfg.watchdog, &stop.token).await;
    let mine = aborts(&shared);
    let why = stop.why();
    log(&format!(
        "daemon: {why}: firing nothing more; aborting {} run(s) and reverting their faults (again to exit at once; `drill recover` then finishes the revert)",
        mine.len()
    ));
    for a in &mine {
        a.trigger(format!("the daemon is stopping ({why})"));
    }
    tracker.close();
    tracker.wait().await;
    log("daemon: stopped");
    Ok(())
}

/// The loop: the halt, the schedules' nominal times, the watchdog and the gauges, until
/// `stop` is cancelled.
async fn fire_until(shared: &Arc<Shared>, me: &str, watchdog: Duration, stop: &CancellationToken) {
    let (store, log) = (&shared.store, &shared.log);
    let sched = Scheduler {
        owner: me.to_owned(),
    };
    let clock = Clock::System;
    let mut last_watchdog = Instant::now();
    let mut halt_seen: Option<String> = None;
    while !stop.is_cancelled() {
        // Read the directory in a task of its own: the loop (and the halt it obeys) never
        // waits on a file; the next tick sees what the reading found.
        let s = shared.clone();
        tokio::spawn(async move { reload(&s).await });
        let entries = match shared.loaded.lock() {
            Ok(l) => l.entries(),
            Err(_) => Vec::new(),
        };
        // The halt first: a halt stops runs before any new one would start.
        obey_halt(shared, &mut halt_seen).await;
        match sched.tick_counted(store, &entries, clock.now()).await {
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
                    shared.tracker.spawn(scheduled(shared.clone(), s));
                }
            }
            Err(e) => log(&format!("daemon: the scheduler cannot read the store: {e}")),
        }
        if last_watchdog.elapsed() >= watchdog {
            last_watchdog = Instant::now();
            let budget = shared.opts.revert_budget;
            if let Err(e) = drill_engine::recover::reconcile(store, None, budget, log).await {
                log(&format!("daemon: watchdog: {e}"));
            }
        }
        sample(shared, &entries, clock.now());
        let next = Scheduler::next(&entries, clock.now())
            .unwrap_or_else(|| clock.now() + chrono::Duration::seconds(1));
        tokio::select! {
            () = clock.sleep_until(next, Duration::from_secs(1)) => {}
            () = shared.halt_now.notified() => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Reads the halt; while one is in force, aborts every run of this daemon.
async fn obey_halt(shared: &Shared, halt_seen: &mut Option<String>) {
    let log = &shared.log;
    let halted = shared.store.halted().await;
    shared
        .metrics
        .halt_active
        .set(i64::from(matches!(halted, Ok(Some(_)))));
    match halted {
        Ok(Some(h)) => {
            let why = format!("halted by {}: {}", h.by, h.reason);
            if halt_seen.as_deref() != Some(why.as_str()) {
                log(&format!(
                    "daemon: {why}; aborting every run, firing nothing"
                ));
                *halt_seen = Some(why.clone());
            }
            for a in aborts(shared) {
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
