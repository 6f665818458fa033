//! The engine's side of a distributed run's traffic, between the launch and the end: each
//! shard's reports read from the store, added into the run's recorder (totals at once, each
//! second once its span boundaries are marked), and each shard judged — failed, stopped
//! before its schedule's end, silent, or missing its last report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drill_load::Stop;
use drill_load::metrics::Stats;
use drill_load::shard::Delta;

use drill_report::ShardPart;

use super::protocol::{ADD_AFTER_MS, Report, SILENT_AFTER, STORE_LOSS};
use super::store::ReportRow;

/// What the engine knows of one shard.
#[derive(Debug, Default, Clone)]
struct Seen {
    seq: i64,
    at: Option<Instant>,
    done: bool,
    stopped_ms: Option<i64>,
    stopped_why: Option<String>,
    /// Its counters and failed requests so far, added up from its reports.
    counters: drill_load::metrics::Counters,
    failed: u64,
}

/// The shards' reports as they come, and the first reason the run must stop.
pub(super) struct Collector {
    n: u32,
    seen: BTreeMap<u32, Seen>,
    /// Seconds read but not yet added (see [`Collector::settle`]).
    pending: Vec<(u64, Stats)>,
    /// The first failure: the run's cause; later ones change nothing.
    pub failed: Option<String>,
    /// When the stop was written to the store (this clock, and the wall's).
    pub stop_sent: Option<(Instant, i64)>,
}

impl Collector {
    pub fn new(n: u32) -> Self {
        Collector {
            n,
            seen: (0..n).map(|k| (k, Seen::default())).collect(),
            pending: Vec::new(),
            failed: None,
            stop_sent: None,
        }
    }

    /// The sequence number every shard's reports are read after.
    pub fn after(&self) -> i64 {
        self.seen.values().map(|s| s.seq).min().unwrap_or(0)
    }

    fn fail(&mut self, why: String) {
        self.failed.get_or_insert(why);
    }

    /// Takes the reports read from the store. `stop` says whether the engine has asked the
    /// shards to stop (a shard that stops on its own fails the run).
    pub fn take(&mut self, rows: Vec<ReportRow>, recorder: &drill_load::Recorder, stop: &Stop) {
        let n = self.n;
        for row in rows {
            let Some(s) = self.seen.get_mut(&row.shard) else {
                continue;
            };
            if row.seq <= s.seq {
                continue;
            }
            s.seq = row.seq;
            s.at = Some(Instant::now());
            s.done |= row.done;
            if let Some(e) = row.error {
                self.fail(format!("shard {}/{n} failed: {e}", row.shard));
                continue;
            }
            let r = match serde_json::from_str::<Report>(&row.body) {
                Ok(r) => r,
                Err(e) => {
                    self.fail(format!(
                        "shard {}/{n}'s report does not read: {e}",
                        row.shard
                    ));
                    continue;
                }
            };
            s.stopped_ms = s.stopped_ms.or(r.stopped_ms);
            s.stopped_why = s.stopped_why.take().or(r.stopped_why.clone());
            s.counters.add(&r.delta.counters);
            s.failed += r.delta.failures_total;
            // Its traffic ends early and the engine did not ask: the verdict would be on part
            // of the schedule.
            if let Some(why) = r.stopped_why.as_ref().filter(|_| !stop.stopped()) {
                self.fail(format!(
                    "shard {}/{n} stopped before the end of its schedule: {why}",
                    row.shard
                ));
            }
            if let Err(e) = add(recorder, &r.delta, &mut self.pending) {
                self.fail(format!(
                    "shard {}/{n}'s report cannot be added: {e}",
                    row.shard
                ));
            }
        }
    }

    /// Adds the seconds that ended at least 2 s before `now` (all of them with `None`): by
    /// then every span boundary at or before them is marked.
    pub fn settle(&mut self, recorder: &drill_load::Recorder, now: Option<Duration>) {
        self.pending.retain(|(t, s)| {
            let ready =
                now.is_none_or(|now| (t + 1) * 1000 + ADD_AFTER_MS <= now.as_millis() as u64);
            if ready {
                recorder.absorb_second(*t, s);
            }
            !ready
        });
    }

    /// Fails the run on the first shard silent for [`SILENT_AFTER`], once the traffic has
    /// started (`now`, from the run's start).
    pub fn watch_silence(&mut self, now: Duration) {
        if self.failed.is_some() || now <= SILENT_AFTER {
            return;
        }
        let n = self.n;
        for (k, s) in &self.seen {
            let quiet = s.at.map_or(now, |at| at.elapsed());
            if !s.done && quiet > SILENT_AFTER {
                self.failed = Some(match s.at {
                    Some(_) => format!(
                        "shard {k}/{n} stopped reporting: its last report is {:.1}s old",
                        quiet.as_secs_f64()
                    ),
                    None => format!(
                        "shard {k}/{n} never reported, {:.1}s after the traffic's start",
                        now.as_secs_f64()
                    ),
                });
                return;
            }
        }
    }

    pub fn all_done(&self) -> bool {
        self.seen.values().all(|s| s.done)
    }

    pub fn done_count(&self) -> usize {
        self.seen.values().filter(|s| s.done).count()
    }

    /// Whether to stop waiting for last reports: long after the stop was sent, or after the
    /// schedule's `end`, given the traffic's `timeout`; `now` is from the run's start.
    pub fn give_up(&self, now: Duration, end: Duration, timeout: Duration) -> bool {
        match self.stop_sent {
            Some((at, _)) => at.elapsed() > timeout + STORE_LOSS + Duration::from_secs(2),
            None => now > end + timeout + STORE_LOSS + Duration::from_secs(5),
        }
    }

    /// The shards without a last report, as `k/n`.
    pub fn missing(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|(_, s)| !s.done)
            .map(|(k, _)| format!("{k}/{}", self.n))
            .collect()
    }

    /// How long after `aborted_ms` (the wall clock) the shards stopped sending, by their
    /// clocks: how many reported it, the fastest and the slowest, in ms.
    pub fn stop_lags(&self, aborted_ms: i64) -> Option<(usize, i64, i64)> {
        let lags: Vec<i64> = self
            .seen
            .values()
            .filter_map(|s| s.stopped_ms.map(|m| m - aborted_ms))
            .collect();
        Some((lags.len(), *lags.iter().min()?, *lags.iter().max()?))
    }

    /// Each shard's part, for the report.
    pub fn parts(&self) -> Vec<ShardPart> {
        self.seen
            .iter()
            .map(|(k, s)| ShardPart {
                shard: *k,
                scheduled: s.counters.scheduled,
                sent: s.counters.sent,
                dropped: s.counters.dropped(),
                failed: s.failed,
                finished: s.done,
                stopped: s.stopped_why.clone(),
            })
            .collect()
    }
}

/// Adds a report's totals now and keeps its seconds for [`Collector::settle`].
fn add(
    recorder: &drill_load::Recorder,
    d: &Delta,
    pending: &mut Vec<(u64, Stats)>,
) -> Result<(), drill_load::shard::WireError> {
    let seconds = d
        .seconds
        .iter()
        .map(|s| Ok((s.t, s.stats()?)))
        .collect::<Result<Vec<_>, drill_load::shard::WireError>>()?;
    recorder.absorb_totals(&d.counters, &d.checks, &d.failures, d.failures_total);
    pending.extend(seconds);
    Ok(())
}
