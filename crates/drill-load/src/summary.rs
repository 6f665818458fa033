//! Verdicts and outputs: thresholds (k6's `p(95)<=800` form), the k6 summary-export JSON, a
//! Markdown summary and a per-second JSON timeline.

use std::time::Duration;

use drill_spec::model::Limits;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

use crate::metrics::{Measurements, Stats};

/// How limits and measurements are written: `3.85%`, `812ms`.
pub use drill_report::fmt::{millis, pct};
/// One threshold and what was measured: the report's type, evaluated here.
pub use drill_report::{Threshold, Unit};

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Evaluates SLO limits on a span's stats. Latency limits hold when the measured value is at
/// most the limit; the error rate must be strictly below its limit (as in the seed's "< 1%").
pub fn evaluate(scope: &str, limits: &Limits, s: &Stats) -> Vec<Threshold> {
    let mut out = Vec::new();
    let stats: [(&str, Option<drill_spec::units::Dur>, Duration); 6] = [
        ("avg", limits.avg, s.latency_mean()),
        ("med", limits.p50, s.latency_at(50.0)),
        ("p(90)", limits.p90, s.latency_at(90.0)),
        ("p(95)", limits.p95, s.latency_at(95.0)),
        ("p(99)", limits.p99, s.latency_at(99.0)),
        ("max", limits.max, s.latency_max()),
    ];
    for (stat, limit, measured) in stats {
        if let Some(l) = limit {
            let limit_ms = ms(l.0);
            out.push(Threshold {
                scope: scope.to_owned(),
                stat: stat.to_owned(),
                k6: format!("{stat}<={limit_ms}"),
                limit: limit_ms,
                measured: ms(measured),
                unit: Unit::Ms,
                ok: ms(measured) <= limit_ms,
            });
        }
    }
    if let Some(p) = limits.error_rate {
        let rate = s.error_rate();
        out.push(Threshold {
            scope: scope.to_owned(),
            stat: "rate".into(),
            k6: format!("rate<{}", p.fraction()),
            limit: p.fraction(),
            measured: rate,
            unit: Unit::Ratio,
            ok: rate < p.fraction(),
        });
    }
    out
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn trend(s: &Stats) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("avg".into(), json!(ms(s.latency_mean())));
    m.insert("min".into(), json!(ms(s.latency_min())));
    m.insert("med".into(), json!(ms(s.latency_at(50.0))));
    m.insert("max".into(), json!(ms(s.latency_max())));
    m.insert("p(90)".into(), json!(ms(s.latency_at(90.0))));
    m.insert("p(95)".into(), json!(ms(s.latency_at(95.0))));
    m
}

fn service_trend(s: &Stats) -> Map<String, Value> {
    let q = |p: f64| {
        if s.service.is_empty() {
            0.0
        } else {
            s.service.value_at_quantile(p) as f64 / 1e3
        }
    };
    let mut m = Map::new();
    m.insert(
        "avg".into(),
        json!(if s.service.is_empty() {
            0.0
        } else {
            (s.service.mean() * 1e3).round() / 1e6
        }),
    );
    m.insert(
        "min".into(),
        json!(if s.service.is_empty() {
            0.0
        } else {
            s.service.min() as f64 / 1e3
        }),
    );
    m.insert("med".into(), json!(q(0.5)));
    m.insert(
        "max".into(),
        json!(if s.service.is_empty() {
            0.0
        } else {
            s.service.max() as f64 / 1e3
        }),
    );
    m.insert("p(90)".into(), json!(q(0.9)));
    m.insert("p(95)".into(), json!(q(0.95)));
    m
}

/// The k6 `--summary-export` document: `root_group` (with one check per request that has an
/// `expect`) and `metrics`. `http_req_duration` is the latency from the intended start (what
/// the SLOs judge); `drill_service_duration` is the time from the actual send.
pub fn k6_summary(m: &Measurements, elapsed: Duration, thresholds: &[Threshold]) -> Value {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let o = &m.overall;
    let mut duration = trend(o);
    let mut failed = Map::new();
    failed.insert("passes".into(), json!(o.failed));
    failed.insert("fails".into(), json!(o.requests - o.failed));
    failed.insert("value".into(), json!(o.error_rate()));
    let overall: Vec<&Threshold> = thresholds.iter().filter(|t| t.scope == "overall").collect();
    let lat: Map<String, Value> = overall
        .iter()
        .filter(|t| t.unit == Unit::Ms)
        .map(|t| (t.k6.clone(), json!(!t.ok)))
        .collect();
    if !lat.is_empty() {
        duration.insert("thresholds".into(), Value::Object(lat));
    }
    let rate: Map<String, Value> = overall
        .iter()
        .filter(|t| t.unit == Unit::Ratio)
        .map(|t| (t.k6.clone(), json!(!t.ok)))
        .collect();
    if !rate.is_empty() {
        failed.insert("thresholds".into(), Value::Object(rate));
    }
    let (cp, cf) = (o.checks_passed, o.checks_failed);
    let group_checks: Map<String, Value> = m
        .checks
        .iter()
        .map(|(name, p, f)| {
            let path = format!("::{name}");
            (
                name.clone(),
                json!({"name": name, "path": path, "id": md5_hex(&path), "passes": p, "fails": f}),
            )
        })
        .collect();
    json!({
        "root_group": {
            "name": "",
            "path": "",
            "id": md5_hex(""),
            "groups": {},
            "checks": group_checks,
        },
        "metrics": {
            "http_req_duration": duration,
            "drill_service_duration": service_trend(o),
            "http_req_failed": failed,
            "http_reqs": {"count": m.counters.sent, "rate": m.counters.sent as f64 / secs},
            "iterations": {"count": o.requests - m.counters.follow_ups.min(o.requests), "rate": (o.requests - m.counters.follow_ups.min(o.requests)) as f64 / secs},
            "dropped_iterations": {"count": m.counters.dropped(), "rate": m.counters.dropped() as f64 / secs},
            "checks": {"passes": cp, "fails": cf, "value": if cp + cf == 0 { 0.0 } else { cp as f64 / (cp + cf) as f64 }},
        }
    })
}

/// The per-second timeline and the phases, as JSON.
pub fn timeline(m: &Measurements) -> Value {
    let phases: Vec<Value> = m
        .phases
        .iter()
        .map(|(name, at, s)| {
            json!({
                "name": name, "start_s": at.as_secs_f64(), "requests": s.requests, "failed": s.failed,
                "dropped": s.dropped, "error_rate": s.error_rate(),
                "p50_ms": ms(s.latency_at(50.0)), "p90_ms": ms(s.latency_at(90.0)), "p95_ms": ms(s.latency_at(95.0)),
                "p99_ms": ms(s.latency_at(99.0)), "max_ms": ms(s.latency_max()),
            })
        })
        .collect();
    json!({"seconds": m.seconds, "phases": phases, "failures": m.failures, "failures_total": m.failures_total})
}

/// A Markdown summary in the spirit of the seed's run report.
pub fn markdown(
    title: &str,
    m: &Measurements,
    elapsed: Duration,
    target_rate: Option<f64>,
    thresholds: &[Threshold],
) -> String {
    let o = &m.overall;
    let c = &m.counters;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut s = format!("# {title}\n\n");
    s.push_str("| metric | value |\n| --- | --- |\n");
    s.push_str(&format!("| duration | {:.1} s |\n", secs));
    s.push_str(&format!(
        "| scheduled / sent / completed / dropped | {} / {} / {} / {} |\n",
        c.scheduled,
        c.sent,
        c.completed,
        c.dropped()
    ));
    match target_rate {
        Some(t) => s.push_str(&format!(
            "| achieved rate | {:.1}/s (target {:.1}/s) |\n",
            c.scheduled.saturating_sub(c.dropped()) as f64 / secs,
            t
        )),
        None => s.push_str(&format!(
            "| achieved rate | {:.1}/s |\n",
            c.sent as f64 / secs
        )),
    }
    s.push_str(&format!(
        "| latency (from intended start) | avg {} ms, p50 {} ms, p90 {} ms, p95 {} ms, p99 {} ms, max {} ms |\n",
        ms(o.latency_mean()), ms(o.latency_at(50.0)), ms(o.latency_at(90.0)), ms(o.latency_at(95.0)), ms(o.latency_at(99.0)), ms(o.latency_max())
    ));
    s.push_str(&format!(
        "| error rate | {:.3}% ({} of {}) |\n",
        o.error_rate() * 100.0,
        o.failed,
        o.requests
    ));
    if !o.by_class.is_empty() {
        let classes: Vec<String> = o
            .by_class
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        s.push_str(&format!("| errors by class | {} |\n", classes.join(", ")));
    }
    if !m.phases.is_empty() {
        s.push_str("\n## Phases\n\n| phase | requests | error rate | p50 | p95 | p99 | max | dropped |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (name, _, p) in &m.phases {
            s.push_str(&format!(
                "| {name} | {} | {:.3}% | {} ms | {} ms | {} ms | {} ms | {} |\n",
                p.requests,
                p.error_rate() * 100.0,
                ms(p.latency_at(50.0)),
                ms(p.latency_at(95.0)),
                ms(p.latency_at(99.0)),
                ms(p.latency_max()),
                p.dropped
            ));
        }
    }
    if !thresholds.is_empty() {
        s.push_str("\n## Thresholds\n\n| scope | threshold | measured | result |\n| --- | --- | --- | --- |\n");
        for t in thresholds {
            let measured = t.show(t.measured);
            s.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                t.scope,
                t.k6,
                measured,
                if t.ok { "pass" } else { "**FAIL**" }
            ));
        }
    }
    if !m.failures.is_empty() {
        s.push_str(&format!("\n## Failed requests ({} in all; examples)\n\n| at | request | class | status | latency | X-Request-Id |\n| --- | --- | --- | --- | --- | --- |\n", m.failures_total));
        for f in m.failures.iter().take(20) {
            s.push_str(&format!(
                "| {:.3} s | {} | {} | {} | {:.1} ms | {} |\n",
                f.at_s,
                f.request,
                f.class,
                f.status.map(|x| x.to_string()).unwrap_or_default(),
                f.latency_ms,
                f.request_id.as_deref().unwrap_or("")
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(unit: Unit, stat: &str, measured: f64, limit: f64, ok: bool) -> Threshold {
        Threshold {
            scope: "fault".into(),
            stat: stat.into(),
            k6: String::new(),
            limit,
            measured,
            unit,
            ok,
        }
    }

    #[test]
    fn a_threshold_says_measured_and_limit_in_the_same_units() {
        assert_eq!(
            t(Unit::Ratio, "rate", 0.074_058_784_676_354_03, 0.01, false).sentence(),
            "error_rate 7.41% >= 1%"
        );
        assert_eq!(
            t(Unit::Ratio, "rate", 0.0, 0.01, true).sentence(),
            "error_rate 0% < 1%"
        );
        assert_eq!(
            t(Unit::Ms, "p(95)", 812.4, 800.0, false).sentence(),
            "p95 812ms > 800ms"
        );
        assert_eq!(
            t(Unit::Ms, "max", 2400.0, 2000.0, false).sentence(),
            "max 2.4s > 2s"
        );
    }

    #[test]
    fn percentages_read_like_limits() {
        assert_eq!(pct(0.038_537_941_994_437_82), "3.85%");
        assert_eq!(pct(0.01), "1%");
        assert_eq!(pct(0.999), "99.9%");
        assert_eq!(pct(0.0), "0%");
        assert_eq!(pct(0.000_012), "1.2e-3%");
        assert_eq!(millis(812.4), "812ms");
        assert_eq!(millis(1250.0), "1.25s");
    }
}
