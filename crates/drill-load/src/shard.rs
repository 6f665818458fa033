//! One schedule over several processes: which arrivals a shard sends, and the measurements it
//! reports for the engine to add up.
//!
//! Shard `k` of `N` takes the arrivals `k, k+N, k+2N, …` of the one schedule, every time
//! computed from the same zero (`t0`), so the union of the shards' intended send times is the
//! one-process schedule exactly, and arrival `i` keeps its global index (the request and
//! dataset record it uses). Inside a shard, its workers stripe its arrivals the same way.
//!
//! A shard's recorder keeps what it measured since its last report ([`Delta`]): per intended
//! second, the latency and service-time HdrHistograms (V2 serialization, base64) with the
//! counts beside them, plus its counters, body checks and failure samples. Histograms with
//! the same lowest value and precision add bucket by bucket, so the engine's merge of every
//! shard's deltas equals the histogram one process would have recorded — checked on decode.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::metrics::{Counters, FailureSample, Recorder, Stats};

/// Which part of the schedule a process sends: `index` of `count` (the whole: 0 of 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl Shard {
    /// The whole schedule, in one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N` (0 ≤ K < N).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("shard {s:?}: expected K/N with 0 ≤ K < N, e.g. 0/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    /// How many of `total` arrivals this shard takes.
    pub fn share(self, total: u64) -> u64 {
        let (k, n) = (u64::from(self.index), u64::from(self.count.max(1)));
        total.saturating_sub(k).div_ceil(n)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Worker `w` of `n` in `shard`: the arrivals it sends, each with its global index.
pub fn stripe<I: Iterator>(
    arrivals: I,
    shard: Shard,
    (w, n): (usize, usize),
) -> impl Iterator<Item = (usize, I::Item)> {
    let (k, count) = (shard.index as usize, (shard.count as usize).max(1));
    arrivals
        .enumerate()
        .skip(k)
        .step_by(count)
        .skip(w)
        .step_by(n.max(1))
}

/// Why a shard's report cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("a histogram does not decode: {0}")]
    Decode(String),
    #[error(
        "a histogram's buckets differ from this process's (lowest {low}, {sigfig} significant figures; expected {want_low} and {want_sigfig}): the shard runs another version of drill"
    )]
    Buckets {
        low: u64,
        sigfig: u8,
        want_low: u64,
        want_sigfig: u8,
    },
}

/// One second's measurements, on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireSecond {
    pub t: u64,
    /// HdrHistogram V2, base64: latency from the intended start, µs.
    pub latency: String,
    /// HdrHistogram V2, base64: service time from the send, µs.
    pub service: String,
    pub requests: u64,
    pub follow_ups: u64,
    pub failed: u64,
    pub dropped: u64,
    pub by_class: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
    pub checks_passed: u64,
    pub checks_failed: u64,
}

/// What a shard measured since its previous report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    pub seconds: Vec<WireSecond>,
    pub counters: Counters,
    pub checks: Vec<(String, u64, u64)>,
    pub failures: Vec<FailureSample>,
    pub failures_total: u64,
}

impl Delta {
    /// Takes what `recorder` (which tracks deltas) recorded since the last call.
    pub fn take(recorder: &Recorder) -> Result<Self, WireError> {
        let p = recorder.take_delta();
        let seconds = p
            .seconds
            .iter()
            .map(|(t, s)| WireSecond::of(*t, s))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            seconds,
            counters: p.counters,
            checks: p.checks.into_iter().map(|(k, (a, b))| (k, a, b)).collect(),
            failures: p.failures,
            failures_total: p.failures_total,
        })
    }

    /// Nothing happened.
    pub fn is_empty(&self) -> bool {
        self.seconds.is_empty()
            && self.counters.scheduled == 0
            && self.counters.sent == 0
            && self.counters.completed == 0
            && self.failures_total == 0
    }
}

impl WireSecond {
    pub fn of(t: u64, s: &Stats) -> Result<Self, WireError> {
        Ok(Self {
            t,
            latency: encode(&s.latency)?,
            service: encode(&s.service)?,
            requests: s.requests,
            follow_ups: s.follow_ups,
            failed: s.failed,
            dropped: s.dropped,
            by_class: s.by_class.clone(),
            by_status: s.by_status.clone(),
            checks_passed: s.checks_passed,
            checks_failed: s.checks_failed,
        })
    }

    /// The measurements, with histograms checked to share this process's buckets.
    pub fn stats(&self) -> Result<Stats, WireError> {
        let mut s = Stats::default();
        s.latency
            .add(decode(&self.latency)?)
            .map_err(|e| WireError::Decode(format!("{e:?}")))?;
        s.service
            .add(decode(&self.service)?)
            .map_err(|e| WireError::Decode(format!("{e:?}")))?;
        s.requests = self.requests;
        s.follow_ups = self.follow_ups;
        s.failed = self.failed;
        s.dropped = self.dropped;
        s.by_class = self.by_class.clone();
        s.by_status = self.by_status.clone();
        s.checks_passed = self.checks_passed;
        s.checks_failed = self.checks_failed;
        Ok(s)
    }
}

fn encode(h: &Histogram<u64>) -> Result<String, WireError> {
    use base64::Engine;
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| WireError::Decode(format!("{e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

fn decode(s: &str) -> Result<Histogram<u64>, WireError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| WireError::Decode(e.to_string()))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| WireError::Decode(format!("{e:?}")))?;
    let want = Stats::default();
    if h.low() != want.latency.low() || h.sigfig() != want.latency.sigfig() {
        return Err(WireError::Buckets {
            low: h.low(),
            sigfig: h.sigfig(),
            want_low: want.latency.low(),
            want_sigfig: want.latency.sigfig(),
        });
    }
    Ok(h)
}

/// Seconds of a shard's schedule from its zero (`t0`, milliseconds since the Unix epoch) to
/// now; negative before the start.
pub fn offset_from(t0_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_ms - t0_ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use drill_spec::model::Stage;
    use drill_spec::timeline::traffic;

    use super::*;
    use crate::Arrivals;

    fn stage(
        rate: Option<&str>,
        ramp_to: Option<&str>,
        over: Option<&str>,
        hold: Option<&str>,
    ) -> Stage {
        Stage {
            rate: rate.map(|r| r.parse().expect("rate")),
            ramp_to: ramp_to.map(|r| r.parse().expect("rate")),
            over: over.map(|d| d.parse().expect("dur")),
            hold: hold.map(|d| d.parse().expect("dur")),
        }
    }

    /// A profile with ramps up and down and a hold: the seed's shape, short.
    fn profile() -> Arrivals {
        let stages = [
            stage(Some("7/s"), None, None, None),
            stage(None, Some("120/s"), Some("7s"), None),
            stage(Some("120/s"), None, None, Some("5s")),
            stage(None, Some("33/s"), Some("3300ms"), None),
            stage(None, Some("0/s"), Some("2s"), None),
        ];
        Arrivals::new(&traffic(&stages, 1.0))
    }

    #[test]
    fn the_union_of_the_shards_is_the_one_process_schedule() {
        let one: Vec<(usize, Duration)> = profile().enumerate().collect();
        assert!(one.len() > 1000, "{}", one.len());
        for n in [2u32, 3, 4, 7] {
            let mut union: Vec<(usize, Duration)> = Vec::new();
            for k in 0..n {
                let shard = Shard { index: k, count: n };
                let mut mine: Vec<(usize, Duration)> = Vec::new();
                // Each shard's workers stripe its share again; together they are the share.
                for w in 0..3 {
                    mine.extend(stripe(profile(), shard, (w, 3)));
                }
                assert_eq!(mine.len() as u64, shard.share(one.len() as u64), "{shard}");
                union.extend(mine);
            }
            union.sort_by_key(|(i, _)| *i);
            assert_eq!(union, one, "{n} shards");
        }
    }

    #[test]
    fn merged_shard_histograms_equal_one_histogram_of_every_sample() {
        // A long-tailed spread of latencies, µs: a deterministic pseudo-random walk.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let samples: Vec<u64> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x % 1_000_000) as f64 / 1_000_000.0;
                (200.0 / (1.0 - u).max(1e-6).powf(0.7)) as u64 + 1
            })
            .collect();
        let mut one = Stats::default().latency;
        for v in &samples {
            one.record(*v).expect("in range");
        }
        for n in [2usize, 4, 8] {
            let mut merged = Stats::default();
            for k in 0..n {
                let mut part = Stats::default();
                for v in samples.iter().skip(k).step_by(n) {
                    part.latency.record(*v).expect("in range");
                }
                // Through the wire, as a shard reports it.
                let wire = WireSecond::of(0, &part).expect("encodes");
                let json = serde_json::to_string(&wire).expect("json");
                let back: WireSecond = serde_json::from_str(&json).expect("json");
                merged.merge(&back.stats().expect("decodes"));
            }
            assert_eq!(merged.latency.len(), one.len(), "{n} shards");
            for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
                assert_eq!(
                    merged.latency.value_at_quantile(q),
                    one.value_at_quantile(q),
                    "{n} shards, q {q}"
                );
            }
            assert_eq!(merged.latency.max(), one.max());
        }
    }

    /// The engine's recorder fed by three shards' reports measures what one process that
    /// recorded every sample measures: the whole run, spans on whole seconds, the seconds,
    /// the counters and the failures.
    #[test]
    fn a_recorder_fed_by_shard_reports_equals_one_that_recorded_every_sample() {
        use crate::metrics::{ErrorSet, Outcome};
        let timeout = Duration::from_secs(1);
        let one = Recorder::new(ErrorSet::standard(), timeout);
        let engine = Recorder::new(ErrorSet::standard(), timeout);
        let shards: Vec<Recorder> = (0..3)
            .map(|_| {
                let r = Recorder::new(ErrorSet::standard(), timeout);
                r.track_deltas();
                r
            })
            .collect();
        for r in [&one, &engine] {
            r.open_span("d/baseline", Duration::from_secs(2));
            r.close_span("d/baseline", Duration::from_secs(5));
            r.open_span("d/fault", Duration::from_secs(5));
            r.close_span("d/fault", Duration::from_secs(8));
        }
        let mut reports = Vec::new();
        for i in 0..5_000u64 {
            let intended = Duration::from_micros(i * 2_000 + 17);
            let latency = Duration::from_micros(300 + (i * 7_919) % 90_000);
            let o = Outcome {
                status: Some(if i % 97 == 0 { 503 } else { 200 }),
                failure: None,
                request_id: None,
                check: None,
            };
            let k = (i % 3) as usize;
            one.count_scheduled();
            one.count_sent(false, 1);
            one.record("home", intended, latency, latency, &o);
            shards[k].count_scheduled();
            shards[k].count_sent(false, 1);
            shards[k].record("home", intended, latency, latency, &o);
            if i % 700 == 0 {
                // Reports go out while the run goes, through JSON.
                for s in &shards {
                    let d = Delta::take(s).expect("a delta");
                    reports.push(serde_json::to_string(&d).expect("json"));
                }
            }
        }
        for s in &shards {
            reports.push(serde_json::to_string(&Delta::take(s).expect("a delta")).expect("json"));
        }
        for r in &reports {
            let d: Delta = serde_json::from_str(r).expect("json");
            engine.absorb_totals(&d.counters, &d.checks, &d.failures, d.failures_total);
            for s in &d.seconds {
                engine.absorb_second(s.t, &s.stats().expect("decodes"));
            }
        }
        let same = |a: &Stats, b: &Stats, what: &str| {
            assert_eq!(a.requests, b.requests, "{what}");
            assert_eq!(a.failed, b.failed, "{what}");
            assert_eq!(a.by_status, b.by_status, "{what}");
            for q in [50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
                assert_eq!(a.latency_at(q), b.latency_at(q), "{what} p{q}");
            }
        };
        same(&one.overall(), &engine.overall(), "overall");
        for span in ["d/baseline", "d/fault"] {
            let (a, b) = (
                one.span(span).expect("span"),
                engine.span(span).expect("span"),
            );
            assert!(a.requests > 1_000, "{span}: {}", a.requests);
            same(&a, &b, span);
        }
        let (a, b) = (one.finish(), engine.finish());
        assert_eq!(a.counters.scheduled, b.counters.scheduled);
        assert_eq!(a.counters.sent, b.counters.sent);
        assert_eq!(a.counters.completed, b.counters.completed);
        assert_eq!(a.failures_total, b.failures_total);
        let secs = |m: &crate::Measurements| -> Vec<(u64, u64, f64)> {
            m.seconds
                .iter()
                .map(|s| (s.t, s.requests, s.p99_ms))
                .collect()
        };
        assert_eq!(secs(&a), secs(&b));
    }

    #[test]
    fn a_histogram_of_other_buckets_is_refused() {
        let mut other: Histogram<u64> = Histogram::new(2).expect("valid");
        other.record(5).expect("in range");
        let wire = WireSecond {
            latency: encode(&other).expect("encodes"),
            ..WireSecond::of(0, &Stats::default()).expect("encodes")
        };
        let e = wire
            .stats()
            .expect_err("two significant figures are not three");
        assert!(e.to_string().contains("another version of drill"), "{e}");
    }

    #[test]
    fn shards_parse_and_share() {
        assert_eq!(Shard::parse("2/7"), Ok(Shard { index: 2, count: 7 }));
        assert!(Shard::parse("7/7").is_err());
        assert!(Shard::parse("1").is_err());
        assert_eq!(Shard { index: 0, count: 4 }.share(10), 3);
        assert_eq!(Shard { index: 3, count: 4 }.share(10), 2);
        assert_eq!(Shard { index: 3, count: 4 }.share(2), 0);
    }
}
