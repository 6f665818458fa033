//! The baseline gate: two runs' JSON reports side by side, per scope (the whole traffic, and
//! each drill's baseline, fault and recovery phases) and per SLO metric, and which of them
//! regressed.
//!
//! The rule (the seed plan's CI rule): a metric regresses when the new value is more than
//! [`REGRESSION`] above the baseline run's *and* above it by more than the metric's noise
//! floor ([`LATENCY_FLOOR_MS`], [`ERROR_FLOOR`]), so that 0.4 ms → 0.5 ms or 0 → 0.01% errors
//! is not a regression. The metrics are the ones the new run's SLO names (`p50`, `p90`,
//! `p95`, `p99`, `max`, `error_rate`), or `p95` and `error_rate` when it names none.

use std::fmt::Write as _;

use serde::Serialize;

use drill_spec::model::Phase;

use crate::schema::{Latencies, PhaseStats, Report, Traffic, Unit};

/// How much worse a metric may be: 10%.
pub const REGRESSION: f64 = 0.10;
/// A latency rise of less than this is noise, whatever its ratio.
pub const LATENCY_FLOOR_MS: f64 = 1.0;
/// An error-rate rise of less than this (0.1 percentage point) is noise.
pub const ERROR_FLOOR: f64 = 0.001;

/// One metric in one scope of both runs.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `overall`, or `DRILL/PHASE`.
    pub scope: String,
    /// `p95`, `error_rate`, …
    pub metric: String,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// `ms` or `ratio`.
    pub unit: Unit,
    pub regressed: bool,
}

impl Row {
    fn show(&self, v: Option<f64>) -> String {
        match (v, self.unit) {
            (None, _) => "—".into(),
            (Some(v), Unit::Ratio) => crate::fmt::pct(v),
            (Some(v), Unit::Ms) => format!("{v:.1}ms"),
        }
    }

    /// The change in words: `+16.2% (+41.0ms)`, `+0.3 pp`.
    pub fn change(&self) -> String {
        let (Some(b), Some(n)) = (self.base, self.new) else {
            return "not in both runs".into();
        };
        let rel = if b > 0.0 {
            format!("{:+.1}%", (n - b) / b * 100.0)
        } else if n > 0.0 {
            "new".into()
        } else {
            "±0%".into()
        };
        match self.unit {
            Unit::Ratio => format!("{rel} ({:+.2} pp)", (n - b) * 100.0),
            Unit::Ms => format!("{rel} ({:+.1}ms)", n - b),
        }
    }
}

/// Two runs compared.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub base_run: String,
    pub new_run: String,
    pub rows: Vec<Row>,
}

impl Comparison {
    pub fn regressed(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.regressed)
    }

    pub fn has_regression(&self) -> bool {
        self.rows.iter().any(|r| r.regressed)
    }

    /// The table, for a terminal: every row, the regressed ones marked.
    pub fn table(&self) -> String {
        let mut s = format!(
            "run {} against baseline run {} (a metric regresses when over {:.0}% worse):\n  {:<28} {:<10} {:>12} {:>12}  {:<26} VERDICT\n",
            self.new_run,
            self.base_run,
            REGRESSION * 100.0,
            "SCOPE",
            "METRIC",
            "BASELINE",
            "THIS RUN",
            "CHANGE"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "  {:<28} {:<10} {:>12} {:>12}  {:<26} {}",
                r.scope,
                r.metric,
                r.show(r.base),
                r.show(r.new),
                r.change(),
                if r.regressed { "REGRESSED" } else { "ok" }
            );
        }
        let n = self.regressed().count();
        if n == 0 {
            let _ = writeln!(s, "no regression over {:.0}%", REGRESSION * 100.0);
        } else {
            let first = self.regressed().next().map_or_else(String::new, |r| {
                format!(
                    ", first {} {} {} → {}",
                    r.scope,
                    r.metric,
                    r.show(r.base),
                    r.show(r.new)
                )
            });
            let _ = writeln!(
                s,
                "REGRESSED: {n} metric(s) over {:.0}% worse than run {}{first}",
                REGRESSION * 100.0,
                self.base_run
            );
        }
        s
    }

    /// The same table in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "## Against baseline run `{}`\n\n| scope | metric | baseline | this run | change | |\n| --- | --- | ---: | ---: | --- | --- |\n",
            self.base_run
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                r.scope,
                r.metric,
                r.show(r.base),
                r.show(r.new),
                r.change(),
                if r.regressed { "**REGRESSED**" } else { "ok" }
            );
        }
        s
    }
}

/// A metric the gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    P50,
    P90,
    P95,
    P99,
    Max,
    ErrorRate,
}

impl Metric {
    const ALL: [Metric; 6] = [
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::Max,
        Metric::ErrorRate,
    ];

    /// k6's spelling of the statistic, as the report's SLO thresholds name it.
    fn stat(self) -> &'static str {
        match self {
            Metric::P50 => "med",
            Metric::P90 => "p(90)",
            Metric::P95 => "p(95)",
            Metric::P99 => "p(99)",
            Metric::Max => "max",
            Metric::ErrorRate => "rate",
        }
    }

    /// As playbooks name it.
    fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Max => "max",
            Metric::ErrorRate => "error_rate",
        }
    }

    fn unit(self) -> Unit {
        match self {
            Metric::ErrorRate => Unit::Ratio,
            Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99 | Metric::Max => Unit::Ms,
        }
    }

    fn of(self, f: &Figures) -> f64 {
        let l = &f.latency;
        match self {
            Metric::P50 => l.p50_ms,
            Metric::P90 => l.p90_ms,
            Metric::P95 => l.p95_ms,
            Metric::P99 => l.p99_ms,
            Metric::Max => l.max_ms,
            Metric::ErrorRate => f.error_rate,
        }
    }
}

/// The figures of one scope: the whole traffic, or one phase of a drill.
struct Figures {
    latency: Latencies,
    error_rate: f64,
}

impl From<&Traffic> for Figures {
    fn from(t: &Traffic) -> Self {
        Figures {
            latency: t.latency,
            error_rate: t.error_rate,
        }
    }
}

impl From<&PhaseStats> for Figures {
    fn from(t: &PhaseStats) -> Self {
        Figures {
            latency: t.latency,
            error_rate: t.error_rate,
        }
    }
}

/// The SLO metrics the new run names, or `p95` and `error_rate` when it names none.
fn metrics(new: &Report) -> Vec<Metric> {
    let named: Vec<&str> = new
        .slo
        .iter()
        .flatten()
        .filter(|t| t.scope == "overall")
        .map(|t| t.stat.as_str())
        .collect();
    let picked: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| named.contains(&m.stat()))
        .collect();
    if picked.is_empty() {
        vec![Metric::P95, Metric::ErrorRate]
    } else {
        picked
    }
}

fn regressed(unit: Unit, base: f64, new: f64) -> bool {
    let floor = match unit {
        Unit::Ratio => ERROR_FLOOR,
        Unit::Ms => LATENCY_FLOOR_MS,
    };
    new > base * (1.0 + REGRESSION) && new - base > floor
}

/// Compares run `new` with run `base`.
pub fn compare(base: &Report, new: &Report) -> Comparison {
    let ms = metrics(new);
    let mut scopes: Vec<(String, Option<Figures>, Option<Figures>)> = vec![(
        "overall".into(),
        base.traffic.as_ref().map(Figures::from),
        new.traffic.as_ref().map(Figures::from),
    )];
    for d in &new.drills {
        let b = base.drills.iter().find(|x| x.name == d.name);
        for p in [Phase::Baseline, Phase::Fault, Phase::Recovery] {
            scopes.push((
                format!("{}/{p}", d.name),
                b.and_then(|b| b.phases.get(&p)).map(Figures::from),
                d.phases.get(&p).map(Figures::from),
            ));
        }
    }
    let mut rows = Vec::new();
    for (scope, b, n) in scopes {
        if b.is_none() && n.is_none() {
            continue;
        }
        for m in &ms {
            let (bv, nv) = (b.as_ref().map(|f| m.of(f)), n.as_ref().map(|f| m.of(f)));
            rows.push(Row {
                scope: scope.clone(),
                metric: m.name().to_owned(),
                base: bv,
                new: nv,
                unit: m.unit(),
                regressed: matches!((bv, nv), (Some(b), Some(n)) if regressed(m.unit(), b, n)),
            });
        }
    }
    Comparison {
        base_run: base.run.clone(),
        new_run: new.run.clone(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(run: &str, p95: f64, err: f64) -> Report {
        crate::tests::report(json!({
            "run": run, "status": "passed",
            "slo": [
                {"scope": "overall", "stat": "p(95)", "unit": "ms"},
                {"scope": "overall", "stat": "rate", "unit": "ratio"}
            ],
            "traffic": {"p95_ms": p95, "error_rate": err},
            "drills": [{"name": "cache-purge", "phases": {
                "baseline": {"p95_ms": p95, "error_rate": err},
                "fault": {"p95_ms": p95 * 2.0, "error_rate": err},
                "recovery": {"p95_ms": p95, "error_rate": err}
            }, "status": "completed"}]
        }))
    }

    #[test]
    fn an_identical_run_passes() {
        let c = compare(&report("a", 120.0, 0.002), &report("b", 120.0, 0.002));
        assert!(!c.has_regression(), "{}", c.table());
        assert_eq!(
            c.rows.len(),
            8,
            "overall and three phases, two metrics each"
        );
        assert!(c.table().contains("no regression over 10%"));
    }

    #[test]
    fn fifteen_percent_slower_at_p95_fails_with_the_table() {
        let c = compare(&report("a", 120.0, 0.002), &report("b", 138.0, 0.002));
        assert!(c.has_regression());
        let t = c.table();
        assert!(t.contains("REGRESSED: 4 metric(s)"), "{t}");
        assert!(
            t.lines().any(|l| l.contains("cache-purge/fault")
                && l.contains("+15.0%")
                && l.ends_with("REGRESSED")),
            "{t}"
        );
        assert!(c.regressed().all(|r| r.metric == "p95"));
    }

    #[test]
    fn nine_percent_or_noise_is_not_a_regression() {
        assert!(!compare(&report("a", 100.0, 0.0), &report("b", 109.0, 0.0)).has_regression());
        // 0.5 ms → 0.7 ms is 40% but under the floor; 0 → 0.05% errors likewise.
        assert!(!compare(&report("a", 0.5, 0.0), &report("b", 0.7, 0.0005)).has_regression());
        assert!(compare(&report("a", 100.0, 0.0), &report("b", 100.0, 0.02)).has_regression());
    }
}
