//! Measurements: HdrHistograms of latency (from the intended start) and service time (from
//! the actual send), overall, per phase and per second, plus counters and a bounded sample of
//! failures. Memory depends on the run's length and phases, never on the number of requests.
//! (Long because the recorder, its spans and its sliding windows share one lock and one clock.)

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::stats::{ErrorSet, Failure, Outcome, Stats, class_of};

/// Failures kept as examples: the first few and the most recent.
const FIRST_FAILURES: usize = 20;
const RECENT_FAILURES: usize = 80;

/// One second of the run, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds from the start (by intended start time).
    pub t: u64,
    pub requests: u64,
    /// Arrivals of the schedule intended in this second that were sent (`requests` less
    /// cursor follow-ups): what the target rate is compared with.
    pub arrivals: u64,
    pub failed: u64,
    pub dropped: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// An example failed request: the report's type.
pub use drill_report::FailureSample;

/// Counters of the schedule.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Arrivals the schedule reached.
    pub scheduled: u64,
    /// Requests sent (arrivals plus cursor follow-ups).
    pub sent: u64,
    /// Responses or failures recorded.
    pub completed: u64,
    /// Arrivals that could not start on time: the in-flight cap was reached.
    pub dropped_cap: u64,
    /// Arrivals that could not start on time: the client fell behind the schedule.
    pub dropped_late: u64,
    /// Cursor follow-up requests.
    pub follow_ups: u64,
    pub in_flight_peak: u64,
}

impl Counters {
    pub fn dropped(&self) -> u64 {
        self.dropped_cap + self.dropped_late
    }

    /// Adds another process's counters (a shard's): sums, but the in-flight peak is the
    /// largest of either (processes do not share a cap, and their peaks need not coincide).
    pub fn add(&mut self, o: &Counters) {
        self.scheduled += o.scheduled;
        self.sent += o.sent;
        self.completed += o.completed;
        self.dropped_cap += o.dropped_cap;
        self.dropped_late += o.dropped_late;
        self.follow_ups += o.follow_ups;
        self.in_flight_peak = self.in_flight_peak.max(o.in_flight_peak);
    }
}

#[derive(Debug)]
struct Inner {
    overall: Stats,
    /// `(passes, fails)` of each request's body check.
    checks: BTreeMap<String, (u64, u64)>,
    phases: Vec<(String, Duration, Stats)>,
    spans: Vec<Span>,
    open_seconds: BTreeMap<u64, Stats>,
    /// Closed seconds kept whole for sliding windows, the newest `retain` seconds.
    retained: VecDeque<(u64, Stats)>,
    retain: u64,
    seconds: Vec<Second>,
    counters: Counters,
    first_failures: Vec<FailureSample>,
    recent_failures: VecDeque<FailureSample>,
    failures_total: u64,
    /// What was recorded since the last [`Recorder::take_delta`] (a shard's recorder only).
    delta: Option<Pending>,
    /// How long after its second a sample may still arrive (the request timeout, plus slack).
    grace: Duration,
}

/// What a shard recorded since its last report: its per-second measurements by intended
/// second, its counters, body checks and failure samples (see [`crate::shard::Delta`]).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub seconds: BTreeMap<u64, Stats>,
    pub counters: Counters,
    pub checks: BTreeMap<String, (u64, u64)>,
    pub failures: Vec<FailureSample>,
    pub failures_total: u64,
}

/// Collects measurements from every request task. Cheap to share (`Arc<Recorder>`).
#[derive(Debug)]
pub struct Recorder {
    inner: Mutex<Inner>,
    errors: ErrorSet,
}

/// What the run measured, at the end.
#[derive(Debug, Clone)]
pub struct Measurements {
    pub overall: Stats,
    /// `(request, passes, fails)` of each request's body check.
    pub checks: Vec<(String, u64, u64)>,
    pub phases: Vec<(String, Duration, Stats)>,
    pub seconds: Vec<Second>,
    pub counters: Counters,
    pub failures: Vec<FailureSample>,
    pub failures_total: u64,
}

impl Recorder {
    pub fn new(errors: ErrorSet, timeout: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                overall: Stats::default(),
                checks: BTreeMap::new(),
                phases: Vec::new(),
                spans: Vec::new(),
                open_seconds: BTreeMap::new(),
                retained: VecDeque::new(),
                retain: 0,
                seconds: Vec::new(),
                counters: Counters::default(),
                first_failures: Vec::new(),
                recent_failures: VecDeque::new(),
                failures_total: 0,
                delta: None,
                grace: timeout + Duration::from_secs(2),
            }),
            errors,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind; keep measuring.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a phase at `at` (offset from the start of the traffic). Samples are attributed to
    /// phases by their intended start time; a phase runs until the next one starts.
    pub fn mark_phase(&self, name: &str, at: Duration) {
        let mut g = self.lock();
        g.phases.push((name.to_owned(), at, Stats::default()));
        g.phases.sort_by_key(|p| p.1);
    }

    /// Opens a named span at `from`: it collects every sample whose intended start is at or
    /// after `from` and before its end ([`Recorder::close_span`]). Unlike phases, spans may
    /// overlap (one drill's recovery is the next one's baseline). Reopening a name restarts it.
    pub fn open_span(&self, name: &str, from: Duration) {
        let mut g = self.lock();
        g.spans.retain(|s| s.name != name);
        g.spans.push(Span {
            name: name.to_owned(),
            start: from,
            end: None,
            stats: Stats::default(),
        });
    }

    /// Ends a span at `at`; samples that arrive later but were intended before `at` still count.
    pub fn close_span(&self, name: &str, at: Duration) {
        if let Some(s) = self.lock().spans.iter_mut().find(|s| s.name == name) {
            s.end = Some(at);
        }
    }

    /// What a span has measured so far.
    pub fn span(&self, name: &str) -> Option<Stats> {
        self.lock()
            .spans
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.stats.clone())
    }

    /// Keeps whole per-second measurements this long, for [`Recorder::window`].
    pub fn retain_for(&self, d: Duration) {
        self.lock().retain = d.as_secs() + 1;
    }

    /// The traffic intended from `from` to `to` (offsets from the start, in whole seconds:
    /// the seconds holding both ends count whole), for guards and baselines. Reaches back at
    /// most the retention set by [`Recorder::retain_for`] plus the request timeout.
    pub fn window_between(&self, from: Duration, to: Duration) -> Stats {
        let g = self.lock();
        let (from, to) = (from.as_secs(), to.as_secs());
        let mut acc = Stats::default();
        for (_, s) in g.retained.iter().filter(|(t, _)| *t >= from && *t <= to) {
            acc.merge(s);
        }
        for (_, s) in g.open_seconds.range(from..=to) {
            acc.merge(s);
        }
        acc
    }

    pub fn count_scheduled(&self) {
        self.count_scheduled_n(1);
    }

    /// `n` arrivals reached by the schedule at once (an open-model worker's batch).
    pub fn count_scheduled_n(&self, n: u64) {
        let mut g = self.lock();
        g.counters.scheduled += n;
        if let Some(d) = g.delta.as_mut() {
            d.counters.scheduled += n;
        }
    }

    pub fn count_sent(&self, follow_up: bool, in_flight: u64) {
        let mut g = self.lock();
        let Inner {
            counters, delta, ..
        } = &mut *g;
        for c in std::iter::once(counters).chain(delta.as_mut().map(|d| &mut d.counters)) {
            c.sent += 1;
            if follow_up {
                c.follow_ups += 1;
            }
            c.in_flight_peak = c.in_flight_peak.max(in_flight);
        }
    }

    /// An arrival at `intended` that could not start on time.
    pub fn drop_arrival(&self, intended: Duration, late: bool) {
        let mut g = self.lock();
        if late {
            g.counters.dropped_late += 1;
        } else {
            g.counters.dropped_cap += 1;
        }
        g.overall.dropped += 1;
        if let Some(p) = phase_of(&mut g.phases, intended) {
            p.dropped += 1;
        }
        for s in spans_of(&mut g.spans, intended) {
            s.dropped += 1;
        }
        let sec = intended.as_secs();
        g.open_seconds.entry(sec).or_default().dropped += 1;
        if let Some(d) = g.delta.as_mut() {
            if late {
                d.counters.dropped_late += 1;
            } else {
                d.counters.dropped_cap += 1;
            }
            d.seconds.entry(sec).or_default().dropped += 1;
        }
    }

    /// Records a finished request. `intended` is its scheduled offset; `latency` is measured
    /// from that, `service` from when it was actually sent.
    pub fn record(
        &self,
        request: &str,
        intended: Duration,
        latency: Duration,
        service: Duration,
        o: &Outcome,
    ) {
        self.record_inner(request, intended, latency, service, o, Sample::Arrival);
    }

    /// Records a cursor follow-up of the arrival intended at `intended`: counted with it, but
    /// not as an arrival of the schedule.
    pub fn record_follow_up(
        &self,
        request: &str,
        intended: Duration,
        service: Duration,
        o: &Outcome,
    ) {
        self.record_inner(request, intended, service, service, o, Sample::FollowUp);
    }

    /// Records a closed-loop request: scheduled, sent and finished in one step (one lock).
    pub fn record_closed(
        &self,
        request: &str,
        intended: Duration,
        service: Duration,
        o: &Outcome,
        in_flight: u64,
    ) {
        self.record_inner(
            request,
            intended,
            service,
            service,
            o,
            Sample::Closed(in_flight),
        );
    }

    fn record_inner(
        &self,
        request: &str,
        intended: Duration,
        latency: Duration,
        service: Duration,
        o: &Outcome,
        kind: Sample,
    ) {
        let (closed, follow_up) = match kind {
            Sample::Arrival => (None, false),
            Sample::FollowUp => (None, true),
            Sample::Closed(in_flight) => (Some(in_flight), false),
        };
        let failed = self.errors.counts(o);
        let mut g = self.lock();
        if let Some(d) = g.delta.as_mut() {
            d.record(request, intended, latency, service, o, failed, kind);
        }
        if let Some(in_flight) = closed {
            g.counters.scheduled += 1;
            g.counters.sent += 1;
            g.counters.in_flight_peak = g.counters.in_flight_peak.max(in_flight);
        }
        g.counters.completed += 1;
        g.overall.record(latency, service, o, failed);
        if let Some(ok) = o.check {
            let c = g.checks.entry(request.to_owned()).or_default();
            if ok {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        if let Some(p) = phase_of(&mut g.phases, intended) {
            p.record(latency, service, o, failed);
        }
        for s in spans_of(&mut g.spans, intended) {
            s.record(latency, service, o, failed);
        }
        let second = g.open_seconds.entry(intended.as_secs()).or_default();
        second.record(latency, service, o, failed);
        if follow_up {
            second.follow_ups += 1;
            g.overall.follow_ups += 1;
            if let Some(p) = phase_of(&mut g.phases, intended) {
                p.follow_ups += 1;
            }
            for s in spans_of(&mut g.spans, intended) {
                s.follow_ups += 1;
            }
        }
        if failed {
            g.failures_total += 1;
            g.keep_failure(failure_sample(request, intended, latency, o));
        }
    }

    /// Closes the seconds that no sample can reach any more (`now` is the offset from start).
    pub fn tick(&self, now: Duration) {
        let mut g = self.lock();
        let horizon = now.saturating_sub(g.grace).as_secs();
        close_seconds(&mut g, Some(horizon));
    }

    /// Everything measured so far.
    pub fn overall(&self) -> Stats {
        self.lock().overall.clone()
    }

    /// A look at the run so far, for progress displays and guards.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        let recent = g
            .open_seconds
            .values()
            .rev()
            .take(5)
            .fold(Stats::default(), |mut acc, s| {
                acc.merge(s);
                acc
            });
        Snapshot {
            counters: g.counters,
            requests: g.overall.requests,
            failed: g.overall.failed,
            p95_recent: recent.latency_at(95.0),
            p95: g.overall.latency_at(95.0),
        }
    }

    /// From now on, keeps what is recorded apart as well, for [`Recorder::take_delta`]: a
    /// shard reports its measurements in deltas, which the engine adds up.
    pub fn track_deltas(&self) {
        let mut g = self.lock();
        if g.delta.is_none() {
            g.delta = Some(Pending::default());
        }
    }

    /// What was recorded since the last call (empty unless [`Recorder::track_deltas`]).
    pub(crate) fn take_delta(&self) -> Pending {
        let mut g = self.lock();
        let fresh = g.delta.as_ref().map(|_| Pending::default());
        std::mem::replace(&mut g.delta, fresh).unwrap_or_default()
    }

    /// How long after its second a sample may still arrive. The engine's recorder of a
    /// distributed run waits longer than a local one: shards report every half second.
    pub fn set_grace(&self, grace: Duration) {
        self.lock().grace = grace;
    }

    /// Adds a shard's measurements of the second `t` (intended, from the shared zero): to the
    /// whole run, to the phase and every span that hold the second, and to the second itself.
    /// Exact: histograms add bucket by bucket, counts add. A span holds the second when it
    /// starts at or before it and ends after it — exact for spans that start and end on whole
    /// seconds, which is how the engine marks them in a distributed run.
    pub fn absorb_second(&self, t: u64, stats: &Stats) {
        let mut g = self.lock();
        let at = Duration::from_secs(t);
        g.overall.merge(stats);
        if let Some(p) = phase_of(&mut g.phases, at) {
            p.merge(stats);
        }
        for s in spans_of(&mut g.spans, at) {
            s.merge(stats);
        }
        if let Some((_, r)) = g.retained.iter_mut().find(|(k, _)| *k == t) {
            // A report later than the grace: the whole run and its spans still count it.
            r.merge(stats);
        } else if g.seconds.binary_search_by_key(&t, |s| s.t).is_err() {
            g.open_seconds.entry(t).or_default().merge(stats);
        }
    }

    /// Adds a shard's counters, body checks and failure samples.
    pub fn absorb_totals(
        &self,
        counters: &Counters,
        checks: &[(String, u64, u64)],
        failures: &[FailureSample],
        failures_total: u64,
    ) {
        let mut g = self.lock();
        g.counters.add(counters);
        for (name, pass, fail) in checks {
            let e = g.checks.entry(name.clone()).or_default();
            e.0 += pass;
            e.1 += fail;
        }
        g.failures_total += failures_total;
        for f in failures {
            g.keep_failure(f.clone());
        }
    }

    /// Ends the recording and returns everything measured.
    pub fn finish(&self) -> Measurements {
        let mut g = self.lock();
        close_seconds(&mut g, None);
        let mut failures = g.first_failures.clone();
        failures.extend(g.recent_failures.iter().cloned());
        Measurements {
            overall: g.overall.clone(),
            checks: g
                .checks
                .iter()
                .map(|(k, (p, f))| (k.clone(), *p, *f))
                .collect(),
            phases: g.phases.clone(),
            seconds: g.seconds.clone(),
            counters: g.counters,
            failures,
            failures_total: g.failures_total,
        }
    }
}

fn failure_sample(
    request: &str,
    intended: Duration,
    latency: Duration,
    o: &Outcome,
) -> FailureSample {
    FailureSample {
        at_s: (intended.as_secs_f64() * 1000.0).round() / 1000.0,
        request: request.to_owned(),
        class: class_of(o),
        status: o.status,
        latency_ms: latency.as_secs_f64() * 1000.0,
        request_id: o.request_id.clone(),
    }
}

impl Inner {
    /// Keeps a failure sample if it is among the first or the most recent.
    fn keep_failure(&mut self, sample: FailureSample) {
        if self.first_failures.len() < FIRST_FAILURES {
            self.first_failures.push(sample);
        } else {
            if self.recent_failures.len() == RECENT_FAILURES {
                self.recent_failures.pop_front();
            }
            self.recent_failures.push_back(sample);
        }
    }
}

impl Pending {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        request: &str,
        intended: Duration,
        latency: Duration,
        service: Duration,
        o: &Outcome,
        failed: bool,
        kind: Sample,
    ) {
        if let Sample::Closed(in_flight) = kind {
            self.counters.scheduled += 1;
            self.counters.sent += 1;
            self.counters.in_flight_peak = self.counters.in_flight_peak.max(in_flight);
        }
        self.counters.completed += 1;
        let second = self.seconds.entry(intended.as_secs()).or_default();
        second.record(latency, service, o, failed);
        if matches!(kind, Sample::FollowUp) {
            second.follow_ups += 1;
        }
        if let Some(ok) = o.check {
            let c = self.checks.entry(request.to_owned()).or_default();
            if ok {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        if failed {
            self.failures_total += 1;
            // A report carries a bounded sample: the first of the shard's run, then the
            // most recent of each report.
            if self.failures.len() < FIRST_FAILURES + RECENT_FAILURES {
                self.failures
                    .push(failure_sample(request, intended, latency, o));
            } else {
                self.failures.remove(FIRST_FAILURES);
                self.failures
                    .push(failure_sample(request, intended, latency, o));
            }
        }
    }
}

/// What a recorded request was.
#[derive(Debug, Clone, Copy)]
enum Sample {
    /// The first request of an arrival of the open model.
    Arrival,
    /// A cursor follow-up of an arrival.
    FollowUp,
    /// A closed-loop request, with the connections in flight.
    Closed(u64),
}

/// Progress of a running load.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub counters: Counters,
    pub requests: u64,
    pub failed: u64,
    pub p95_recent: Duration,
    pub p95: Duration,
}

/// A named span of the run (see [`Recorder::open_span`]).
#[derive(Debug)]
struct Span {
    name: String,
    start: Duration,
    end: Option<Duration>,
    stats: Stats,
}

fn spans_of(spans: &mut [Span], t: Duration) -> impl Iterator<Item = &mut Stats> {
    spans
        .iter_mut()
        .filter(move |s| s.start <= t && s.end.is_none_or(|e| t < e))
        .map(|s| &mut s.stats)
}

fn phase_of(phases: &mut [(String, Duration, Stats)], t: Duration) -> Option<&mut Stats> {
    phases.iter_mut().rev().find(|p| p.1 <= t).map(|p| &mut p.2)
}

fn close_seconds(g: &mut Inner, before: Option<u64>) {
    let keys: Vec<u64> = g
        .open_seconds
        .keys()
        .copied()
        .filter(|k| before.is_none_or(|b| *k < b))
        .collect();
    for k in keys {
        if let Some(s) = g.open_seconds.remove(&k) {
            let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
            g.seconds.push(Second {
                t: k,
                requests: s.requests,
                arrivals: s.arrivals(),
                failed: s.failed,
                dropped: s.dropped,
                p50_ms: ms(s.latency_at(50.0)),
                p90_ms: ms(s.latency_at(90.0)),
                p95_ms: ms(s.latency_at(95.0)),
                p99_ms: ms(s.latency_at(99.0)),
                max_ms: ms(s.latency_max()),
            });
            if g.retain > 0 {
                g.retained.push_back((k, s));
                while g.retained.front().is_some_and(|(t, _)| t + g.retain < k) {
                    g.retained.pop_front();
                }
            }
        }
    }
    g.seconds.sort_by_key(|s| s.t);
}
