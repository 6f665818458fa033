//! One shard (`drill load --run RUN --shard K/N`): reads the plan the engine wrote, sends its
//! part of the schedule from the shared zero, and reports what it measured every half
//! second until its last report. It stops within a poll (250 ms) when the engine says so, when
//! the run is no longer running or its lease ran out, and by itself when it cannot reach the
//! store for [`super::STORE_LOSS`], and when `interrupt` resolves (the CLI's SIGINT/SIGTERM:
//! a Ctrl-C in the terminal reaches the engine and its local shards together, and a pod being
//! deleted is sent SIGTERM) — in every case it still sends its last report. It makes no change
//! to any target: traffic only.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use drill_load::shard::Delta;
use drill_load::{Shard, Stop};

use super::store::Signal;
use super::{POLL_EVERY, Report, STORE_CALL, STORE_LOSS, ShardError, ShardPlan};
use crate::Log;
use crate::store::{Store, now_ms};

/// How a shard ended.
#[derive(Debug, Clone)]
pub struct ShardEnd {
    pub sent: u64,
    pub dropped: u64,
    /// Why it stopped before its schedule's end.
    pub stopped: Option<String>,
}

/// Runs shard `shard` of run `run_id`. When `interrupt` resolves, with why, the shard stops
/// sending as on the engine's stop and still reports what it measured.
pub async fn run(
    store: &Store,
    run_id: &str,
    shard: Shard,
    log: Log,
    interrupt: impl std::future::Future<Output = String>,
) -> Result<ShardEnd, ShardError> {
    let text = store
        .shard_plan(run_id)
        .await?
        .ok_or_else(|| ShardError::NoPlan(run_id.to_owned()))?;
    let plan: ShardPlan = serde_json::from_str(&text).map_err(ShardError::Plan)?;
    if shard.count != plan.shards {
        return Err(ShardError::Count {
            mine: shard,
            plan: plan.shards,
        });
    }
    let cap = plan.playbook.traffic.max_in_flight.map(u64::from);
    let load =
        drill_load::Run::from_parts(&plan.playbook, plan.records, plan.scale)?.shard(shard, cap)?;
    let recorder = load.recorder();
    recorder.track_deltas();
    // The shared zero, on this host's clock.
    let ahead = plan.t0_ms - now_ms();
    let start = if ahead >= 0 {
        Instant::now() + Duration::from_millis(ahead.unsigned_abs())
    } else {
        Instant::now()
            .checked_sub(Duration::from_millis(ahead.unsigned_abs()))
            .unwrap_or_else(Instant::now)
    };
    log(&format!(
        "shard {shard}: {} arrivals from t0 {}",
        load.expected.unwrap_or(0),
        plan.t0_ms
    ));
    let stop = Stop::default();
    let mut traffic = tokio::spawn(load.execute_from(stop.clone(), start));

    let mut outbox: VecDeque<(i64, String)> = VecDeque::new();
    let mut seq = 0i64;
    let mut last_ok = Instant::now();
    let mut ending = Ending::default();
    let mut every = tokio::time::interval(POLL_EVERY);
    let mut tick = 0u64;
    let mut interrupt = std::pin::pin!(interrupt);
    let report = loop {
        tokio::select! {
            r = &mut traffic => break r.ok(),
            why = &mut interrupt, if ending.why.is_none() => {
                ending.stop(&stop, &log, shard, why);
                continue;
            }
            _ = every.tick() => {}
        }
        tick += 1;
        // Bounded: a store behind a partition may hold a query open rather than refuse it.
        let signal = match tokio::time::timeout(STORE_CALL, store.shard_signal(run_id)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer in {}s", STORE_CALL.as_secs())),
        };
        let answered = signal.is_ok();
        match signal {
            Ok(Signal::Go) => last_ok = Instant::now(),
            Ok(Signal::Stop(why)) => {
                last_ok = Instant::now();
                ending.stop(&stop, &log, shard, why);
            }
            Err(e) if last_ok.elapsed() > STORE_LOSS => {
                let why = format!(
                    "the store has not answered for {:.1}s: {e}",
                    last_ok.elapsed().as_secs_f64()
                );
                ending.stop(&stop, &log, shard, why);
            }
            Err(_) => {}
        }
        // A report every other poll: the measurements since the last, and a heartbeat. It is
        // sent only while the store answers, so the poll above keeps its pace without one.
        if tick.is_multiple_of(2) {
            seq += 1;
            outbox.push_back((seq, body(&recorder, &ending)?));
            if answered {
                send(store, run_id, shard, &mut outbox, false).await;
            }
        }
    };
    // The last report: whatever is left, marked done.
    seq += 1;
    outbox.push_back((seq, body(&recorder, &ending)?));
    let deadline = Instant::now() + STORE_LOSS;
    while !outbox.is_empty() {
        send(store, run_id, shard, &mut outbox, true).await;
        if outbox.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    if !outbox.is_empty() {
        return Err(ShardError::Unreported(outbox.len()));
    }
    let c = report.map(|r| r.measurements.counters).unwrap_or_default();
    Ok(ShardEnd {
        sent: c.sent,
        dropped: c.dropped(),
        stopped: ending.why,
    })
}

/// Why and when the shard stopped before its schedule's end: the first cause counts.
#[derive(Default)]
struct Ending {
    why: Option<String>,
    at_ms: Option<i64>,
}

impl Ending {
    fn stop(&mut self, stop: &Stop, log: &Log, shard: Shard, why: String) {
        if self.why.is_some() {
            return;
        }
        stop.stop();
        self.at_ms = Some(now_ms());
        log(&format!("shard {shard}: stopping: {why}"));
        self.why = Some(why);
    }
}

fn body(recorder: &drill_load::Recorder, ending: &Ending) -> Result<String, ShardError> {
    let delta = Delta::take(recorder)?;
    serde_json::to_string(&Report {
        delta,
        stopped_ms: ending.at_ms,
        stopped_why: ending.why.clone(),
    })
    .map_err(ShardError::Plan)
}

/// Sends the queued reports in order; what the store refuses, or does not answer within
/// [`STORE_CALL`], stays queued for the next try (a retried report is written once).
/// The last one is marked done when `last`.
async fn send(
    store: &Store,
    run_id: &str,
    shard: Shard,
    outbox: &mut VecDeque<(i64, String)>,
    last: bool,
) {
    while let Some((seq, body)) = outbox.front() {
        let done = last && outbox.len() == 1;
        let put = store.put_shard_report(run_id, shard.index, *seq, done, None, body);
        if !matches!(tokio::time::timeout(STORE_CALL, put).await, Ok(Ok(()))) {
            return;
        }
        outbox.pop_front();
    }
}
