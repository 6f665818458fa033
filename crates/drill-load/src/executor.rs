//! Running the load: the open model (a schedule of arrivals, a cap on requests in flight) and
//! the closed loop (N connections, each sending as fast as responses come back).
//!
//! The open model's dispatcher is an OS thread that sleeps until each intended start time and
//! hands the arrival to the runtime. An arrival that cannot start on time — the in-flight cap
//! is reached, or the dispatcher is later than `late_tolerance` — is counted as dropped, never
//! silently skipped or sent in a burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::arrivals::Arrivals;
use crate::client::{self, Client};
use crate::metrics::{Failure, Outcome, Recorder};
use crate::request::{self, Mix};

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

/// One arrival: the request, and its cursor follow-ups.
async fn arrival(
    load: Arc<Load>,
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
        let res = load.client.send(req, load.timeout).await;
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
    let handle = tokio::runtime::Handle::current();
    let in_flight = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
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
    let dispatcher = {
        let load = load.clone();
        let in_flight = in_flight.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("drill-dispatch".into())
            .spawn(move || {
                for (k, offset) in arrivals.enumerate() {
                    if stop.stopped() {
                        break;
                    }
                    let due = start + offset;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    load.recorder.count_scheduled();
                    if Instant::now().saturating_duration_since(due) > cfg.late_tolerance {
                        load.recorder.drop_arrival(offset, true);
                        continue;
                    }
                    if in_flight.fetch_add(1, Ordering::Relaxed) >= cfg.max_in_flight {
                        in_flight.fetch_sub(1, Ordering::Relaxed);
                        load.recorder.drop_arrival(offset, false);
                        continue;
                    }
                    handle.spawn(arrival(
                        load.clone(),
                        k as u64,
                        offset,
                        start,
                        in_flight.clone(),
                    ));
                }
                let _ = done_tx.send(());
            })
    };
    if dispatcher.is_err() {
        ticker.abort();
        return;
    }
    let _ = done_rx.await;
    // Let the last requests finish: each ends by its timeout at the latest.
    let deadline = Instant::now() + load.timeout + Duration::from_secs(1);
    while in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ticker.abort();
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
