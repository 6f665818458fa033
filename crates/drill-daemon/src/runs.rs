//! Starting a run on the daemon and following it to its end: registered for the API and the
//! halt, counted in the metrics, its verdict logged; a scheduled run after its jitter and the
//! runs it replaces.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drill_engine::schedule::Start;
use drill_engine::{LiveStatus, Options};
use drill_spec::ValidPlaybook;

use crate::metrics;
use crate::state::{RunEntry, Shared, dir_of};

/// A run's latency histograms so far; `ended` keeps its last figures for good.
pub fn record_latency(m: &metrics::Metrics, run: &str, st: &LiveStatus, ended: bool) {
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

/// A scheduled run: after its jitter, after the runs it replaces have ended, named on its
/// fire.
pub async fn scheduled(shared: Arc<Shared>, s: Start) {
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
