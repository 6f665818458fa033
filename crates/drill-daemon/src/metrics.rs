//! The daemon's Prometheus metrics (prometheus-client, OpenMetrics text at `/metrics`):
//! runs by outcome and their durations, missed fires by reason and the start skew, the next
//! fire per schedule, active faults by backend, revert failures, the halt, and each running
//! playbook's target and achieved rate, and the requests' latency per drill phase.
//! Histograms have real buckets, so several daemons' series add up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use drill_engine::{LATENCY_BUCKETS_S, PhaseLatency};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label value, escaped as the OpenMetrics text format says (`\\`, `\"`, `\n`) when it is
/// written: prometheus-client 0.24 writes a `String` as is, so a name with a quote forged
/// series and broke every scrape. (Names are also limited at validation, see
/// `drill_spec::NAME_CHARS`; this holds for any value.)
#[derive(Clone, Debug, Hash, PartialEq, Eq, Default)]
pub struct Label(pub String);

impl From<String> for Label {
    fn from(s: String) -> Self {
        Label(s)
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Label(s.to_owned())
    }
}

impl prometheus_client::encoding::EncodeLabelValue for Label {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub playbook: Label,
    pub outcome: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MissLabels {
    pub playbook: Label,
    pub reason: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Playbook {
    pub playbook: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Backend {
    pub backend: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub playbook: Label,
    /// Empty for `phase="all"`, the whole traffic.
    pub drill: Label,
    pub phase: Label,
}

type FGauge = Gauge<f64, AtomicU64>;

/// A latency histogram fed with the engine's cumulative figures ([`PhaseLatency`]) rather
/// than one observation at a time: each running run's latest figures, plus what the
/// runs that ended had, so the series only grows.
#[derive(Debug, Default)]
pub struct Latency(Mutex<LatencyInner>);

#[derive(Debug, Default)]
struct LatencyInner {
    ended: Totals,
    running: HashMap<String, Totals>,
}

#[derive(Debug, Clone, Default)]
struct Totals {
    count: u64,
    sum_s: f64,
    buckets: Vec<u64>,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.count += o.count;
        self.sum_s += o.sum_s;
        if self.buckets.len() < o.buckets.len() {
            self.buckets.resize(o.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
    }
}

impl Latency {
    /// A running run's figures so far (they replace its earlier ones).
    pub fn set(&self, run: &str, l: &PhaseLatency) {
        if let Ok(mut g) = self.0.lock() {
            g.running.insert(
                run.to_owned(),
                Totals {
                    count: l.count,
                    sum_s: l.sum_s,
                    buckets: l.buckets.clone(),
                },
            );
        }
    }

    /// The run ended: its last figures stay in the series.
    pub fn end(&self, run: &str) {
        if let Ok(mut g) = self.0.lock()
            && let Some(t) = g.running.remove(run)
        {
            g.ended.add(&t);
        }
    }

    fn total(&self) -> Totals {
        let Ok(g) = self.0.lock() else {
            return Totals::default();
        };
        let mut t = g.ended.clone();
        for r in g.running.values() {
            t.add(r);
        }
        t
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let t = self.total();
        let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_S
            .iter()
            .copied()
            .chain([f64::MAX])
            .enumerate()
            .map(|(i, le)| (le, t.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        if buckets.is_empty() {
            buckets.push((f64::MAX, 0));
        }
        encoder.encode_histogram::<NoLabelSet>(t.sum_s, t.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    pub runs: Family<RunLabels, Counter>,
    pub run_duration: Histogram,
    pub missed: Family<MissLabels, Counter>,
    pub start_skew: Histogram,
    pub next_fire: Family<Playbook, FGauge>,
    pub faults_active: Family<Backend, Gauge>,
    pub revert_failures: Counter,
    pub halt_active: Gauge,
    pub target_rate: Family<Playbook, FGauge>,
    pub achieved_rate: Family<Playbook, FGauge>,
    pub latency: Family<PhaseLabels, Latency>,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            runs: Family::default(),
            // 1 s to ~9 h.
            run_duration: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            missed: Family::default(),
            // 1 ms to ~65 s.
            start_skew: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            next_fire: Family::default(),
            faults_active: Family::default(),
            revert_failures: Counter::default(),
            halt_active: Gauge::default(),
            target_rate: Family::default(),
            achieved_rate: Family::default(),
            latency: Family::default(),
        };
        if let Ok(mut r) = m.registry.lock() {
            r.register(
                "drill_runs",
                "Runs ended, by playbook and outcome",
                m.runs.clone(),
            );
            r.register(
                "drill_run_duration_seconds",
                "How long runs took",
                m.run_duration.clone(),
            );
            r.register(
                "drill_schedule_missed",
                "Nominal times that did not run, by playbook and reason",
                m.missed.clone(),
            );
            r.register(
                "drill_schedule_start_skew_seconds",
                "How late a scheduled run started after its nominal time",
                m.start_skew.clone(),
            );
            r.register(
                "drill_schedule_next_fire_timestamp_seconds",
                "The next nominal time of each schedule (Unix seconds)",
                m.next_fire.clone(),
            );
            r.register(
                "drill_faults_active",
                "Faults applied now by this daemon's runs, by backend",
                m.faults_active.clone(),
            );
            r.register(
                "drill_revert_failures",
                "Runs that ended with a fault still changed",
                m.revert_failures.clone(),
            );
            r.register(
                "drill_halt_active",
                "1 while the daemons are halted",
                m.halt_active.clone(),
            );
            r.register(
                "drill_traffic_target_rate",
                "Arrivals per second the running playbook's profile asks for now",
                m.target_rate.clone(),
            );
            r.register(
                "drill_traffic_achieved_rate",
                "Requests per second the running playbook's traffic achieved lately",
                m.achieved_rate.clone(),
            );
            r.register(
                "drill_request_latency_seconds",
                "Latency from each arrival's intended start, by playbook, drill and phase (all: the whole traffic; fault, recovery: a drill's spans)",
                m.latency.clone(),
            );
        }
        m
    }
}

impl Metrics {
    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_as_openmetrics_says() {
        let m = Metrics::default();
        m.target_rate
            .get_or_create(&Playbook {
                playbook: "x\"} 1\ndrill_halt_active{fake=\"1\\".into(),
            })
            .set(1.0);
        let text = m.encode();
        assert!(
            text.contains(
                r#"drill_traffic_target_rate{playbook="x\"} 1\ndrill_halt_active{fake=\"1\\"} 1.0"#
            ),
            "{text}"
        );
        assert!(!text.contains("\ndrill_halt_active{fake"), "{text}");
    }
}
