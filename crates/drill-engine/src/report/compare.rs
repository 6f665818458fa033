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
use serde_json::Value;

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
    pub unit: &'static str,
    pub regressed: bool,
}

impl Row {
    fn show(&self, v: Option<f64>) -> String {
        match v {
            None => "—".into(),
            Some(v) if self.unit == "ratio" => drill_load::summary::pct(v),
            Some(v) => format!("{v:.1}ms"),
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
        if self.unit == "ratio" {
            format!("{rel} ({:+.2} pp)", (n - b) * 100.0)
        } else {
            format!("{rel} ({:+.1}ms)", n - b)
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

/// The report keys of the SLO metrics the new run names.
fn metrics(new: &Value) -> Vec<(&'static str, &'static str, &'static str)> {
    const ALL: [(&str, &str, &str, &str); 6] = [
        ("med", "p50", "p50_ms", "ms"),
        ("p(90)", "p90", "p90_ms", "ms"),
        ("p(95)", "p95", "p95_ms", "ms"),
        ("p(99)", "p99", "p99_ms", "ms"),
        ("max", "max", "max_ms", "ms"),
        ("rate", "error_rate", "error_rate", "ratio"),
    ];
    let named: Vec<&str> = new["slo"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|t| t["scope"] == "overall")
                .filter_map(|t| t["stat"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let picked: Vec<_> = ALL
        .iter()
        .filter(|(stat, ..)| named.contains(stat))
        .map(|(_, name, key, unit)| (*name, *key, *unit))
        .collect();
    if picked.is_empty() {
        vec![
            ("p95", "p95_ms", "ms"),
            ("error_rate", "error_rate", "ratio"),
        ]
    } else {
        picked
    }
}

fn regressed(unit: &str, base: f64, new: f64) -> bool {
    let floor = if unit == "ratio" {
        ERROR_FLOOR
    } else {
        LATENCY_FLOOR_MS
    };
    new > base * (1.0 + REGRESSION) && new - base > floor
}

/// Compares run `new` with run `base` (their JSON reports).
pub fn compare(base: &Value, new: &Value) -> Comparison {
    let ms = metrics(new);
    let mut scopes: Vec<(String, &Value, &Value)> =
        vec![("overall".into(), &base["traffic"], &new["traffic"])];
    let find = |r: &'_ Value, name: &Value| -> Option<Value> {
        r["drills"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["name"] == *name).cloned())
    };
    let mut held: Vec<(String, Value, Value)> = Vec::new();
    for d in new["drills"].as_array().into_iter().flatten() {
        let b = find(base, &d["name"]).unwrap_or(Value::Null);
        for p in ["baseline", "fault", "recovery"] {
            held.push((
                format!("{}/{p}", d["name"].as_str().unwrap_or("?")),
                b["phases"][p].clone(),
                d["phases"][p].clone(),
            ));
        }
    }
    for (s, b, n) in &held {
        scopes.push((s.clone(), b, n));
    }
    let mut rows = Vec::new();
    for (scope, b, n) in scopes {
        if b.is_null() && n.is_null() {
            continue;
        }
        for (name, key, unit) in &ms {
            let (bv, nv) = (b[*key].as_f64(), n[*key].as_f64());
            rows.push(Row {
                scope: scope.clone(),
                metric: (*name).to_owned(),
                base: bv,
                new: nv,
                unit,
                regressed: matches!((bv, nv), (Some(b), Some(n)) if regressed(unit, b, n)),
            });
        }
    }
    Comparison {
        base_run: base["run"].as_str().unwrap_or("?").to_owned(),
        new_run: new["run"].as_str().unwrap_or("?").to_owned(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(run: &str, p95: f64, err: f64) -> Value {
        json!({
            "run": run,
            "slo": [
                {"scope": "overall", "stat": "p(95)", "unit": "ms"},
                {"scope": "overall", "stat": "rate", "unit": "ratio"}
            ],
            "traffic": {"p95_ms": p95, "error_rate": err},
            "drills": [{"name": "cache-purge", "phases": {
                "baseline": {"p95_ms": p95, "error_rate": err},
                "fault": {"p95_ms": p95 * 2.0, "error_rate": err},
                "recovery": {"p95_ms": p95, "error_rate": err}
            }}]
        })
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
