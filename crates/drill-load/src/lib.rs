//! drill-load: the traffic generator.
//!
//! What it is: an open-model load generator (every request has an intended start time from
//! the arrival-rate profile, independent of how slow responses are; arrivals that cannot start
//! on time are counted as dropped) and a closed-loop one for benchmarks; latency recorded from
//! the intended start (no coordinated omission) and from the actual send, in HdrHistograms,
//! overall, per phase and per second; thresholds; k6-compatible summaries. Shards of one
//! schedule ([`shard`]): which arrivals a process sends, and the per-second reports of its
//! measurements (HdrHistogram V2) that another recorder adds up exactly. [`stats`] is one
//! span's measurements and a request's outcome; [`metrics`] the recorder that keeps them.
//!
//! What it is not: it knows nothing of faults, nor of where shards run or how their reports
//! travel (the engine's `shards` does). The engine marks phase boundaries on the
//! [`Recorder`] and reads the measurements.

pub mod arrivals;
pub mod client;
pub mod executor;
pub mod metrics;
pub mod request;
pub mod shard;
pub mod stats;
pub mod summary;

pub use arrivals::Arrivals;
pub use client::{Client, ClientConfig};
pub use executor::{Load, OpenConfig, Stop};
pub use metrics::{ErrorSet, Measurements, Recorder};
pub use shard::Shard;

/// Splits a base URL into what the client needs, and the path prefix every request path is
/// put under (parsed by [`drill_spec::url::BaseUrl`], the rule every other URL follows).
pub fn client_config(
    base_url: &str,
    traffic: Option<&drill_spec::model::Traffic>,
) -> Result<(ClientConfig, String), client::ClientError> {
    let base = drill_spec::url::BaseUrl::parse(base_url)
        .map_err(|e| client::ClientError::Url(base_url.to_owned(), e.why))?;
    let (https, host, port, path) = (
        base.https(),
        base.host(),
        base.port(),
        base.prefix().to_owned(),
    );
    let cfg = ClientConfig {
        https,
        host,
        port,
        version: traffic.map(|t| t.http).unwrap_or_default(),
        ca_file: traffic
            .and_then(|t| t.tls.as_ref())
            .and_then(|t| t.ca_file.clone()),
        insecure: traffic
            .and_then(|t| t.tls.as_ref())
            .is_some_and(|t| t.insecure_skip_verify),
    };
    Ok((cfg, path))
}

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drill_spec::model::{Limits, Playbook};

/// Errors preparing a load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error(transparent)]
    Request(#[from] request::RequestError),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug)]
enum Mode {
    Open { arrivals: Arrivals, cfg: OpenConfig },
    Closed { connections: usize },
}

/// A load ready to run.
#[derive(Debug)]
pub struct Run {
    load: Arc<Load>,
    mode: Mode,
    /// How long the traffic lasts.
    pub duration: Duration,
    /// Arrivals the schedule holds (open model).
    pub expected: Option<u64>,
    /// The mean target rate over the run (open model).
    pub target_rate: Option<f64>,
    limits: Limits,
}

/// What a finished run measured, with its verdict.
#[derive(Debug)]
pub struct Report {
    pub measurements: Measurements,
    pub elapsed: Duration,
    pub thresholds: Vec<summary::Threshold>,
    pub expected: Option<u64>,
    pub target_rate: Option<f64>,
    /// The open model's settings (none for the closed loop).
    pub open: Option<OpenConfig>,
}

impl Report {
    /// What dropped arrivals, and what to change: `None` when none was dropped.
    pub fn drop_warning(&self) -> Option<String> {
        let c = self.measurements.counters;
        if c.dropped() == 0 {
            return None;
        }
        let mut why = Vec::new();
        let shards = self.open.map_or(1, |o| o.shard.count);
        let each = if shards > 1 {
            format!(" in each of {shards} shards")
        } else {
            String::new()
        };
        if c.dropped_cap > 0 {
            why.push(format!(
                "{} at the in-flight cap of {}{each} (requests were slower than the cap allows at this rate: raise --max-in-flight or traffic.max_in_flight; the default is the peak rate × the timeout)",
                c.dropped_cap,
                self.open.map_or(0, |o| o.max_in_flight)
            ));
        }
        if c.dropped_late > 0 {
            why.push(format!(
                "{} because the client fell more than {} ms behind the schedule on {} worker thread(s){each} (this machine's CPU could not keep up: free cores, or give --workers up to the core count)",
                c.dropped_late,
                self.open.map_or(0, |o| o.late_tolerance.as_millis()),
                self.open.map_or(0, |o| o.workers)
            ));
        }
        Some(format!(
            "{} of {} arrivals were dropped, so the achieved rate is below the target: {}",
            c.dropped(),
            c.scheduled,
            why.join("; ")
        ))
    }

    /// All thresholds passed.
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.ok)
    }

    /// Arrivals dropped because they could not start on time; a run with any should warn.
    pub fn dropped(&self) -> u64 {
        self.measurements.counters.dropped()
    }

    pub fn k6_summary(&self) -> serde_json::Value {
        summary::k6_summary(&self.measurements, self.elapsed, &self.thresholds)
    }

    pub fn timeline(&self) -> serde_json::Value {
        summary::timeline(&self.measurements)
    }

    pub fn markdown(&self, title: &str) -> String {
        summary::markdown(
            title,
            &self.measurements,
            self.elapsed,
            self.target_rate,
            &self.thresholds,
        )
    }
}

/// How to run an ad-hoc load (`drill load --url`).
#[derive(Debug, Clone)]
pub struct AdHoc {
    pub url: String,
    pub method: http::Method,
    pub headers: Vec<(http::HeaderName, String)>,
    pub body: Option<String>,
    /// Open model at this rate per second, or…
    pub rate: Option<f64>,
    /// …a closed loop over this many connections.
    pub connections: Option<usize>,
    pub duration: Duration,
    /// The in-flight cap; `None`: [`executor::default_max_in_flight`].
    pub max_in_flight: Option<u64>,
    /// Open-model worker threads; `None`: [`executor::workers_for`] the rate.
    pub workers: Option<usize>,
    pub timeout: Duration,
    pub http: drill_spec::model::HttpVersion,
    pub insecure: bool,
    pub late_tolerance: Duration,
}

/// How late an open-model worker may be before an arrival is dropped instead of sent.
pub const DEFAULT_LATE_TOLERANCE: Duration = Duration::from_millis(250);

impl Run {
    /// The traffic of a validated playbook. `dir` resolves the dataset path; `scale` multiplies
    /// every duration.
    pub fn from_playbook(pb: &Playbook, dir: &Path, scale: f64) -> Result<Self, LoadError> {
        let records = match &pb.traffic.dataset {
            Some(d) => {
                let p = dir.join(d);
                request::load_dataset(&p.display().to_string())?
            }
            None => Vec::new(),
        };
        Self::from_parts(pb, records, scale)
    }

    /// The traffic of a validated playbook with its dataset's records already read (a shard
    /// gets them from the engine, not from a file).
    pub fn from_parts(
        pb: &Playbook,
        records: Vec<serde_json::Map<String, serde_json::Value>>,
        scale: f64,
    ) -> Result<Self, LoadError> {
        let t = &pb.traffic;
        let (cfg, prefix) = client_config(&pb.target.base_url, Some(t))?;
        let client = Client::new(cfg)?;
        let specs: Vec<_> = t
            .requests
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if r.path.starts_with('/') {
                    r.path = format!("{prefix}{}", r.path);
                }
                r
            })
            .collect();
        let mix = request::Mix::new(&specs, records, client.authority())?;
        let timeout = t.timeout.0;
        let recorder = Arc::new(Recorder::new(ErrorSet::new(&t.errors), timeout));
        let plan = drill_spec::timeline::traffic(&t.profile, scale);
        let arrivals = Arrivals::new(&plan);
        let duration = plan.duration.0;
        Ok(Self {
            load: Arc::new(Load {
                client,
                mix,
                recorder,
                timeout,
            }),
            expected: Some(arrivals.total()),
            target_rate: Some(plan.expected_requests / duration.as_secs_f64().max(1e-9)),
            mode: Mode::Open {
                cfg: OpenConfig {
                    max_in_flight: t.max_in_flight.map_or_else(
                        || executor::default_max_in_flight(arrivals.peak_rate(), timeout),
                        u64::from,
                    ),
                    late_tolerance: DEFAULT_LATE_TOLERANCE,
                    workers: executor::workers_for(arrivals.peak_rate()),
                    shard: Shard::WHOLE,
                },
                arrivals,
            },
            duration,
            limits: pb.slo.overall(),
        })
    }

    /// An ad-hoc load on one URL.
    pub fn ad_hoc(a: &AdHoc) -> Result<Self, LoadError> {
        let (mut cfg, _) = client_config(&a.url, None)?;
        cfg.version = a.http;
        cfg.insecure = a.insecure;
        let path = a
            .url
            .split_once("://")
            .map(|(_, r)| r.find('/').map_or("/", |i| &r[i..]))
            .unwrap_or("/")
            .to_owned();
        let client = Client::new(cfg)?;
        let mix = request::Mix::single(
            a.method.clone(),
            path,
            a.headers.clone(),
            a.body.clone(),
            client.authority(),
        );
        let recorder = Arc::new(Recorder::new(ErrorSet::standard(), a.timeout));
        let (mode, expected) = match (a.rate, a.connections) {
            (Some(r), None) if r > 0.0 => {
                let arrivals = Arrivals::constant(r, a.duration);
                let total = arrivals.total();
                (
                    Mode::Open {
                        arrivals,
                        cfg: OpenConfig {
                            max_in_flight: a
                                .max_in_flight
                                .unwrap_or_else(|| executor::default_max_in_flight(r, a.timeout)),
                            late_tolerance: a.late_tolerance,
                            workers: a.workers.unwrap_or_else(|| executor::workers_for(r)),
                            shard: Shard::WHOLE,
                        },
                    },
                    Some(total),
                )
            }
            (None, Some(c)) if c > 0 => (Mode::Closed { connections: c }, None),
            _ => return Err(LoadError::Invalid(
                "give either a rate above 0 (open model) or a number of connections (closed loop)"
                    .into(),
            )),
        };
        Ok(Self {
            load: Arc::new(Load {
                client,
                mix,
                recorder,
                timeout: a.timeout,
            }),
            mode,
            duration: a.duration,
            expected,
            target_rate: a.rate,
            limits: Limits::default(),
        })
    }

    /// Sends only `shard`'s part of the schedule. Its workers and, unless the playbook sets
    /// one, its in-flight cap follow its share of the peak rate; a cap the playbook sets is
    /// the whole run's, divided among the shards.
    pub fn shard(mut self, shard: Shard, cap: Option<u64>) -> Result<Self, LoadError> {
        self.split(shard, cap)?;
        self.expected = self.expected.map(|e| shard.share(e));
        Ok(self)
    }

    /// The engine's view of a load it runs in `shards` other processes: the whole schedule
    /// is expected, and the limits its report names (in-flight cap, workers) are each
    /// shard's.
    pub fn in_shards(mut self, shards: u32, cap: Option<u64>) -> Result<Self, LoadError> {
        self.split(
            Shard {
                index: 0,
                count: shards.max(1),
            },
            cap,
        )?;
        Ok(self)
    }

    fn split(&mut self, shard: Shard, cap: Option<u64>) -> Result<(), LoadError> {
        let Mode::Open { arrivals, cfg } = &mut self.mode else {
            return Err(LoadError::Invalid(
                "only the open model (a rate) can be split into shards".into(),
            ));
        };
        let n = f64::from(shard.count.max(1));
        let peak = arrivals.peak_rate() / n;
        cfg.shard = shard;
        cfg.workers = executor::workers_for(peak);
        cfg.max_in_flight = cap.map_or_else(
            || executor::default_max_in_flight(peak, self.load.timeout),
            |c| c.div_ceil(u64::from(shard.count.max(1))).max(1),
        );
        Ok(())
    }

    /// The dataset's records, for shards in other processes.
    pub fn records(&self) -> &[serde_json::Map<String, serde_json::Value>] {
        self.load.mix.records()
    }

    /// The recorder, to mark phases and watch progress while the run goes.
    pub fn recorder(&self) -> Arc<Recorder> {
        self.load.recorder.clone()
    }

    /// Runs the load to its end (or until `stop`), then evaluates the thresholds.
    pub async fn execute(self, stop: Stop) -> Report {
        self.execute_from(stop, Instant::now()).await
    }

    /// Like [`Run::execute`], with the schedule's zero at `start` (which the engine shares, so
    /// that the offsets it marks spans at and the recorder's offsets agree).
    pub async fn execute_from(self, stop: Stop, start: Instant) -> Report {
        match &self.mode {
            Mode::Open { arrivals, cfg } => {
                executor::run_open(
                    self.load.clone(),
                    arrivals.clone(),
                    *cfg,
                    stop.clone(),
                    start,
                )
                .await;
            }
            Mode::Closed { connections } => {
                executor::run_closed(
                    self.load.clone(),
                    *connections,
                    self.duration,
                    stop.clone(),
                    start,
                )
                .await
            }
        }
        self.conclude(stop.stopped(), start)
    }

    /// The report of what the recorder holds, thresholds evaluated once: after
    /// [`Run::execute_from`], or after the engine has added up every shard's measurements.
    pub fn conclude(self, stopped: bool, start: Instant) -> Report {
        let open = match &self.mode {
            Mode::Open { cfg, .. } => Some(*cfg),
            Mode::Closed { .. } => None,
        };
        // A run that went to its end lasted its schedule; the drain after it is not traffic time.
        let elapsed = if stopped {
            start.elapsed().min(self.duration)
        } else {
            self.duration
        };
        let measurements = self.load.recorder.finish();
        let thresholds = summary::evaluate("overall", &self.limits, &measurements.overall);
        Report {
            measurements,
            elapsed,
            thresholds,
            expected: self.expected,
            target_rate: self.target_rate,
            open,
        }
    }
}
