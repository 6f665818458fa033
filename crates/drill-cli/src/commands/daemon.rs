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
//! What it is not yet: the HTTP API, its authentication and `/metrics` (issue #14 lists
//! them); runs are driven from the schedule and halted from the store.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use drill_engine::schedule::{Clock, Entry, Scheduler, Start};
use drill_engine::{Abort, Options, Store};
use drill_spec::ValidPlaybook;

use crate::exit;
use crate::support::{DbArg, dur, load, log_to, parse_scale, runtime};

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
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, clap::Args)]
pub struct HaltArgs {
    /// Why (required): shown to whoever looks, and kept with the halt.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub db: DbArg,
}

/// The playbooks of the directory, as last loaded with success, by file.
#[derive(Default)]
struct Loaded {
    fingerprint: Vec<(PathBuf, u64, Option<SystemTime>)>,
    good: BTreeMap<PathBuf, ValidPlaybook>,
}

fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
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

impl Loaded {
    /// Reads the directory again when it changed; each file on its own, so one invalid file
    /// keeps its last good version and does not hold the others back.
    fn refresh(&mut self, dir: &Path, drills: &[PathBuf], log: &drill_engine::Log) {
        let now = fingerprint(dir);
        if now == self.fingerprint {
            return;
        }
        self.fingerprint = now.clone();
        let mut seen = Vec::new();
        for (file, ..) in &now {
            seen.push(file.clone());
            match load(std::slice::from_ref(file), drills) {
                Ok((outcome, 0)) if !outcome.has_errors() && outcome.playbooks.len() == 1 => {
                    let vp = outcome.playbooks.into_iter().next().expect("one playbook");
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
                }
                Ok((outcome, _)) => {
                    let kept = if self.good.contains_key(file) {
                        "the last good version stays"
                    } else {
                        "not loaded"
                    };
                    log(&format!("daemon: {} is invalid, {kept}:", file.display()));
                    for d in &outcome.diags {
                        log(&format!("  {}", outcome.sources.render(d)));
                    }
                }
                Err(e) => log(&format!("daemon: cannot read {}: {e:#}", file.display())),
            }
        }
        self.good.retain(|f, _| seen.contains(f));
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

    fn get(&self, playbook: &str) -> Option<(PathBuf, ValidPlaybook)> {
        self.good
            .iter()
            .find(|(_, vp)| vp.playbook.metadata.name == playbook)
            .map(|(f, vp)| (f.clone(), vp.clone()))
    }
}

/// This daemon's runs: their abort signals, by run id.
type Runs = Arc<Mutex<HashMap<String, Abort>>>;

pub fn run(args: DaemonArgs) -> Result<ExitCode> {
    if !args.playbooks.is_dir() {
        eprintln!(
            "drill daemon: {} is not a directory; pass --playbooks DIR with the playbooks to schedule",
            args.playbooks.display()
        );
        return Ok(exit::code(exit::INVALID));
    }
    let budget = dur(&args.revert_timeout, "revert-timeout")?;
    let lease = dur(&args.lease, "lease")?;
    let watchdog = dur(&args.watchdog, "watchdog")?;
    let log = log_to(None);
    runtime()?.block_on(async {
        let store = args.db.open().await?;
        let me = drill_engine::owner::Owner::me().to_string();
        log(&format!("daemon: {me} on {}", store.url()));
        let rec = drill_engine::recover::reconcile(&store, None, budget, &log).await?;
        if !rec.is_empty() {
            log("daemon: recovered what earlier runs left changed (see above)");
        }
        let mut loaded = Loaded::default();
        loaded.refresh(&args.playbooks, &args.drills, &log);
        let sched = Scheduler { owner: me.clone() };
        let clock = Clock::System;
        let runs: Runs = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        let mut last_watchdog = Instant::now();
        let mut halt_seen: Option<String> = None;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let opts = Options {
            time_scale: args.time_scale,
            dry_run: false,
            report_dir: Some(args.report_dir.clone()),
            lease,
            revert_budget: budget,
            log: log.clone(),
        };
        let signal = loop {
            loaded.refresh(&args.playbooks, &args.drills, &log);
            let entries = loaded.entries();
            // The halt first: a halt stops runs before any new one would start.
            match store.halted().await {
                Ok(Some(h)) => {
                    let why = format!("halted by {}: {}", h.by, h.reason);
                    if halt_seen.as_deref() != Some(why.as_str()) {
                        log(&format!("daemon: {why}; aborting every run, firing nothing"));
                        halt_seen = Some(why.clone());
                    }
                    for a in runs.lock().map(|r| r.values().cloned().collect::<Vec<_>>()).unwrap_or_default() {
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
            match sched.tick(&store, &entries, clock.now()).await {
                Ok(starts) => {
                    for s in starts {
                        let Some((file, vp)) = loaded.get(&s.playbook) else { continue };
                        tasks.spawn(start(store.clone(), file, vp, opts.clone(), s, runs.clone()));
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
            let next = Scheduler::next(&entries, clock.now())
                .unwrap_or_else(|| clock.now() + chrono::Duration::seconds(2));
            tokio::select! {
                () = clock.sleep_until(next, Duration::from_secs(1)) => {}
                _ = term.recv() => break "SIGTERM",
                _ = tokio::signal::ctrl_c() => break "SIGINT",
            }
        };
        let mine: Vec<Abort> = runs.lock().map(|r| r.values().cloned().collect()).unwrap_or_default();
        log(&format!(
            "daemon: {signal}: firing nothing more; aborting {} run(s) and reverting their faults (again to exit at once; `drill recover` then finishes the revert)",
            mine.len()
        ));
        for a in &mine {
            a.trigger(format!("the daemon is stopping ({signal})"));
        }
        tokio::select! {
            () = async { while tasks.join_next().await.is_some() {} } => {}
            _ = term.recv() => std::process::exit(i32::from(exit::ABORTED)),
            _ = tokio::signal::ctrl_c() => std::process::exit(i32::from(exit::ABORTED)),
        }
        log("daemon: stopped");
        anyhow::Ok(())
    })?;
    Ok(exit::code(exit::OK))
}

/// Starts one scheduled run: after its jitter, after the runs it replaces have ended, and
/// names it on its fire.
async fn start(
    store: Store,
    file: PathBuf,
    vp: ValidPlaybook,
    opts: Options,
    s: Start,
    runs: Runs,
) {
    let log = opts.log.clone();
    tokio::time::sleep(s.delay).await;
    if !s.replace.is_empty() {
        for id in &s.replace {
            if let Some(a) = runs.lock().ok().and_then(|r| r.get(id).cloned()) {
                a.trigger(format!("replaced by the run of {}", s.nominal));
            }
        }
        // Until the old runs are over (their faults reverted), whoever owned them.
        let until = Instant::now() + opts.revert_budget + opts.lease * 2;
        while Instant::now() < until {
            match store.running(&s.playbook).await {
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
    let dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let handle = drill_engine::start(store.clone(), vp, dir, opts);
    let mut status = handle.status();
    let id = loop {
        if let Some(id) = status.borrow().run_id.clone() {
            break Some(id);
        }
        if status.changed().await.is_err() {
            break None;
        }
    };
    if let Some(id) = &id {
        if let Ok(mut r) = runs.lock() {
            r.insert(id.clone(), handle.aborter());
        }
        if let Err(e) = store
            .fire_run(&s.playbook, s.nominal.timestamp_millis(), id)
            .await
        {
            log(&format!(
                "daemon: run {id}: cannot record it on its fire: {e}"
            ));
        }
        log(&format!(
            "daemon: run {id}: {} (nominal {}) started",
            s.playbook, s.nominal
        ));
    }
    match handle.wait().await {
        Ok(out) => log(&format!(
            "daemon: run {}: {} (nominal {}) {}{}",
            out.run_id.as_deref().unwrap_or("-"),
            s.playbook,
            s.nominal,
            out.status.verdict(),
            out.reason.map(|r| format!(": {r}")).unwrap_or_default()
        )),
        Err(e) => log(&format!(
            "daemon: {} (nominal {}): {e}",
            s.playbook, s.nominal
        )),
    }
    if let (Some(id), Ok(mut r)) = (id, runs.lock()) {
        r.remove(&id);
    }
}

pub fn halt(args: HaltArgs) -> Result<ExitCode> {
    if args.reason.trim().is_empty() {
        eprintln!("drill halt: --reason must say why (it is kept with the halt)");
        return Ok(exit::code(exit::INVALID));
    }
    let by = std::env::var("USER").unwrap_or_else(|_| drill_engine::owner::Owner::me().to_string());
    let h = runtime()?.block_on(async {
        let store = args.db.open().await?;
        anyhow::Ok(store.halt(&args.reason, &by).await?)
    })?;
    println!(
        "halted since {} by {}: {} (every daemon on this store aborts its runs within 2 s and fires nothing until `drill resume`)",
        chrono::DateTime::from_timestamp_millis(h.since_ms).unwrap_or_default(),
        h.by,
        h.reason
    );
    Ok(exit::code(exit::OK))
}

pub fn resume(args: ResumeArgs) -> Result<ExitCode> {
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
