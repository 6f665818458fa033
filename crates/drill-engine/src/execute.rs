//! A leased run, stage by stage: [`prepare`] (preflight, fail closed, then setup), the
//! run's [`context`], [`drive`] (the traffic with the drills and the guards), [`cleanup`]
//! (the final revert sweep, teardown), [`verdict`] (pure: how the run ended, from what was
//! measured) and [`persist`] (the report, the run's row, the locks). `run.rs` takes the lease
//! and calls [`execute`]; each stage reads what the one before produced, nothing else.

use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drill_load::metrics::Recorder;
use drill_spec::ValidPlaybook;
use drill_spec::timeline::TrafficPlan;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::checks::fmt_dur;
use crate::context::{Abort, Ownership, RunContext, locked};
use crate::error::EngineError;
use crate::lines::Lines;
use crate::options::Options;
use crate::outcome::{DrillResult, DrillStatus, Outcome, Status, StillChanged, secs};
use crate::shards::Shards;
use crate::status::{ActiveFault, LiveStatus, PhaseLatency, RunStage};
use crate::store::{FenceError, Store, now_ms};
use crate::{Log, chain, drill, guards, live, preflight, report};

/// What the traffic and the drills produced.
struct Driven {
    drills: Vec<DrillResult>,
    traffic: Option<drill_load::Report>,
    shards: Option<Shards>,
}

/// Runs a leased run from its preflight to its verdict and reports.
pub(crate) async fn execute(
    store: &Store,
    vp: &ValidPlaybook,
    dir: &Path,
    opts: &Options,
    abort: Abort,
    own: Arc<Ownership>,
    status: watch::Sender<LiveStatus>,
) -> Result<Outcome, EngineError> {
    let started_ms = now_ms();
    let lines = Lines::new(opts.log.clone(), vp.redact.clone());
    let opts = &Options {
        log: lines.log(),
        ..opts.clone()
    };
    prepare(store, vp, &own, &abort, &opts.log, opts.time_scale).await;
    let traffic = match drill_load::Run::from_playbook(&vp.playbook, dir, opts.time_scale) {
        Ok(t) => Some(t),
        Err(e) => {
            abort.trigger(format!("the traffic cannot start: {}", chain(&e)));
            None
        }
    };
    let (cx, traffic_started_ms) = context(
        store,
        vp,
        (opts, lines),
        abort,
        own,
        status,
        traffic.as_ref(),
    );
    let driven = drive(&cx, vp, traffic, traffic_started_ms).await;
    let still_changed = cleanup(&cx, vp).await;
    cx.status.send_modify(|s| {
        s.stage = RunStage::Reporting;
        s.active_faults.clear();
    });
    let slo_failed = driven.traffic.as_ref().is_some_and(|r| !r.passed());
    let (status, reason) = verdict(
        &driven.drills,
        slo_failed,
        still_changed.len(),
        cx.abort.reason(),
    );
    let mut out = Outcome::bare(Some(cx.run_id.clone()), status, reason);
    out.thresholds = driven
        .traffic
        .as_ref()
        .map(|r| r.thresholds.clone())
        .unwrap_or_default();
    out.trips = locked(&cx.trips).clone();
    out.still_changed = still_changed;
    persist(&cx, vp, opts, out, driven, started_ms, traffic_started_ms).await
}

/// Preflight — every target and probe read, nothing changed; any failure aborts the run
/// before anything changes — then the setup steps, the first that fails aborting it.
async fn prepare(
    store: &Store,
    vp: &ValidPlaybook,
    own: &Arc<Ownership>,
    abort: &Abort,
    log: &Log,
    scale: f64,
) {
    let found = preflight::check(vp, scale).await;
    for w in &found.warnings {
        log(&format!("warning: {w}"));
    }
    if found.errors.is_empty() {
        log("preflight: every target and probe answered");
    } else {
        let errors: Vec<String> = found.errors.iter().map(|e| chain(e)).collect();
        for e in &errors {
            log(&format!("preflight: {e}"));
        }
        abort.trigger(format!("preflight failed: {}", errors.join("; ")));
    }
    if abort.reason().is_some() {
        return;
    }
    let allow = &vp.playbook.target.allow;
    for (i, s) in vp.setup.iter().enumerate() {
        let label = s.name.clone().unwrap_or_else(|| format!("setup {}", i + 1));
        match live::step(store, own, s, allow, &format!("setup {label}")).await {
            Ok(r) => log(&format!("setup {label}: {r}")),
            Err(e) => {
                abort.trigger(format!("setup step {label} failed: {}", chain(&e)));
                break;
            }
        }
    }
}

/// What the run's tasks share: the traffic's recorder (keeping the longest baseline's
/// window), the clock's zero — ahead by the shards' lead for a distributed run, whose shards
/// start before it — and the instant of that zero (milliseconds since the epoch).
fn context(
    store: &Store,
    vp: &ValidPlaybook,
    (opts, lines): (&Options, Lines),
    abort: Abort,
    own: Arc<Ownership>,
    status: watch::Sender<LiveStatus>,
    traffic: Option<&drill_load::Run>,
) -> (Arc<RunContext>, i64) {
    let scale = opts.time_scale;
    let recorder = traffic.map_or_else(
        || {
            Arc::new(Recorder::new(
                drill_load::metrics::ErrorSet::standard(),
                Duration::from_secs(10),
            ))
        },
        drill_load::Run::recorder,
    );
    let longest_baseline = vp
        .drills
        .iter()
        .map(|d| d.spec.baseline.scaled(scale).0)
        .max()
        .unwrap_or_default();
    recorder.retain_for(longest_baseline.max(Duration::from_secs(10)) + Duration::from_secs(2));
    let distributed = vp.playbook.traffic.distributed.as_ref();
    let lead = distributed.map_or(Duration::ZERO, crate::shards::lead);
    let start = Instant::now() + lead;
    let traffic_started_ms = now_ms() + i64::try_from(lead.as_millis()).unwrap_or(0);
    let cx = Arc::new(RunContext {
        store: store.clone(),
        run_id: own.lease.run_id.clone(),
        own,
        allow: vp.playbook.target.allow.clone(),
        log: opts.log.clone(),
        lines,
        start,
        scale,
        abort,
        recorder,
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
    (cx, traffic_started_ms)
}

/// The traffic for the whole profile and, meanwhile, each drill on its timeline (`after:
/// recovered` waits for the previous one) with the guards and the live status; the traffic
/// runs to its end unless the run is aborted. Nothing runs when the run was aborted before.
async fn drive(
    cx: &Arc<RunContext>,
    vp: &ValidPlaybook,
    traffic: Option<drill_load::Run>,
    traffic_started_ms: i64,
) -> Driven {
    let not_run = || vp.drills.iter().map(crate::outcome::drill_result).collect();
    let Some(t) = traffic.filter(|_| cx.abort.reason().is_none()) else {
        return Driven {
            drills: not_run(),
            traffic: None,
            shards: None,
        };
    };
    cx.say(&format!(
        "traffic: {} for {}",
        vp.playbook.metadata.name,
        fmt_dur(t.duration)
    ));
    cx.status.send_modify(|s| s.stage = RunStage::Running);
    let stop = drill_load::Stop::default();
    let mut traffic_task = start_traffic(cx, vp, t, &stop, traffic_started_ms);
    let guards_task =
        tokio::spawn(guards::watch(cx.clone(), vp.playbook.guards.clone()).in_current_span());
    let status_task = tokio::spawn(
        refresh(cx.clone(), vp.plan(cx.scale).traffic, cx.recorder.clone()).in_current_span(),
    );
    let mut prev: Option<drill::Recovered> = None;
    let mut futs = Vec::new();
    for d in &vp.drills {
        let (tx, rx) = watch::channel(None);
        futs.push(drill::run(cx.clone(), d.clone(), prev.take(), tx));
        prev = Some(rx);
    }
    let drills = futures_util::future::join_all(futs).await;
    let ended = tokio::select! {
        r = &mut traffic_task => r.ok().flatten(),
        () = cx.abort.triggered() => {
            stop.stop();
            traffic_task.await.ok().flatten()
        }
    };
    let (report, parts) = ended.unzip();
    stop.stop();
    guards_task.abort();
    status_task.abort();
    let latency = latencies(cx, &cx.recorder);
    cx.status.send_modify(|s| s.latency = latency);
    if let Some(w) = report.as_ref().and_then(drill_load::Report::drop_warning) {
        (cx.log)(&format!("warning: {w}"));
    }
    Driven {
        drills,
        traffic: report,
        shards: parts.flatten(),
    }
}

/// The traffic's task: in this process, or split across the shards of a distributed run.
fn start_traffic(
    cx: &Arc<RunContext>,
    vp: &ValidPlaybook,
    t: drill_load::Run,
    stop: &drill_load::Stop,
    traffic_started_ms: i64,
) -> JoinHandle<Option<(drill_load::Report, Option<Shards>)>> {
    let Some(d) = vp.playbook.traffic.distributed.clone() else {
        let run = t.execute_from(stop.clone(), cx.start);
        return tokio::spawn(async move { Some((run.await, None)) }.in_current_span());
    };
    cx.say(&format!(
        "traffic: {} shards ({}), the first arrival in {}",
        d.shards,
        match d.run_on {
            drill_spec::model::ShardsOn::Local => "processes on this host",
            drill_spec::model::ShardsOn::Kubernetes => "an Indexed Job",
        },
        fmt_dur(crate::shards::lead(&d))
    ));
    let plan = crate::shards::ShardPlan {
        playbook: vp.playbook.clone(),
        records: t.records().to_vec(),
        scale: cx.scale,
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
            cx.abort
                .trigger(format!("the traffic cannot be split: {e}"));
            tokio::spawn(async { None })
        }
    }
}

/// The final sweep — nothing this run changed may stay changed — then the teardown steps
/// (not once the run is someone else's). Returns what is still changed.
async fn cleanup(cx: &Arc<RunContext>, vp: &ValidPlaybook) -> Vec<StillChanged> {
    cx.status.send_modify(|s| s.stage = RunStage::Reverting);
    let still_changed = live::sweep(cx).await;
    let teardown = if cx.own.lost().is_some() {
        &[][..]
    } else {
        &vp.teardown[..]
    };
    for (i, s) in teardown.iter().enumerate() {
        let label = s
            .name
            .clone()
            .unwrap_or_else(|| format!("teardown {}", i + 1));
        match live::step(
            &cx.store,
            &cx.own,
            s,
            &cx.allow,
            &format!("teardown {label}"),
        )
        .await
        {
            Ok(r) => (cx.log)(&format!("teardown {label}: {r}")),
            Err(e) => (cx.log)(&format!(
                "warning: teardown step {label} failed: {}",
                chain(&e)
            )),
        }
    }
    still_changed
}

/// How a run ended, and why in one line, from what it measured: anything still changed
/// (`revert_failed`) before an abort, before a failed check, run-wide SLO or skipped drill
/// (`failed`); else `passed`. Pure: it reads nothing else.
pub(crate) fn verdict(
    drills: &[DrillResult],
    slo_failed: bool,
    still_changed: usize,
    aborted: Option<String>,
) -> (Status, Option<String>) {
    let checks_failed = drills
        .iter()
        .flat_map(|d| d.checks.iter())
        .filter(|c| !c.passed)
        .count();
    let skipped = drills
        .iter()
        .filter(|d| d.status == DrillStatus::Skipped)
        .count();
    if still_changed > 0 {
        let why = format!(
            "{still_changed} fault(s) could not be reverted{}",
            aborted.map(|a| format!("; {a}")).unwrap_or_default()
        );
        return (Status::RevertFailed, Some(why));
    }
    if let Some(a) = aborted {
        return (Status::Aborted, Some(a));
    }
    if checks_failed == 0 && !slo_failed && skipped == 0 {
        return (Status::Passed, None);
    }
    let why = format!(
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
    );
    (Status::Failed, Some(why))
}

/// The report (rendered, redacted, written), the run's row and the release of its locks —
/// each fenced: a process that lost the run writes nothing and says so.
async fn persist(
    cx: &Arc<RunContext>,
    vp: &ValidPlaybook,
    opts: &Options,
    mut out: Outcome,
    driven: Driven,
    started_ms: i64,
    traffic_started_ms: i64,
) -> Result<Outcome, EngineError> {
    let (store, own, run_id) = (&cx.store, &cx.own, cx.run_id.as_str());
    out.drills = driven.drills;
    out.cause = out.explain();
    let ledger = store.faults(run_id).await.unwrap_or_default();
    let plan = vp.plan(cx.scale).traffic;
    let rendered = report::render(
        &report::Input {
            run_id,
            playbook: &vp.playbook.metadata.name,
            file: &vp.file,
            outcome: &out,
            started_ms,
            finished_ms: now_ms(),
            time_scale: cx.scale,
            traffic: driven.traffic.as_ref(),
            shards: driven.shards.as_ref(),
            ledger: &ledger,
            traffic_started_ms: driven.traffic.as_ref().map(|_| traffic_started_ms),
            plan: Some(&plan),
        },
        &vp.redact,
    );
    out.reason = out.reason.map(|r| vp.redact.apply(&r).into_owned());
    out.cause = out.cause.map(|c| vp.redact.apply(&c).into_owned());
    // The run's row is written only while this process holds it.
    if own.lost().is_none() {
        let saved = store
            .save_reports(
                &own.lease,
                &rendered.json_text,
                &rendered.markdown,
                &rendered.junit,
            )
            .await;
        match saved {
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
        finish(store, own, out.status.as_str(), out.reason.as_deref()).await?;
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

/// Ends the run's row, fenced; a lost lease leaves the row to the new owner.
pub(crate) async fn finish(
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

#[cfg(test)]
mod tests {
    use super::*;
    use drill_report::{CheckKind, CheckResult, Verdict};

    fn drill(status: DrillStatus, checks: &[bool]) -> DrillResult {
        let mut d = DrillResult::new("d".into(), None);
        d.status = status;
        d.checks = checks
            .iter()
            .map(|ok| CheckResult {
                name: "c".into(),
                kind: CheckKind::Slo,
                phase: drill_spec::model::Phase::Fault,
                passed: *ok,
                verdict: if *ok { Verdict::Pass } else { Verdict::Fail },
                why: String::new(),
                measured: String::new(),
                limit: String::new(),
                recovery_s: None,
            })
            .collect();
        d
    }

    #[test]
    fn a_run_passes_only_when_nothing_failed_was_skipped_aborted_or_left_changed() {
        let ok = [drill(DrillStatus::Completed, &[true, true])];
        assert_eq!(verdict(&ok, false, 0, None), (Status::Passed, None));
        let (s, why) = verdict(
            &[drill(DrillStatus::Completed, &[true, false])],
            true,
            0,
            None,
        );
        assert_eq!(s, Status::Failed);
        assert_eq!(
            why.as_deref(),
            Some("1 check(s) failed, and the run-wide SLO")
        );
        let (s, why) = verdict(&[drill(DrillStatus::Skipped, &[])], false, 0, None);
        assert_eq!(s, Status::Failed);
        assert!(why.is_some_and(|w| w.contains("1 drill(s) skipped")));
        assert_eq!(
            verdict(&ok, false, 0, Some("guard tripped".into())),
            (Status::Aborted, Some("guard tripped".into()))
        );
    }

    #[test]
    fn anything_still_changed_outranks_every_other_ending() {
        let failed = [drill(DrillStatus::Aborted, &[false])];
        let (s, why) = verdict(&failed, true, 2, Some("SIGTERM".into()));
        assert_eq!(s, Status::RevertFailed);
        assert_eq!(
            why.as_deref(),
            Some("2 fault(s) could not be reverted; SIGTERM")
        );
    }
}
