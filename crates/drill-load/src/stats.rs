//! What one span of a run measured ([`Stats`]): latency from the intended start and service
//! time from the send in HdrHistograms (1 µs–60 s, 3 digits), counters, body checks; and
//! what one request's outcome was ([`Outcome`]) and whether it counts as failed
//! ([`ErrorSet`]). The recorder (`metrics.rs`) keeps many of these, by phase, span and
//! second.

use std::collections::BTreeMap;
use std::time::Duration;

use drill_spec::model::ErrorClass;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Lowest and highest latency recorded, in microseconds: 1 µs to 60 s, 3 significant digits.
const LOW_US: u64 = 1;
const HIGH_US: u64 = 60_000_000;
const SIGFIG: u8 = 3;
pub(crate) fn histogram() -> Histogram<u64> {
    // Auto-resizing: a histogram only grows to the largest value it holds (values are clamped
    // to 60 s), so a second of 1 ms responses costs kilobytes, not the full 1 µs–60 s range.
    // The significant-figure count is a constant hdrhistogram accepts; this cannot fail.
    let mut h = Histogram::new(SIGFIG).expect("valid histogram precision");
    h.auto(true);
    h
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(LOW_US, HIGH_US)
}

/// What went wrong with a request, when something did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Failure {
    /// The connection could not be opened.
    Connect,
    /// No complete response within the timeout.
    Timeout,
    /// The connection broke mid-exchange.
    Reset,
    /// The response arrived but its body check failed.
    Check,
}

/// The outcome of one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Option<u16>,
    pub failure: Option<Failure>,
    pub request_id: Option<String>,
    /// Whether the request's `expect` check ran, and passed.
    pub check: Option<bool>,
}

/// Which outcomes count as failed requests (`traffic.errors`).
#[derive(Debug, Clone)]
pub struct ErrorSet(Vec<ErrorClass>);

impl ErrorSet {
    pub fn new(classes: &[ErrorClass]) -> Self {
        Self(classes.to_vec())
    }

    /// The default: 5xx, 429, timeouts, connection errors and resets.
    pub fn standard() -> Self {
        Self(vec![
            ErrorClass::Status5xx,
            ErrorClass::Status(429),
            ErrorClass::Timeout,
            ErrorClass::Connect,
            ErrorClass::Reset,
        ])
    }

    /// Whether an outcome is a failed request. A failed `expect` (marked `Failure::Check`
    /// only when its `error` is on) always is, listed or not.
    pub fn counts(&self, o: &Outcome) -> bool {
        if o.failure == Some(Failure::Check) {
            return true;
        }
        self.0.iter().any(|c| match (c, o.failure, o.status) {
            (ErrorClass::Timeout, Some(Failure::Timeout), _)
            | (ErrorClass::Connect, Some(Failure::Connect), _)
            | (ErrorClass::Reset, Some(Failure::Reset), _)
            | (ErrorClass::Check, Some(Failure::Check), _) => true,
            (ErrorClass::Status5xx, _, Some(s)) => (500..600).contains(&s),
            (ErrorClass::Status4xx, _, Some(s)) => (400..500).contains(&s),
            (ErrorClass::Status(code), _, Some(s)) => *code == s,
            _ => false,
        })
    }
}

/// The class a failed request is reported under.
pub fn class_of(o: &Outcome) -> String {
    match (o.failure, o.status) {
        (Some(f), _) => format!("{f:?}").to_lowercase(),
        (None, Some(429)) => "429".into(),
        (None, Some(s)) => format!("{}xx", s / 100),
        (None, None) => "unknown".into(),
    }
}

/// Measurements over one span of the run.
#[derive(Debug, Clone)]
pub struct Stats {
    /// From the intended start to the end of the response.
    pub latency: Histogram<u64>,
    /// From the actual send to the end of the response.
    pub service: Histogram<u64>,
    pub requests: u64,
    /// Of `requests`, the cursor follow-ups (not arrivals of the schedule).
    pub follow_ups: u64,
    pub failed: u64,
    pub dropped: u64,
    pub by_class: BTreeMap<String, u64>,
    /// Responses by status code, for codes 400 and above.
    pub by_status: BTreeMap<u16, u64>,
    pub checks_passed: u64,
    pub checks_failed: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency: histogram(),
            service: histogram(),
            requests: 0,
            follow_ups: 0,
            failed: 0,
            dropped: 0,
            by_class: BTreeMap::new(),
            by_status: BTreeMap::new(),
            checks_passed: 0,
            checks_failed: 0,
        }
    }
}

impl Stats {
    pub(crate) fn record(
        &mut self,
        latency: Duration,
        service: Duration,
        o: &Outcome,
        failed: bool,
    ) {
        self.requests += 1;
        // Saturating: values outside 1 µs..60 s are clamped above, never lost.
        let _ = self.latency.record(micros(latency));
        let _ = self.service.record(micros(service));
        if failed {
            self.failed += 1;
        }
        if o.failure.is_some() || o.status.is_some_and(|s| s >= 400) {
            *self.by_class.entry(class_of(o)).or_default() += 1;
        }
        if let Some(s) = o.status.filter(|s| *s >= 400) {
            *self.by_status.entry(s).or_default() += 1;
        }
        match o.check {
            Some(true) => self.checks_passed += 1,
            Some(false) => self.checks_failed += 1,
            None => {}
        }
    }

    /// A latency percentile (0–100) from the intended start.
    pub fn latency_at(&self, q: f64) -> Duration {
        if self.latency.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latency.value_at_quantile(q / 100.0))
    }

    pub fn latency_max(&self) -> Duration {
        Duration::from_micros(if self.latency.is_empty() {
            0
        } else {
            self.latency.max()
        })
    }

    pub fn latency_min(&self) -> Duration {
        Duration::from_micros(if self.latency.is_empty() {
            0
        } else {
            self.latency.min()
        })
    }

    pub fn latency_mean(&self) -> Duration {
        Duration::from_secs_f64(if self.latency.is_empty() {
            0.0
        } else {
            self.latency.mean() / 1e6
        })
    }

    /// Requests that ended in the error class `c` (whether or not `traffic.errors` counts it).
    pub fn count(&self, c: ErrorClass) -> u64 {
        let statuses = |r: std::ops::Range<u16>| -> u64 {
            self.by_status
                .iter()
                .filter(|(s, _)| r.contains(s))
                .map(|(_, n)| n)
                .sum()
        };
        let class = |k: &str| self.by_class.get(k).copied().unwrap_or(0);
        match c {
            ErrorClass::Status5xx => statuses(500..600),
            ErrorClass::Status4xx => statuses(400..500),
            ErrorClass::Status(code) => self.by_status.get(&code).copied().unwrap_or(0),
            ErrorClass::Timeout => class("timeout"),
            ErrorClass::Connect => class("connect"),
            ErrorClass::Reset => class("reset"),
            ErrorClass::Check => class("check"),
        }
    }

    /// A latency statistic by name (`avg`, `min`, `p50`, `p90`, `p95`, `p99`, `max`).
    pub fn latency_stat(&self, name: &str) -> Option<Duration> {
        Some(match name {
            "avg" => self.latency_mean(),
            "min" => self.latency_min(),
            "p50" => self.latency_at(50.0),
            "p90" => self.latency_at(90.0),
            "p95" => self.latency_at(95.0),
            "p99" => self.latency_at(99.0),
            "max" => self.latency_max(),
            _ => return None,
        })
    }

    /// Arrivals of the schedule that were sent and ended (requests less cursor follow-ups).
    pub fn arrivals(&self) -> u64 {
        self.requests - self.follow_ups.min(self.requests)
    }

    /// The share of failed requests, 0 when there were none.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failed as f64 / self.requests as f64
        }
    }

    /// Adds another span's measurements to this one.
    pub fn merge(&mut self, o: &Stats) {
        let _ = self.latency.add(&o.latency);
        let _ = self.service.add(&o.service);
        self.requests += o.requests;
        self.follow_ups += o.follow_ups;
        self.failed += o.failed;
        self.dropped += o.dropped;
        for (k, v) in &o.by_class {
            *self.by_class.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.by_status {
            *self.by_status.entry(*k).or_default() += v;
        }
        self.checks_passed += o.checks_passed;
        self.checks_failed += o.checks_failed;
    }
}
