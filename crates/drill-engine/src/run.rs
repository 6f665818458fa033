//! `drill apply`: one run of a validated playbook, from its lease to its verdict.
//!
//! Order of a run: reconcile (revert what dead runs left) → record the run and take its
//! target locks → preflight every fault and probe (`preflight.rs`; no mutation; any failure
//! aborts before anything changes) → setup steps → traffic for the whole profile, and
//! meanwhile each drill on its timeline (`drill.rs`) with the guards (`guards.rs`) and the
//! lease renewed → a final revert sweep (`live.rs`) → teardown → verdict, reports
//! (`report.rs`), release. This file holds the lease; `execute.rs` runs the stages once it
//! is held.
//!
//! A run is never reported as passed while anything it changed is still changed.
//!
//! The run's lease is renewed every third of its length, fenced (`store/`). When a renewal
//! — or any fenced write — finds another owner, the run has been taken over: traffic stops,
//! no further call reaches a target, the sweep and teardown are skipped (the new owner settles
//! what is left), the run's row is never written again, and the outcome is `aborted` naming
//! the new owner.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drill_spec::ValidPlaybook;
use tokio::sync::watch;
use tracing::Instrument;

use crate::lines::Lines;

use crate::context::{Abort, Ownership};
use crate::error::EngineError;
use crate::execute::{execute, finish};
pub use crate::options::Options;
use crate::outcome::{Outcome, Status};
use crate::owner::Owner;
use crate::recover::{self, Recovered};
use crate::status::{LiveStatus, RunStage};
use crate::store::{FenceError, RunRow, Store, now_ms};
use crate::{Log, chain, preflight};

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
    // Every line this run logs goes through the one redaction rule (values from the
    // environment as `${NAME}`, URL passwords as `***`), to the caller's log and to `tracing`.
    let caller = opts;
    let lines = Lines::new(opts.log.clone(), vp.redact.clone());
    let opts = &Options {
        log: lines.log(),
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

        // `execute` makes its own `Lines` from the caller's log, to give its context both.
        let result = execute(store, &vp, dir, caller, abort, own, status.clone())
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
