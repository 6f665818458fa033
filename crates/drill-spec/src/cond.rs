//! Conditions (`p95 > 900ms`, `error_rate > 5%`, `value < 1`) and the quantities in them.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{Dur, Percent, Rate};

/// A traffic metric, computed over a window of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Avg,
    Min,
    P50,
    P90,
    P95,
    P99,
    Max,
    ErrorRate,
    /// Achieved requests per second.
    Rate,
    /// Arrivals that could not start on time.
    Dropped,
}

impl Metric {
    pub const NAMES: &'static [&'static str] = &[
        "avg",
        "min",
        "p50",
        "p90",
        "p95",
        "p99",
        "max",
        "error_rate",
        "rate",
        "dropped",
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Avg => "avg",
            Metric::Min => "min",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Max => "max",
            Metric::ErrorRate => "error_rate",
            Metric::Rate => "rate",
            Metric::Dropped => "dropped",
        }
    }

    fn from_name(s: &str) -> Option<Metric> {
        Some(match s {
            "avg" => Metric::Avg,
            "min" => Metric::Min,
            "p50" | "med" => Metric::P50,
            "p90" => Metric::P90,
            "p95" => Metric::P95,
            "p99" => Metric::P99,
            "max" => Metric::Max,
            "error_rate" => Metric::ErrorRate,
            "rate" => Metric::Rate,
            "dropped" => Metric::Dropped,
            _ => return None,
        })
    }

    /// Whether a quantity of this kind can be compared with the metric.
    pub fn accepts(self, q: &Quantity) -> bool {
        match self {
            Metric::Avg
            | Metric::Min
            | Metric::P50
            | Metric::P90
            | Metric::P95
            | Metric::P99
            | Metric::Max => {
                matches!(q, Quantity::Duration(_))
            }
            Metric::ErrorRate => matches!(q, Quantity::Percent(_)),
            Metric::Rate => matches!(q, Quantity::Rate(_) | Quantity::Number(_)),
            Metric::Dropped => matches!(q, Quantity::Number(_)),
        }
    }

    /// An example of what the metric compares with, for error hints.
    pub fn example(self) -> &'static str {
        match self {
            Metric::ErrorRate => "a percentage like 1%",
            Metric::Rate => "a rate like 100/s",
            Metric::Dropped => "a number",
            _ => "a duration like 800ms",
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Op::Lt => lhs < rhs,
            Op::Le => lhs <= rhs,
            Op::Gt => lhs > rhs,
            Op::Ge => lhs >= rhs,
            Op::Eq => (lhs - rhs).abs() < f64::EPSILON,
            Op::Ne => (lhs - rhs).abs() >= f64::EPSILON,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// A number with its unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    Duration(Dur),
    Percent(Percent),
    Rate(Rate),
    Number(f64),
}

impl Quantity {
    /// The value in the unit metrics are measured in: seconds, fraction, per second.
    pub fn value(self) -> f64 {
        match self {
            Quantity::Duration(d) => d.as_secs_f64(),
            Quantity::Percent(p) => p.fraction(),
            Quantity::Rate(r) => r.per_second(),
            Quantity::Number(n) => n,
        }
    }
}

impl FromStr for Quantity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.ends_with('%') {
            return t
                .parse()
                .map(Quantity::Percent)
                .map_err(|e: crate::units::UnitError| e.to_string());
        }
        if t.contains('/') {
            return t
                .parse()
                .map(Quantity::Rate)
                .map_err(|e: crate::units::UnitError| e.to_string());
        }
        let plain = t.replace(['_', ','], "");
        if let Ok(n) = plain.parse::<f64>()
            && n.is_finite()
        {
            return Ok(Quantity::Number(n));
        }
        t.parse().map(Quantity::Duration).map_err(|_| {
            format!(
                "\"{t}\" is not a number, a duration (800ms), a percentage (1%) or a rate (120/s)"
            )
        })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Duration(d) => d.fmt(f),
            Quantity::Percent(p) => p.fmt(f),
            Quantity::Rate(r) => r.fmt(f),
            Quantity::Number(n) => write!(f, "{n}"),
        }
    }
}

/// What a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A traffic metric.
    Metric(Metric),
    /// The value a probe read.
    Value,
}

/// `SUBJECT OP QUANTITY`, e.g. `p95 > 900ms`; the subject may be left out (`< 1`) where it is
/// a probe's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub subject: Subject,
    pub op: Op,
    pub rhs: Quantity,
}

impl Condition {
    pub fn holds(&self, lhs: f64) -> bool {
        self.op.holds(lhs, self.rhs.value())
    }
}

impl FromStr for Condition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("=", Op::Eq),
        ];
        let found = ops
            .iter()
            .filter_map(|(sym, op)| t.find(sym).map(|i| (i, *sym, *op)))
            .min_by_key(|(i, sym, _)| (*i, std::cmp::Reverse(sym.len())));
        let Some((i, sym, op)) = found else {
            return Err(format!(
                "invalid condition \"{t}\": write METRIC OP VALUE, like \"p95 > 900ms\" or \"error_rate > 5%\" (a probe's condition: \"< 1\")"
            ));
        };
        let lhs = t[..i].trim();
        let rhs: Quantity = t[i + sym.len()..]
            .parse()
            .map_err(|e| format!("invalid condition \"{t}\": {e}"))?;
        let subject = if lhs.is_empty() || lhs == "value" {
            Subject::Value
        } else if let Some(m) = Metric::from_name(lhs) {
            if !m.accepts(&rhs) {
                return Err(format!(
                    "invalid condition \"{t}\": {} compares with {}, not \"{rhs}\"",
                    m.name(),
                    m.example()
                ));
            }
            Subject::Metric(m)
        } else {
            let hint = crate::diag::did_you_mean(lhs, Metric::NAMES.iter().copied()).map_or_else(
                || format!("use value or one of {}", Metric::NAMES.join(", ")),
                |m| format!("did you mean \"{m}\"?"),
            );
            return Err(format!(
                "invalid condition \"{t}\": unknown metric \"{lhs}\", {hint}"
            ));
        };
        Ok(Condition { subject, op, rhs })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject {
            Subject::Metric(m) => write!(f, "{} {} {}", m.name(), self.op.symbol(), self.rhs),
            Subject::Value => write!(f, "value {} {}", self.op.symbol(), self.rhs),
        }
    }
}

/// Implements `Deserialize`/`Serialize`/`JsonSchema` through `FromStr`/`Display`, for small
/// types written as one string.
#[macro_export]
#[doc(hidden)]
macro_rules! string_serde {
    ($t:ty, $expect:literal) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                }
                d.deserialize_any(V)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl schemars::JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($t))
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": ["string", "number"], "description": $expect })
            }
        }
    };
}

string_serde!(
    Condition,
    "a condition like \"p95 > 900ms\", \"error_rate > 5%\" or \"< 1\""
);
string_serde!(
    Quantity,
    "a number, duration (800ms), percentage (1%) or rate (120/s)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_with_units() {
        let c: Condition = "p95 > 900ms".parse().expect("c");
        assert_eq!(c.subject, Subject::Metric(Metric::P95));
        assert!(c.holds(0.95));
        assert!(!c.holds(0.8));
        let c: Condition = "< 1".parse().expect("c");
        assert_eq!(c.subject, Subject::Value);
        assert!(c.holds(0.0));
        let c: Condition = "value > 2,000".parse().expect("c");
        assert!(c.holds(2001.0));
        let c: Condition = "error_rate >= 5%".parse().expect("c");
        assert_eq!(c.op, Op::Ge);
    }

    #[test]
    fn bad_conditions_explain_themselves() {
        assert!(
            "p95 > 5%"
                .parse::<Condition>()
                .expect_err("x")
                .contains("p95 compares with a duration")
        );
        assert!(
            "p9 > 1s"
                .parse::<Condition>()
                .expect_err("x")
                .contains("unknown metric \"p9\", did you mean")
        );
        assert!(
            "p95 900ms"
                .parse::<Condition>()
                .expect_err("x")
                .contains("write METRIC OP VALUE")
        );
    }
}
