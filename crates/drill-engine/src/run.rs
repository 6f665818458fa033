//! `drill apply`: one run of a validated playbook, from its lease to its verdict.
//!
//! Order of a run: reconcile (revert what dead runs left) → record the run and take its
//! target locks → preflight every fault and probe (`preflight.rs`; no mutation; any failure
//! aborts before anything changes) → setup steps → traffic for the whole profile, and
//! meanwhile each drill on its timeline (`drill.rs`) with the guards (`guards.rs`) and the
//! lease renewed → a final revert sweep (`live.rs`) → teardown → verdict, reports
//! (`report.rs`), release.
//!
//! A run is never reported as passed while anything it changed is still changed.
//!
//! The run's lease is renewed every third of its length, fenced (`store/`). When a renewal
//! — or any fenced write — finds another owner, the run has been taken over: traffic stops,
//! no further call reaches a target, the sweep and teardown are skipped (the new owner settles
//! what is left), the run's row is never written again, and the outcome is `aborted` naming
//! the new owner.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drill_load::metrics::Recorder;
use drill_spec::ValidPlaybook;
use drill_spec::timeline::TrafficPlan;
use tokio::sync::watch;
use tracing::Instrument;

use crate::checks::fmt_dur;
use crate::context::{Abort, Ownership, RunContext, locked};
use crate::error::EngineError;
use crate::outcome::secs;
use crate::outcome::{DrillResult, Outcome, Status};
use crate::owner::Owner;
use crate::recover::{self, Recovered};
use crate::status::{ActiveFault, LiveStatus, PhaseLatency, RunStage};
use crate::store::{FenceError, RunRow, Store, now_ms};
use crate::{Log, chain, drill, guards, live, preflight, report};

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// Multiplies every duration of the playbook (0.1 runs a 9-minute plan in 54 s).
    pub time_scale: f64,
    /// Preflight only: resolve targets, read probes, print what would change; no mutation,
    /// no traffic, nothing stored.
    pub dry_run: bool,
    /// Where the reports go (a directory per run).
    pub report_dir: Option<PathBuf>,
    /// How long a run's lease lasts without a heartbeat (renewed every third of it).
    pub lease: Duration,
    /// How long a failing revert is retried before the run gives up (exit 4).
    pub revert_budget: Duration,
    pub log: Log,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("time_scale", &self.time_scale)
            .field("dry_run", &self.dry_run)
            .field("report_dir", &self.report_dir)
            .field("lease", &self.lease)
            .field("revert_budget", &self.revert_budget)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_scale: 1.0,
            dry_run: false,
            report_dir: None,
            lease: Duration::from_secs(15),
            revert_budget: Duration::from_secs(120),
            log: crate::quiet(),
        }
    }
}

fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (u64::from(std::process::id()) << 20) ^ u64::from(now.timestamp_subsec_nanos());
    format!("{}-{:05x}", now.format("%Y%m%d-%H%M%S"), salt & 0xfffff)
}

/// Runs a playbook. `dir` resolves its relative paths (the dataset). The caller wires
/// signals to `abort`. [`crate::start`] does the same in a task and hands back a
/// [`crate::RunHandle`] with the live status.
pub async fn apply(
    store: &Store,
    vp: &ValidPlaybook,
    dir: &Path,
    opts: &Options,
    abort: Abort,
) -> Result<Outcome, EngineError> {
    let (tx, _rx) = watch::channel(LiveStatus::new(vp, opts.time_scale));
    run(store, vp, dir, opts, abort, tx).await
}

pub(crate) async fn run(
    store: &Store,
    vp: &ValidPlaybook,
    dir: &Path,
    opts: &Options,
    abort: Abort,
    status: watch::Sender<LiveStatus>,
) -> Result<Outcome, EngineError> {
    let mut vp = vp.clone();
    preflight::resolve_urls(&mut vp);
    let vp = vp;
    // Every line this run logs goes through the one redaction rule: values from the
    // environment as `${NAME}`, URL passwords as `***`.
    let opts = &Options {
        log: redacting(opts.log.clone(), vp.redact.clone()),
        ..opts.clone()
    };
    let log = opts.log.clone();
    let name = vp.playbook.metadata.name.clone();

    if opts.dry_run {
        let out = dry_run(store, &vp, opts).await;
        status.send_modify(|s| s.stage = RunStage::Done);
        return out;
    }

    // 1. Whatever a dead run left behind is restored before anything else.
    let rec = recover::reconcile(store, None, opts.revert_budget, &log).await?;
    report_recovered(&rec, &log);

    // 2. The run, its lease and its locks.
    let run_id = new_run_id();
    status.send_modify(|s| s.run_id = Some(run_id.clone()));
    // Everything from here on is this run's: a `tracing` subscriber (the daemon's logs) puts
    // the run id on every line, the spawned tasks' too.
    let span = tracing::info_span!("run", run = %run_id, playbook = %name);
    async {
        let owner = Owner::me();
        let lease = store
            .create_run(&RunRow {
                id: run_id.clone(),
                playbook: name.clone(),
                file: vp.file.clone(),
                status: "running".into(),
                reason: None,
                owner: owner.to_string(),
                heartbeat_ms: now_ms(),
                lease_ms: i64::try_from(opts.lease.as_millis()).unwrap_or(i64::MAX),
                started_ms: now_ms(),
                finished_ms: None,
                time_scale: opts.time_scale,
                epoch: 0,
                age_ms: 0,
            })
            .await?;
        let own = Arc::new(Ownership::new(lease, abort.clone()));
        log(&format!("run {run_id}: {name} ({})", vp.file));
        let keys = preflight::lock_keys(&vp);
        if let Some(held) = store.lock(&run_id, &keys).await? {
            let reason = format!(
                "target {} is held by run {} (playbook {}, {}, owner {}); wait for it to finish, or run `drill recover` if it is gone",
                held.target, held.run.id, held.run.playbook, held.run.status, held.run.owner
            );
            finish(store, &own, "aborted", Some(&format!("refused: {reason}"))).await?;
            status.send_modify(|s| s.stage = RunStage::Done);
            let mut out = Outcome::bare(Some(run_id), Status::Aborted, Some(reason));
            out.cause = out.explain();
            return Ok(out);
        }

        // 3. Heartbeat, and the reconciler's periodic pass over other runs.
        let hb_stop = Abort::default();
        let heartbeat = tokio::spawn(
            heartbeat(
                store.clone(),
                own.clone(),
                hb_stop.clone(),
                log.clone(),
                opts.lease,
            )
            .in_current_span(),
        );

        let result = execute(store, &vp, dir, opts, abort, own, status.clone())
            .await
            .map(|mut o| {
                if o.cause.is_none() {
                    o.cause = o.explain();
                }
                o
            });
        hb_stop.trigger("done");
        let _ = heartbeat.await;
        status.send_modify(|s| s.stage = RunStage::Done);
        result
    }
    .instrument(span)
    .await
}

/// A log that prints each line through `redact` first.
fn redacting(log: Log, redact: drill_spec::redact::Redactor) -> Log {
    Arc::new(move |line: &str| log(&redact.apply(line)))
}

/// Renews the run's lease every third of `lease`, and reconciles other runs. A renewal that
/// finds another owner loses the run (which aborts it); renewals that fail for a whole lease
/// abort it too — this process can no longer be sure it owns the run.
async fn heartbeat(store: Store, own: Arc<Ownership>, stop: Abort, log: Log, lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(200));
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.triggered() => return,
        }
        let asked = Instant::now();
        match store.renew(&own.lease).await {
            Ok(()) => {
                renewed = asked;
                own.confirm(asked);
                // Another daemon (an API call, a `replace` fire) may ask for the abort.
                match store.abort_requested(&own.lease.run_id).await {
                    Ok(Some(why)) => own.abort_asked(&why),
                    Ok(None) => {}
                    Err(e) => log(&format!("warning: {}", chain(&e))),
                }
            }
            Err(FenceError::Lost(l)) => {
                log(&format!("error: {l}"));
                own.lose(l);
                return;
            }
            Err(FenceError::Store(e)) => {
                log(&format!("warning: {}", chain(&e)));
                if renewed.elapsed() > lease {
                    own.abort_unsure(&format!(
                        "the lease could not be renewed for {:.1} s: {}",
                        renewed.elapsed().as_secs_f64(),
                        chain(&e)
                    ));
                }
            }
        }
        match recover::reconcile(
            &store,
            Some(&own.lease.run_id),
            Duration::from_secs(5),
            &log,
        )
        .await
        {
            Ok(r) => report_recovered(&r, &log),
            Err(e) => log(&format!("warning: reconcile: {}", chain(&e))),
        }
    }
}

/// Ends the run's row, fenced; a lost lease leaves the row to the new owner.
async fn finish(
    store: &Store,
    own: &Ownership,
    status: &str,
    reason: Option<&str>,
) -> Result<(), EngineError> {
    match store.finish_run(&own.lease, status, reason).await {
        Ok(()) => Ok(()),
        Err(FenceError::Lost(l)) => {
            own.lose(l);
            Ok(())
        }
        Err(FenceError::Store(e)) => Err(e.into()),
    }
}

fn report_recovered(rec: &Recovered, log: &Log) {
    for (run, reason) in &rec.runs {
        log(&format!("recover: run {run} {reason}"));
    }
    for (run, f, what) in &rec.reverted {
        log(&format!("recover: run {run}: {f} restored ({what})"));
    }
    for (run, f, what) in &rec.not_applied {
        log(&format!("recover: run {run}: {f}: {what}"));
    }
    for (run, f, what) in &rec.permanent {
        log(&format!("recover: run {run}: {f}: {what}"));
    }
    for (run, f, e, how) in &rec.failed {
        log(&format!(
            "recover: run {run}: {f} is STILL CHANGED: {e}; to restore by hand: {how}"
        ));
    }
}

async fn dry_run(
    store: &Store,
    vp: &ValidPlaybook,
    opts: &Options,
) -> Result<Outcome, EngineError> {
    let found = preflight::check(vp, opts.time_scale).await;
    let (mut preview, errors) = (found.preview, found.errors);
    preview.extend(found.warnings.iter().map(|w| format!("warning: {w}")));
    for k in preflight::lock_keys(vp) {
        if let Some(h) = store.holder(&k).await? {
            preview.push(format!("lock: {k} is held by run {h}"));
        }
    }
    for (f, run) in store.outstanding().await? {
        preview.push(format!(
            "ledger: run {} left {}/{} {} (`drill recover` would revert it)",
            run.id,
            f.drill,
            f.fault,
            f.state.as_str()
        ));
    }
    let errors: Vec<String> = errors.iter().map(|e| chain(e)).collect();
    let status = if errors.is_empty() {
        Status::DryRun
    } else {
        Status::Aborted
    };
    let reason = (!errors.is_empty()).then(|| format!("preflight failed: {}", errors.join("; ")));
    let redact = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|l| vp.redact.apply(&l).into_owned())
            .collect()
    };
    let (preview, errors) = (redact(preview), redact(errors));
    let reason = reason.map(|r| vp.redact.apply(&r).into_owned());
    let mut out = Outcome::bare(None, status, reason);
    out.dry_run = Some(drill_report::DryRun {
        dry_run: true,
        would: preview.clone(),
        errors,
    });
    out.preview = preview;
    Ok(out)
}

async fn execute(
    store: &Store,
    vp: &ValidPlaybook,
    dir: &Path,
    opts: &Options,
    abort: Abort,
    own: Arc<Ownership>,
    status: watch::Sender<LiveStatus>,
) -> Result<Outcome, EngineError> {
    let run_id = own.lease.run_id.as_str();
    let log = opts.log.clone();
    let allow = vp.playbook.target.allow.clone();
    let scale = opts.time_scale;
    let started_ms = now_ms();

    // Preflight: fail closed before anything changes.
    let found = preflight::check(vp, scale).await;
    for w in &found.warnings {
        log(&format!("warning: {w}"));
    }
    let errors = found.errors;
    if errors.is_empty() {
        log("preflight: every target and probe answered");
    } else {
        let errors: Vec<String> = errors.iter().map(|e| chain(e)).collect();
        for e in &errors {
            log(&format!("preflight: {e}"));
        }
        abort.trigger(format!("preflight failed: {}", errors.join("; ")));
    }

    // Setup steps.
    if abort.reason().is_none() {
        for (i, s) in vp.playbook.setup.iter().enumerate() {
            let label = s.name.clone().unwrap_or_else(|| format!("setup {}", i + 1));
            match live::step(store, &own, s, &allow, &format!("setup {label}")).await {
                Ok(r) => log(&format!("setup {label}: {r}")),
                Err(e) => {
                    abort.trigger(format!("setup step {label} failed: {}", chain(&e)));
                    break;
                }
            }
        }
    }

    let traffic = match drill_load::Run::from_playbook(&vp.playbook, dir, scale) {
        Ok(t) => Some(t),
        Err(e) => {
            abort.trigger(format!("the traffic cannot start: {}", chain(&e)));
            None
        }
    };
    let recorder = traffic.as_ref().map_or_else(
        || {
            Arc::new(Recorder::new(
                drill_load::metrics::ErrorSet::standard(),
                Duration::from_secs(10),
            ))
        },
        |t| t.recorder(),
    );
    let longest_baseline = vp
        .drills
        .iter()
        .map(|d| d.spec.baseline.scaled(scale).0)
        .max()
        .unwrap_or_default();
    recorder.retain_for(longest_baseline.max(Duration::from_secs(10)) + Duration::from_secs(2));

    // A distributed run's shards are started ahead of the schedule's zero, which they share.
    let distributed = vp.playbook.traffic.distributed.clone();
    let lead = distributed
        .as_ref()
        .map_or(Duration::ZERO, crate::shards::lead);
    let start = Instant::now() + lead;
    let traffic_started_ms = now_ms() + i64::try_from(lead.as_millis()).unwrap_or(0);
    let cx = Arc::new(RunContext {
        store: store.clone(),
        run_id: run_id.to_owned(),
        own: own.clone(),
        allow: allow.clone(),
        log: log.clone(),
        start,
        scale,
        abort: abort.clone(),
        recorder: recorder.clone(),
        faults: Mutex::new(Vec::new()),
        drill_guards: Mutex::new(Vec::new()),
        trips: Mutex::new(Vec::new()),
        revert_budget: opts.revert_budget,
        seq: AtomicI64::new(0),
        phase_slos: vp.playbook.slo.phases.clone(),
        error_limit: vp.playbook.slo.error_rate.map(|p| p.fraction()),
        status,
        distributed: distributed.is_some(),
    });

    let stop = drill_load::Stop::default();
    let mut drills: Vec<DrillResult> = vp.drills.iter().map(crate::outcome::drill_result).collect();
    let mut traffic_report = None;
    let mut shards = None;
    if abort.reason().is_none()
        && let Some(t) = traffic
    {
        cx.say(&format!(
            "traffic: {} for {}",
            vp.playbook.metadata.name,
            fmt_dur(t.duration)
        ));
        cx.status.send_modify(|s| s.stage = RunStage::Running);
        let traffic_task = match distributed {
            Some(d) => {
                cx.say(&format!(
                    "traffic: {} shards ({}), the first arrival in {}",
                    d.shards,
                    match d.run_on {
                        drill_spec::model::ShardsOn::Local => "processes on this host",
                        drill_spec::model::ShardsOn::Kubernetes => "an Indexed Job",
                    },
                    fmt_dur(lead)
                ));
                let plan = crate::shards::ShardPlan {
                    playbook: vp.playbook.clone(),
                    records: t.records().to_vec(),
                    scale,
                    t0_ms: traffic_started_ms,
                    shards: d.shards,
                };
                let cap = vp.playbook.traffic.max_in_flight.map(u64::from);
                match t.in_shards(d.shards, cap) {
                    Ok(t) => {
                        let drive = crate::shards::drive(cx.clone(), t, plan, d, stop.clone());
                        tokio::spawn(
                            async move {
                                let (report, shards) = drive.await;
                                Some((report, Some(shards)))
                            }
                            .in_current_span(),
                        )
                    }
                    Err(e) => {
                        abort.trigger(format!("the traffic cannot be split: {e}"));
                        tokio::spawn(async { None })
                    }
                }
            }
            None => {
                let run = t.execute_from(stop.clone(), start);
                tokio::spawn(async move { Some((run.await, None)) }.in_current_span())
            }
        };
        let guards_task =
            tokio::spawn(guards::watch(cx.clone(), vp.playbook.guards.clone()).in_current_span());
        let status_task = tokio::spawn(
            refresh(cx.clone(), vp.plan(scale).traffic, recorder.clone()).in_current_span(),
        );

        // The drills, each on its timeline; `after: recovered` waits for the previous one.
        let mut prev: Option<drill::Recovered> = None;
        let mut futs = Vec::new();
        for d in &vp.drills {
            let (tx, rx) = watch::channel(None);
            futs.push(drill::run(cx.clone(), d.clone(), prev.take(), tx));
            prev = Some(rx);
        }
        drills = futures_util::future::join_all(futs).await;

        // The traffic runs to its end unless the run was aborted.
        let mut traffic_task = traffic_task;
        let ended = tokio::select! {
            r = &mut traffic_task => r.ok().flatten(),
            () = abort.triggered() => {
                stop.stop();
                traffic_task.await.ok().flatten()
            }
        };
        let (report, parts) = ended.unzip();
        shards = parts.flatten();
        stop.stop();
        guards_task.abort();
        status_task.abort();
        let latency = latencies(&cx, &recorder);
        cx.status.send_modify(|s| s.latency = latency);
        if let Some(w) = report.as_ref().and_then(drill_load::Report::drop_warning) {
            log(&format!("warning: {w}"));
        }
        traffic_report = report;
    }

    // The final sweep: nothing this run changed may stay changed.
    cx.status.send_modify(|s| s.stage = RunStage::Reverting);
    let still_changed = live::sweep(&cx).await;

    // Teardown (not once the run is someone else's).
    let teardown = if own.lost().is_some() {
        &[][..]
    } else {
        &vp.playbook.teardown[..]
    };
    for (i, s) in teardown.iter().enumerate() {
        let label = s
            .name
            .clone()
            .unwrap_or_else(|| format!("teardown {}", i + 1));
        match live::step(store, &own, s, &allow, &format!("teardown {label}")).await {
            Ok(r) => log(&format!("teardown {label}: {r}")),
            Err(e) => log(&format!(
                "warning: teardown step {label} failed: {}",
                chain(&e)
            )),
        }
    }

    // Verdict.
    cx.status.send_modify(|s| {
        s.stage = RunStage::Reporting;
        s.active_faults.clear();
    });
    let checks_failed = drills
        .iter()
        .flat_map(|d| d.checks.iter())
        .filter(|c| !c.passed)
        .count();
    let slo_failed = traffic_report.as_ref().is_some_and(|r| !r.passed());
    let skipped = drills
        .iter()
        .filter(|d| d.status == crate::outcome::DrillStatus::Skipped)
        .count();
    let aborted = abort.reason();
    let status = if !still_changed.is_empty() {
        Status::RevertFailed
    } else if aborted.is_some() {
        Status::Aborted
    } else if checks_failed > 0 || slo_failed || skipped > 0 {
        Status::Failed
    } else {
        Status::Passed
    };
    let reason = match status {
        Status::RevertFailed => Some(format!(
            "{} fault(s) could not be reverted{}",
            still_changed.len(),
            aborted.map(|a| format!("; {a}")).unwrap_or_default()
        )),
        Status::Aborted => aborted,
        Status::Failed => Some(format!(
            "{checks_failed} check(s) failed{}{}",
            if slo_failed {
                ", and the run-wide SLO"
            } else {
                ""
            },
            if skipped > 0 {
                format!("; {skipped} drill(s) skipped, as the drill before did not recover")
            } else {
                String::new()
            }
        )),
        _ => None,
    };

    let ledger = store.faults(run_id).await.unwrap_or_default();
    let trips = locked(&cx.trips).clone();
    let mut out = Outcome::bare(Some(run_id.to_owned()), status, reason);
    out.drills = drills;
    out.thresholds = traffic_report
        .as_ref()
        .map(|r| r.thresholds.clone())
        .unwrap_or_default();
    out.trips = trips;
    out.still_changed = still_changed;
    out.cause = out.explain();
    let plan = vp.plan(scale).traffic;
    let rendered = report::render(&report::Input {
        run_id,
        playbook: &vp.playbook.metadata.name,
        file: &vp.file,
        outcome: &out,
        started_ms,
        finished_ms: now_ms(),
        time_scale: scale,
        traffic: traffic_report.as_ref(),
        shards: shards.as_ref(),
        ledger: &ledger,
        traffic_started_ms: traffic_report.as_ref().map(|_| traffic_started_ms),
        plan: Some(&plan),
    })
    .redacted(&vp.redact);
    out.reason = out.reason.map(|r| vp.redact.apply(&r).into_owned());
    out.cause = out.cause.map(|c| vp.redact.apply(&c).into_owned());
    // The run's row is written only while this process holds it.
    if own.lost().is_none() {
        match store
            .save_reports(
                &own.lease,
                &rendered.json_text,
                &rendered.markdown,
                &rendered.junit,
            )
            .await
        {
            Ok(()) => {}
            Err(FenceError::Lost(l)) => own.lose(l),
            Err(FenceError::Store(e)) => return Err(e.into()),
        }
    }
    if let Some(d) = &opts.report_dir {
        out.written = rendered.write(&d.join(run_id))?;
    }
    out.report = Some(rendered.report);
    out.markdown = rendered.markdown;
    out.junit = rendered.junit;
    out.html = rendered.html;
    if own.lost().is_none() {
        finish(store, &own, out.status.as_str(), out.reason.as_deref()).await?;
    }
    if let Some(l) = own.lost() {
        // Taken over: the new owner ends the run; this process says so and changes nothing.
        out.status = Status::Aborted;
        out.reason = Some(format!("lease lost: {l}"));
        out.still_changed.clear();
        out.cause = out.explain();
        return Ok(out);
    }
    if out.still_changed.is_empty() {
        match store.unlock(&own.lease).await {
            Ok(()) => {}
            Err(FenceError::Lost(l)) => own.lose(l),
            Err(FenceError::Store(e)) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Every latency so far: the whole traffic's, and each drill's fault and recovery spans'.
fn latencies(cx: &RunContext, recorder: &Recorder) -> Vec<PhaseLatency> {
    let mut out = vec![PhaseLatency::of("", "all", &recorder.overall())];
    let names: Vec<String> = cx
        .status
        .borrow()
        .drills
        .iter()
        .map(|d| d.name.clone())
        .collect();
    for d in &names {
        for phase in ["fault", "recovery"] {
            if let Some(s) = recorder.span(&format!("{d}/{phase}")) {
                out.push(PhaseLatency::of(d, phase, &s));
            }
        }
    }
    out
}

/// How many whole seconds the recent figures cover.
const RECENT: u64 = 5;

/// Refreshes the traffic figures and active faults every 500 ms until the run aborts or
/// the task is dropped.
async fn refresh(cx: Arc<RunContext>, plan: TrafficPlan, recorder: Arc<Recorder>) {
    loop {
        let now = cx.now();
        let to = Duration::from_secs(now.as_secs());
        let from = to.saturating_sub(Duration::from_secs(RECENT));
        let w = recorder.window_between(from, to);
        let span = (to - from).as_secs_f64();
        let faults: Vec<ActiveFault> = locked(&cx.faults)
            .iter()
            .filter(|f| f.state.outstanding())
            .map(|f| ActiveFault {
                drill: f.drill.clone(),
                fault: f.name.clone(),
                backend: f.backend,
                since_s: f.since.map(secs),
            })
            .collect();
        let latency = latencies(&cx, &recorder);
        cx.status.send_modify(|s| {
            s.latency = latency;
            s.elapsed_s = secs(now);
            s.target_rate = drill_spec::timeline::rate_at(&plan, drill_spec::units::Dur(now));
            s.achieved_rate = if span > 0.0 {
                w.arrivals() as f64 / span
            } else {
                0.0
            };
            s.recent_p95_ms = w.latency_at(95.0).as_secs_f64() * 1e3;
            s.recent_error_rate = w.error_rate();
            s.active_faults = faults;
        });
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = cx.abort.triggered() => return,
        }
    }
}
