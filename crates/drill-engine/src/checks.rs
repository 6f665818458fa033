//! Verdicts: a drill's checks evaluated on what the traffic and the probes measured, each with
//! its measured value and its limit in words.

use std::time::Duration;

use drill_load::metrics::Stats;
use drill_spec::check::{ProbeRule, Rule, ValidCheck};
use drill_spec::cond::{Metric, Quantity};
use drill_spec::model::{Limits, Phase, Probe};

pub use drill_report::{CheckKind, CheckResult, Verdict};

/// Fewer successful requests than this in a phase (or its baseline) cannot judge a delta on a
/// latency: a percentile of a handful of samples is noise.
pub const MIN_DELTA_SAMPLES: u64 = 20;

/// Formats a duration the way playbooks write them: `812ms`, `12.3s`, `5m0s`.
pub fn fmt_dur(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        let s = d.as_secs();
        format!("{}m{}s", s / 60, s % 60)
    }
}

fn fmt_pct(f: f64) -> String {
    drill_load::summary::pct(f)
}

/// A metric's value over a span, in the unit conditions use (seconds, fraction, per second).
pub fn metric_value(m: Metric, s: &Stats, span: Duration) -> f64 {
    match m {
        Metric::ErrorRate => s.error_rate(),
        Metric::Rate => s.requests as f64 / span.as_secs_f64().max(1e-9),
        Metric::Dropped => s.dropped as f64,
        latency @ (Metric::Avg
        | Metric::Min
        | Metric::P50
        | Metric::P90
        | Metric::P95
        | Metric::P99
        | Metric::Max) => s
            .latency_stat(latency.name())
            .unwrap_or_default()
            .as_secs_f64(),
    }
}

/// A metric's value in words.
pub fn fmt_metric(m: Metric, v: f64) -> String {
    match m {
        Metric::ErrorRate => fmt_pct(v),
        Metric::Rate => format!("{v:.1}/s"),
        Metric::Dropped => format!("{v:.0}"),
        Metric::Avg
        | Metric::Min
        | Metric::P50
        | Metric::P90
        | Metric::P95
        | Metric::P99
        | Metric::Max => fmt_dur(Duration::from_secs_f64(v.max(0.0))),
    }
}

/// A traffic check over a span in which no request was measured cannot pass: `0% of 0
/// requests failed` says nothing of the service (the traffic was stopped, cut off, or all
/// dropped). `baseline` for a delta. `None` when there is something to judge.
fn unmeasured(
    name: &str,
    kind: CheckKind,
    phase: Phase,
    limit: String,
    s: &Stats,
    baseline: Option<&Stats>,
) -> Option<CheckResult> {
    let base_empty = baseline.is_some_and(|b| b.requests == 0);
    let where_ = match (s.requests == 0, base_empty) {
        (true, true) => " (nor in its baseline)",
        (true, false) => "",
        (false, true) => " in its baseline",
        (false, false) => return None,
    };
    let dropped = s.dropped + baseline.map_or(0, |b| b.dropped);
    let dropped = if dropped > 0 {
        format!("; {} arrivals were dropped", fmt_num(dropped as f64))
    } else {
        String::new()
    };
    Some(CheckResult {
        name: name.to_owned(),
        kind,
        phase,
        passed: false,
        verdict: Verdict::Inconclusive,
        why: format!("no request was measured{where_}{dropped}"),
        measured: format!(
            "0 requests{}",
            if base_empty && s.requests > 0 {
                " in the baseline"
            } else {
                ""
            }
        ),
        limit,
        recovery_s: None,
    })
}

/// An SLO check: every limit in `limits` over the span's traffic.
pub fn slo(name: &str, phase: Phase, limits: &Limits, s: &Stats) -> CheckResult {
    let ts = drill_load::summary::evaluate(phase.to_string().as_str(), limits, s);
    let passed = ts.iter().all(|t| t.ok);
    let measured = ts
        .iter()
        .map(|t| format!("{} {}", t.what(), t.show(t.measured)))
        .collect::<Vec<_>>()
        .join(", ");
    let limit = ts
        .iter()
        .map(|t| {
            let op = if t.unit == drill_load::summary::Unit::Ratio {
                "<"
            } else {
                "<="
            };
            format!("{} {op} {}", t.what(), t.show(t.limit))
        })
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(r) = unmeasured(name, CheckKind::Slo, phase, limit.clone(), s, None) {
        return r;
    }
    let why = ts
        .iter()
        .filter(|t| passed || !t.ok)
        .map(|t| threshold_words(t, s.requests))
        .collect::<Vec<_>>()
        .join("; ");
    CheckResult {
        name: name.to_owned(),
        kind: CheckKind::Slo,
        phase,
        passed,
        verdict: if passed { Verdict::Pass } else { Verdict::Fail },
        why,
        measured: format!("{measured} over {} requests", s.requests),
        limit,
        recovery_s: None,
    }
}

/// A threshold in words: `99.9% of 812 requests failed (limit < 1%)`, `p95 was 1.2s (limit
/// <= 800ms)`.
fn threshold_words(t: &drill_load::summary::Threshold, requests: u64) -> String {
    if t.unit == drill_load::summary::Unit::Ratio {
        format!(
            "{} of {} requests failed (limit < {})",
            t.show(t.measured),
            fmt_num(requests as f64),
            t.show(t.limit)
        )
    } else {
        format!(
            "{} was {} (limit <= {})",
            t.what(),
            t.show(t.measured),
            t.show(t.limit)
        )
    }
}

fn pass_or_fail(ok: bool) -> Verdict {
    if ok { Verdict::Pass } else { Verdict::Fail }
}

/// Evaluates a traffic check (`slo`, `count`, `delta`) on its phase's measurements; a probe
/// check is judged by [`probe`] on its readings, so it has no verdict here (`None`).
/// `error_limit` is the SLO's error rate for the phase (its own, else the run-wide one): a
/// latency delta over a phase that fails more than that is a failure, not a pass made of fast
/// errors.
pub fn traffic(
    c: &ValidCheck,
    phase: Phase,
    s: &Stats,
    span: Duration,
    baseline: &Stats,
    error_limit: Option<f64>,
) -> Option<CheckResult> {
    Some(match &c.rule {
        Rule::Slo(l) => slo(&c.name, phase, l, s),
        Rule::Count(cc) => count(&c.name, cc, phase, s),
        Rule::Delta(d) => delta(&c.name, d, phase, s, span, baseline, error_limit),
        Rule::Probe(_) => return None,
    })
}

fn count(name: &str, cc: &drill_spec::model::CountCheck, phase: Phase, s: &Stats) -> CheckResult {
    let limit = format!("at most {} {}", cc.max, cc.of);
    if let Some(r) = unmeasured(name, CheckKind::Count, phase, limit.clone(), s, None) {
        return r;
    }
    let n = s.count(cc.of);
    let ok = n <= cc.max;
    CheckResult {
        name: name.to_owned(),
        kind: CheckKind::Count,
        phase,
        passed: ok,
        verdict: pass_or_fail(ok),
        why: format!(
            "{} {} responses in {} requests (limit {limit})",
            fmt_num(n as f64),
            cc.of,
            fmt_num(s.requests as f64),
        ),
        measured: format!("{n} {} in {} requests", cc.of, s.requests),
        limit,
        recovery_s: None,
    }
}

fn delta(
    name: &str,
    d: &drill_spec::model::DeltaCheck,
    phase: Phase,
    s: &Stats,
    span: Duration,
    baseline: &Stats,
    error_limit: Option<f64>,
) -> CheckResult {
    let limit = format!("rise at most {}", quantity(d.max));
    if let Some(r) = unmeasured(
        name,
        CheckKind::Delta,
        phase,
        limit.clone(),
        s,
        Some(baseline),
    ) {
        return r;
    }
    let now = metric_value(d.metric, s, span);
    let base = metric_value(d.metric, baseline, span);
    let rise = now - base;
    let max = d.max.value();
    let sign = if fmt_metric(d.metric, rise.abs()).starts_with('0') || rise >= 0.0 {
        "+"
    } else {
        "-"
    };
    let mut measured = format!(
        "{} {} (baseline {}, {sign}{})",
        d.metric.name(),
        fmt_metric(d.metric, now),
        fmt_metric(d.metric, base),
        fmt_metric(d.metric, rise.abs())
    );
    let mut why = format!(
        "{} rose from {} to {}, {sign}{} (limit +{})",
        d.metric.name(),
        fmt_metric(d.metric, base),
        fmt_metric(d.metric, now),
        fmt_metric(d.metric, rise.abs()),
        quantity(d.max)
    );
    let mut verdict = pass_or_fail(rise <= max);
    if d.metric != Metric::ErrorRate && !matches!(d.metric, Metric::Rate | Metric::Dropped) {
        let ok = |x: &Stats| x.requests - x.failed.min(x.requests);
        let errors = s.error_rate();
        if let Some(l) = error_limit.filter(|l| errors >= *l) {
            // Fast errors make a fast percentile: the latency of a failing phase says nothing.
            verdict = Verdict::Fail;
            why = format!(
                "{} of {} requests failed (limit < {}), so its {} ({}) measures errors, not the service",
                fmt_pct(errors),
                fmt_num(s.requests as f64),
                fmt_pct(l),
                d.metric.name(),
                fmt_metric(d.metric, now)
            );
            measured.push_str(&format!(", but {} failed", fmt_pct(errors)));
        } else if ok(s) < MIN_DELTA_SAMPLES || ok(baseline) < MIN_DELTA_SAMPLES {
            verdict = Verdict::Inconclusive;
            why = format!(
                "too few successful requests to compare a {}: {} in the {phase} phase, {} in the baseline (at least {MIN_DELTA_SAMPLES} each)",
                d.metric.name(),
                ok(s),
                ok(baseline)
            );
            measured.push_str(&format!(
                ", {} and {} successful requests",
                ok(s),
                ok(baseline)
            ));
        }
    }
    CheckResult {
        name: name.to_owned(),
        kind: CheckKind::Delta,
        phase,
        passed: verdict == Verdict::Pass,
        verdict,
        why,
        measured,
        limit,
        recovery_s: None,
    }
}

fn quantity(q: Quantity) -> String {
    match q {
        Quantity::Duration(d) => fmt_dur(d.0),
        other => other.to_string(),
    }
}

/// What a probe check saw.
#[derive(Debug, Clone)]
pub struct ProbeOutcome {
    /// When the condition first held, from the window's start.
    pub held_after: Option<Duration>,
    /// The last value read.
    pub last: Option<f64>,
    /// The last read error.
    pub error: Option<String>,
    /// How long the window was.
    pub window: Duration,
    pub reads: u64,
}

/// A probe check's verdict.
pub fn probe(name: &str, p: &ProbeRule, phase: Phase, o: &ProbeOutcome) -> CheckResult {
    let cond = p.until.to_string().trim_start_matches("value ").to_owned();
    let what = probe_name(&p.probe);
    let limit = format!("{what} {cond} within {}", fmt_dur(o.window));
    let (passed, measured) = match (o.held_after, o.last, &o.error) {
        (Some(t), v, _) => (
            true,
            format!(
                "{what} {} after {}",
                v.map_or_else(|| "?".into(), fmt_num),
                fmt_dur(t)
            ),
        ),
        (None, Some(v), _) => (
            false,
            format!("{what} {} after {}", fmt_num(v), fmt_dur(o.window)),
        ),
        (None, None, Some(e)) => (false, format!("no reading in {}: {e}", fmt_dur(o.window))),
        (None, None, None) => (false, format!("no reading in {}", fmt_dur(o.window))),
    };
    let why = if passed {
        format!("{measured} (limit {cond} within {})", fmt_dur(o.window))
    } else {
        match (o.last, &o.error) {
            (Some(v), _) => format!(
                "{what} was still {} after {} (limit {cond} within {})",
                fmt_num(v),
                fmt_dur(o.window),
                fmt_dur(o.window)
            ),
            (None, _) => format!("{measured} (limit {cond} within {})", fmt_dur(o.window)),
        }
    };
    CheckResult {
        name: name.to_owned(),
        kind: CheckKind::Probe,
        phase,
        passed,
        verdict: pass_or_fail(passed),
        why,
        measured,
        limit,
        recovery_s: o
            .held_after
            .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
    }
}

/// Numbers in reports: integers with thousands separators (`4,812`), others with 3 decimals.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let s = format!("{}", v.abs() as u64);
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else {
        format!("{v:.3}")
    }
}

/// What a probe reads, in a word or two (`backlog` for a queue length).
fn probe_name(p: &Probe) -> String {
    use drill_spec::probe::RedisReading as R;
    match p {
        Probe::Redis(r) => match r.reading() {
            Some(R::Pending(q)) => format!("{} pending", q.key()),
            Some(x) if x.is_backlog() => "backlog".into(),
            Some(_) | None => "redis value".into(),
        },
        Probe::Sql(_)
        | Probe::Http(_)
        | Probe::Prometheus(_)
        | Probe::Docker(_)
        | Probe::Kubernetes(_) => format!("{} value", p.backend()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_like_the_seed_report() {
        assert_eq!(fmt_num(4812.0), "4,812");
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(0.5), "0.500");
        assert_eq!(fmt_dur(Duration::from_secs(300)), "5m0s");
        assert_eq!(fmt_dur(Duration::from_millis(812)), "812ms");
        assert_eq!(fmt_dur(Duration::from_millis(12_340)), "12.3s");
    }

    /// `0% of 0 requests failed` is no pass: a span without requests cannot judge an SLO.
    #[test]
    fn a_check_over_a_span_without_requests_is_inconclusive() {
        let limits = Limits {
            p95: Some(drill_spec::units::Dur::from_secs(1)),
            ..Limits::default()
        };
        let mut none = Stats::default();
        let r = slo("calm", Phase::Fault, &limits, &none);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{r:?}");
        assert!(!r.passed);
        assert_eq!(r.why, "no request was measured");
        none.dropped = 1_200;
        let r = slo("calm", Phase::Fault, &limits, &none);
        assert_eq!(
            r.why,
            "no request was measured; 1,200 arrivals were dropped"
        );
        let mut some = Stats::default();
        for _ in 0..10 {
            some.latency.record(5_000).expect("in range");
            some.requests += 1;
        }
        assert_eq!(
            slo("calm", Phase::Fault, &limits, &some).verdict,
            Verdict::Pass
        );
    }
}
