//! Running the load: the open model (a schedule of arrivals, a cap on requests in flight) and
//! the closed loop (N connections, each sending as fast as responses come back).
//!
//! The open model runs on `workers` OS threads, each with its own single-threaded runtime
//! and its own connections: worker `w` of `W` takes the arrivals `w, w+W, w+2W, …` of the
//! one schedule, sleeps on its runtime's timer (a wheel, 1 ms ticks) until the next one is
//! due, then starts every arrival that is due by now as a task on its own thread — a batch
//! per tick at high rates, no hand-off between threads per request. Each arrival keeps its
//! exact intended start, and its latency is measured from it (no coordinated omission: a
//! tick's rounding is in the measured latency, never hidden). An arrival that cannot start
//! on time — the in-flight cap (shared by the workers) is reached, or the worker is later
//! than `late_tolerance` — is counted as dropped, never silently skipped or sent in a burst.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::arrivals::Arrivals;
use crate::client::{self, Client};
use crate::metrics::{Failure, Outcome, Recorder};
use crate::request::{self, Mix};
use crate::shard::{Shard, stripe};

/// Everything a request task needs.
#[derive(Debug)]
pub struct Load {
    pub client: Client,
    pub mix: Mix,
    pub recorder: Arc<Recorder>,
    pub timeout: Duration,
}

/// Open-model settings.
#[derive(Debug, Clone, Copy)]
pub struct OpenConfig {
    pub max_in_flight: u64,
    /// An arrival this late is dropped rather than sent in a burst.
    pub late_tolerance: Duration,
    /// Worker threads, each owning its connections ([`workers_for`]).
    pub workers: usize,
    /// The part of the schedule this process sends ([`Shard::WHOLE`] unless distributed).
    pub shard: Shard,
}

/// Arrivals per second one worker thread is given before another is added. One worker
/// costs about 15 µs of CPU per request on loopback (docs/PERFORMANCE.md), so it holds
/// 40,000/s on well under a core; a second one below that only adds wake-ups (measured at
/// 20,000/s on 2 cores: 14.6–15.8 µs per request with one worker, 16.9–20.3 with two).
pub const RATE_PER_WORKER: f64 = 40_000.0;

/// The open model's workers for a peak rate: one per [`RATE_PER_WORKER`] arrivals per
/// second, at most one per core. Fewer workers wake less often at low rates (each wake-up
/// starts a batch); more spread the work of high rates over the cores.
pub fn workers_for(peak_rate: f64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    ((peak_rate / RATE_PER_WORKER).ceil() as usize).clamp(1, cores)
}

/// The most in-flight arrivals the default cap allows, whatever the rate (each waiting
/// arrival is a task of about a kilobyte).
pub const MAX_IN_FLIGHT_BOUND: u64 = 100_000;

/// The default in-flight cap: every arrival of the peak rate may wait its whole timeout
/// (`peak rate × timeout`, Little's law with the slowest latency that is not a failure), so
/// the cap never drops what the timeout would not already end; at least 64, at most
/// [`MAX_IN_FLIGHT_BOUND`]. In-flight arrivals wait for one of [`connections_for`] the
/// connections; the cap counts them waiting too.
pub fn default_max_in_flight(peak_rate: f64, timeout: Duration) -> u64 {
    let want = (peak_rate * timeout.as_secs_f64()).ceil().max(64.0) as u64;
    want.min(MAX_IN_FLIGHT_BOUND)
}

/// The most HTTP/1.1 connections the open model opens, over all its workers.
pub const MAX_CONNECTIONS: u64 = 1024;

/// The connections of the open model: opened as arrivals need them, up to the in-flight
/// cap, [`MAX_CONNECTIONS`], and this process's open-file limit (raised to its hard limit)
/// less 256; arrivals beyond wait for a free one.
pub fn connections_for(max_in_flight: u64) -> u64 {
    max_in_flight
        .min(MAX_CONNECTIONS)
        .min(open_file_limit().saturating_sub(256))
        .max(1)
}

/// Raises the soft open-file limit to the hard one (as load tools do) and returns it.
pub fn open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// Stops a run early (the first Ctrl-C, or the engine aborting).
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

fn outcome(load: &Load, i: usize, res: &Result<client::Response, Failure>) -> Outcome {
    match res {
        Ok(r) => {
            let expect = load.mix.requests[i].expect.as_ref();
            let check = expect.map(|c| r.status < 400 && request::check_body(c, &r.body));
            Outcome {
                status: Some(r.status),
                // A failed expectation is a failed request unless it says `error: false`.
                failure: (check == Some(false) && expect.is_some_and(|c| c.error))
                    .then_some(Failure::Check),
                request_id: r.request_id.clone(),
                check,
            }
        }
        Err(f) => Outcome {
            status: None,
            failure: Some(*f),
            request_id: None,
            check: None,
        },
    }
}

/// One arrival: the request, and its cursor follow-ups, on the worker's own `client`.
async fn arrival(
    load: Arc<Load>,
    client: Client,
    k: u64,
    intended: Duration,
    start: Instant,
    in_flight: Arc<AtomicU64>,
) {
    let (i, rec) = load.mix.pick(k);
    let name = load.mix.requests[i].name.clone();
    let mut cursor: Option<String> = None;
    let mut page = 0u32;
    loop {
        let req = load.mix.build(i, rec, cursor.as_deref());
        load.recorder
            .count_sent(page > 0, in_flight.load(Ordering::Relaxed));
        let sent = Instant::now();
        let res = client.send(req, load.timeout).await;
        let done = Instant::now();
        let service = done - sent;
        // The first page is measured from when it should have started; follow-ups have no
        // schedule of their own.
        let latency = if page == 0 {
            done.saturating_duration_since(start + intended)
        } else {
            service
        };
        let o = outcome(&load, i, &res);
        if page == 0 {
            load.recorder.record(&name, intended, latency, service, &o);
        } else {
            load.recorder.record_follow_up(&name, intended, service, &o);
        }
        let next = match (&res, &load.mix.requests[i].follow) {
            (Ok(r), Some(f)) if r.status < 400 && page + 1 < f.max_pages => {
                request::next_cursor(f, &r.body)
            }
            _ => None,
        };
        match next {
            Some(c) => {
                cursor = Some(c);
                page += 1;
            }
            None => break,
        }
    }
    in_flight.fetch_sub(1, Ordering::Relaxed);
}

/// Runs the open model over `arrivals`, returning when every arrival has finished (or timed out).
pub async fn run_open(
    load: Arc<Load>,
    arrivals: Arrivals,
    cfg: OpenConfig,
    stop: Stop,
    start: Instant,
) {
    let in_flight = Arc::new(AtomicU64::new(0));
    let ticker = {
        let recorder = load.recorder.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                recorder.tick(start.elapsed());
            }
        })
    };
    let n = cfg.workers.max(1);
    let mut done = Vec::with_capacity(n);
    for w in 0..n {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (load, arrivals, stop, in_flight) = (
            load.clone(),
            arrivals.clone(),
            stop.clone(),
            in_flight.clone(),
        );
        let (recorder, stripe_of) = (load.recorder.clone(), arrivals.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("drill-load-{w}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let local = tokio::task::LocalSet::new();
                        local.block_on(
                            &rt,
                            worker(load, arrivals, (w, n), cfg, stop, start, in_flight),
                        );
                    }
                    Err(_) => {
                        // No runtime for this worker: its arrivals cannot start, and say so.
                        for (_, offset) in stripe(arrivals, cfg.shard, (w, n)) {
                            load.recorder.count_scheduled();
                            load.recorder.drop_arrival(offset, true);
                        }
                    }
                }
                let _ = tx.send(());
            });
        if spawned.is_ok() {
            done.push(rx);
        } else {
            // No thread for this worker: its arrivals cannot start, and are counted so.
            for (_, offset) in stripe(stripe_of, cfg.shard, (w, n)) {
                recorder.count_scheduled();
                recorder.drop_arrival(offset, true);
            }
        }
    }
    for rx in done {
        let _ = rx.await;
    }
    ticker.abort();
}

/// One worker of the open model: its stripe of the schedule, on this thread.
async fn worker(
    load: Arc<Load>,
    arrivals: Arrivals,
    (w, n): (usize, usize),
    cfg: OpenConfig,
    stop: Stop,
    start: Instant,
    in_flight: Arc<AtomicU64>,
) {
    let conns = connections_for(cfg.max_in_flight).div_ceil(n as u64);
    let client = load
        .client
        .fork(usize::try_from(conns).unwrap_or(usize::MAX));
    // This worker's arrivals in flight (its tasks all run on this thread).
    let mine = Rc::new(Cell::new(0u64));
    let mut next = stripe(arrivals, cfg.shard, (w, n)).peekable();
    while let Some(&(_, offset)) = next.peek() {
        if stop.stopped() {
            break;
        }
        let due = start + offset;
        let now = Instant::now();
        if due > now + Duration::from_millis(50) {
            // A long gap: wake for the arrival or for a stop, whichever comes first.
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
                () = stop_checked(&stop) => break,
            }
        } else if due > now {
            // The timer wheel wakes on its next tick at or after `due`.
            tokio::time::sleep_until(due.into()).await;
        }
        // Every arrival due by now starts in this batch.
        let now = Instant::now();
        let mut batch = 0u64;
        while let Some(&(k, offset)) = next.peek() {
            let due = start + offset;
            if due > now {
                break;
            }
            next.next();
            batch += 1;
            if now.saturating_duration_since(due) > cfg.late_tolerance {
                load.recorder.drop_arrival(offset, true);
                continue;
            }
            if in_flight.fetch_add(1, Ordering::Relaxed) >= cfg.max_in_flight {
                in_flight.fetch_sub(1, Ordering::Relaxed);
                load.recorder.drop_arrival(offset, false);
                continue;
            }
            mine.set(mine.get() + 1);
            let (load, client, in_flight, mine) = (
                load.clone(),
                client.clone(),
                in_flight.clone(),
                mine.clone(),
            );
            tokio::task::spawn_local(async move {
                arrival(load, client, k as u64, offset, start, in_flight).await;
                mine.set(mine.get() - 1);
            });
        }
        // One count for the batch (one lock, not one per arrival).
        if batch > 0 {
            load.recorder.count_scheduled_n(batch);
        }
    }
    // Let this worker's last requests finish: each ends by its timeout at the latest.
    let deadline = Instant::now() + load.timeout + Duration::from_secs(1);
    while mine.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Resolves once `stop` is set (checked every 50 ms: a stop ends a long wait for the next
/// arrival without a wake-up per arrival).
async fn stop_checked(stop: &Stop) {
    while !stop.stopped() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a closed loop: `connections` workers, each with its own connection, for `duration`.
pub async fn run_closed(
    load: Arc<Load>,
    connections: usize,
    duration: Duration,
    stop: Stop,
    start: Instant,
) {
    let mut workers = Vec::new();
    for w in 0..connections {
        let load = load.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let end = start + duration;
            let mut k = w as u64;
            let mut conn = None;
            while Instant::now() < end && !stop.stopped() {
                let (i, rec) = load.mix.pick(k);
                k += connections as u64;
                let intended = start.elapsed();
                if conn.is_none() {
                    match load.client.connect_h1().await {
                        Ok(c) => conn = Some(c),
                        Err(f) => {
                            let o = Outcome {
                                status: None,
                                failure: Some(f),
                                request_id: None,
                                check: None,
                            };
                            load.recorder.record(
                                &load.mix.requests[i].name,
                                intended,
                                start.elapsed() - intended,
                                start.elapsed() - intended,
                                &o,
                            );
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let Some(sender) = conn.as_mut() else {
                    continue;
                };
                let req = load.mix.build(i, rec, None);
                let sent = Instant::now();
                let res = client::send_on(sender, req, load.timeout).await;
                let service = sent.elapsed();
                if res.is_err() {
                    conn = None;
                }
                let o = outcome(&load, i, &res);
                load.recorder.record_closed(
                    &load.mix.requests[i].name,
                    intended,
                    service,
                    &o,
                    connections as u64,
                );
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_lets_every_arrival_wait_its_timeout_on_bounded_connections() {
        let files = open_file_limit();
        let ten = Duration::from_secs(10);
        assert_eq!(default_max_in_flight(120.0, ten), 1200);
        assert_eq!(default_max_in_flight(1.0, ten), 64);
        assert_eq!(default_max_in_flight(20_000.0, ten), 100_000);
        assert_eq!(connections_for(1200), 1024.min(files - 256));
        assert_eq!(connections_for(200), 200);
    }

    #[test]
    fn one_worker_per_ten_thousand_a_second_at_most_one_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(workers_for(120.0), 1);
        assert_eq!(workers_for(2_000.0), 1);
        assert_eq!(workers_for(20_000.0), 1);
        assert_eq!(workers_for(50_000.0), 2.min(cores));
        assert_eq!(workers_for(1e9), cores);
    }
}
