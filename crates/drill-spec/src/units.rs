//! The units people write in playbooks: durations (`800ms`, `90s`, `1h30m`), rates
//! (`120/s`, `7200/m`) and percentages (`1%`, `0.5%`). Each parses into a type that cannot
//! hold an invalid value.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration, written `800ms`, `90s`, `2m`, `1h30m`, `1.5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

/// An arrival rate in requests (or events) per second, written `120/s`, `7200/m`, `10/h`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Rate(f64);

/// A percentage, written `1%` or `0.5%`; kept as a fraction (1% is 0.01).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

impl Dur {
    pub const ZERO: Dur = Dur(Duration::ZERO);

    pub fn from_secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
    pub fn from_millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
    /// Multiplies by a time-scale factor (for rehearsals), rounding to the microsecond.
    pub fn scaled(self, factor: f64) -> Self {
        let us = (self.0.as_secs_f64() * factor * 1e6).round();
        Dur(Duration::from_micros(if us.is_finite() && us > 0.0 {
            us as u64
        } else {
            0
        }))
    }
}

impl std::ops::Add for Dur {
    type Output = Dur;
    fn add(self, o: Dur) -> Dur {
        Dur(self.0.saturating_add(o.0))
    }
}

impl std::ops::Sub for Dur {
    type Output = Dur;
    fn sub(self, o: Dur) -> Dur {
        Dur(self.0.saturating_sub(o.0))
    }
}

impl Rate {
    pub fn per_sec(r: f64) -> Self {
        Rate(r)
    }
    pub fn per_second(self) -> f64 {
        self.0
    }
}

impl Percent {
    pub fn from_fraction(f: f64) -> Self {
        Percent(f)
    }
    pub fn fraction(self) -> f64 {
        self.0
    }
}

/// Why a unit did not parse; the message says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

impl FromStr for Dur {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, UnitError> {
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let t = compact.as_str();
        let bad = || {
            UnitError(format!(
                "invalid duration \"{s}\": write a number and a unit, like 800ms, 90s, 2m or 1h30m"
            ))
        };
        if t.is_empty() {
            return Err(bad());
        }
        if t.starts_with('-') {
            return Err(UnitError(format!(
                "invalid duration \"{s}\": a duration cannot be negative"
            )));
        }
        if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(UnitError(format!(
                "duration \"{s}\" has no unit: write {t}s for seconds or {t}ms for milliseconds"
            )));
        }
        let mut total = 0f64;
        let mut rest = t;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            if num_end == 0 {
                return Err(bad());
            }
            let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
            rest = &rest[num_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_end];
            rest = &rest[unit_end..];
            let secs = match unit {
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" | "min" => 60.0,
                "h" => 3600.0,
                "d" => 86400.0,
                _ => {
                    return Err(UnitError(format!(
                        "invalid duration \"{s}\": unknown unit \"{unit}\", use ms, s, m or h"
                    )));
                }
            };
            total += n * secs;
        }
        if !total.is_finite() || total > 366.0 * 86400.0 {
            return Err(UnitError(format!(
                "invalid duration \"{s}\": longer than a year"
            )));
        }
        Ok(Dur(Duration::from_micros((total * 1e6).round() as u64)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_micros();
        if us == 0 {
            return f.write_str("0s");
        }
        if !us.is_multiple_of(1000) {
            return write!(f, "{}µs", us);
        }
        let ms = us / 1000;
        if ms < 1000 {
            return write!(f, "{ms}ms");
        }
        if !ms.is_multiple_of(1000) {
            let secs = ms as f64 / 1000.0;
            if ms < 60_000 {
                return write!(f, "{secs}s");
            }
        }
        let total_s = ms / 1000;
        let (h, m, s) = (total_s / 3600, (total_s % 3600) / 60, total_s % 60);
        let frac = ms % 1000;
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        if s > 0 || frac > 0 {
            if frac > 0 {
                out.push_str(&format!("{}s", s as f64 + frac as f64 / 1000.0));
            } else {
                out.push_str(&format!("{s}s"));
            }
        }
        f.write_str(&out)
    }
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, UnitError> {
        let t = s.trim();
        let Some((n, unit)) = t.split_once('/') else {
            return Err(UnitError(format!(
                "invalid rate \"{s}\": write a count per unit of time, like 120/s or 7200/m"
            )));
        };
        let n: f64 = n.trim().replace('_', "").parse().map_err(|_| {
            UnitError(format!(
                "invalid rate \"{s}\": \"{}\" is not a number",
                n.trim()
            ))
        })?;
        if n < 0.0 || !n.is_finite() {
            return Err(UnitError(format!(
                "invalid rate \"{s}\": a rate cannot be negative"
            )));
        }
        let per = match unit.trim() {
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(UnitError(format!(
                    "invalid rate \"{s}\": unknown unit \"{other}\", use /s, /m or /h"
                )));
            }
        };
        Ok(Rate(n / per))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if (r - r.round()).abs() < 1e-9 {
            write!(f, "{}/s", r.round() as i64)
        } else if ((r * 60.0) - (r * 60.0).round()).abs() < 1e-6 {
            write!(f, "{}/m", (r * 60.0).round() as i64)
        } else {
            write!(f, "{r:.3}/s")
        }
    }
}

impl FromStr for Percent {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, UnitError> {
        let t = s.trim();
        let Some(n) = t.strip_suffix('%') else {
            return Err(UnitError(format!(
                "invalid percentage \"{s}\": write it with a % sign, like 1% or 0.5%"
            )));
        };
        let v: f64 = n.trim().parse().map_err(|_| {
            UnitError(format!(
                "invalid percentage \"{s}\": \"{n}\" is not a number"
            ))
        })?;
        if !(0.0..=100.0).contains(&v) {
            return Err(UnitError(format!(
                "invalid percentage \"{s}\": must be between 0% and 100%"
            )));
        }
        Ok(Percent(v / 100.0))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0 * 100.0;
        if (p - p.round()).abs() < 1e-9 {
            write!(f, "{}%", p.round() as i64)
        } else {
            write!(f, "{}%", (p * 1000.0).round() / 1000.0)
        }
    }
}

/// Deserializes a unit from its string form; a bare number gets the unit's own hint.
struct UnitVisitor<T>(&'static str, std::marker::PhantomData<T>);

impl<T: FromStr<Err = UnitError>> Visitor<'_> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(|e: UnitError| E::custom(e.0))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
}

/// HTTP status codes that count as success, written as one code (`200`) or a list
/// (`[200, 204]`); the same shape in steps, faults and probes. Empty means any 2xx.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Statuses(pub Vec<u16>);

impl Statuses {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `status` counts as success: listed, or any 2xx when none is listed.
    pub fn accepts(&self, status: u16) -> bool {
        if self.0.is_empty() {
            (200..300).contains(&status)
        } else {
            self.0.contains(&status)
        }
    }
}

impl fmt::Display for Statuses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("2xx"),
            [one] => write!(f, "{one}"),
            many => {
                let all: Vec<String> = many.iter().map(u16::to_string).collect();
                write!(f, "one of {}", all.join(", "))
            }
        }
    }
}

struct StatusesVisitor;

const STATUSES: &str = "a status code or a list of them, like 200 or [200, 204]";

fn status<E: de::Error>(v: u64) -> Result<u16, E> {
    u16::try_from(v)
        .ok()
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| E::custom(format!("{v} is not an HTTP status code (100 to 599)")))
}

impl<'de> Visitor<'de> for StatusesVisitor {
    type Value = Statuses;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(STATUSES)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Statuses, E> {
        Ok(Statuses(vec![status(v)?]))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Statuses, E> {
        let v =
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is not an HTTP status code")))?;
        self.visit_u64(v)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Statuses, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<u64>()? {
            out.push(status(v)?);
        }
        Ok(Statuses(out))
    }
}

impl<'de> Deserialize<'de> for Statuses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StatusesVisitor)
    }
}

impl Serialize for Statuses {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl JsonSchema for Statuses {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Statuses")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": STATUSES,
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}},
            ],
            "examples": [200, [200, 204]],
        })
    }
}

macro_rules! unit_serde {
    ($t:ty, $expect:literal, $pattern:literal, $example:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(UnitVisitor::<$t>($expect, std::marker::PhantomData))
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl JsonSchema for $t {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($t))
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": $expect,
                    "pattern": concat!("(", $pattern, r")|^\{\{.*\}\}$"),
                    "examples": [$example],
                })
            }
        }
    };
}

unit_serde!(
    Dur,
    "a duration like 800ms, 90s, 2m or 1h30m",
    r"^([0-9]+(\.[0-9]+)?(us|µs|ms|s|m|min|h|d))+$",
    "90s"
);
unit_serde!(
    Rate,
    "a rate like 120/s or 7200/m",
    r"^[0-9_]+(\.[0-9]+)?/(s|sec|m|min|h)$",
    "120/s"
);
unit_serde!(
    Percent,
    "a percentage like 1% or 0.5%",
    r"^[0-9]+(\.[0-9]+)?%$",
    "1%"
);

#[cfg(test)]
mod tests {

    #[test]
    fn a_status_is_one_code_or_a_list_in_every_place() {
        let one: Statuses = serde_json::from_str("200").expect("one");
        let many: Statuses = serde_json::from_str("[200, 204]").expect("many");
        assert_eq!(one, Statuses(vec![200]));
        assert!(many.accepts(204) && !many.accepts(201));
        assert!(Statuses::default().accepts(201) && !Statuses::default().accepts(500));
        assert_eq!(many.to_string(), "one of 200, 204");
        assert!(serde_json::from_str::<Statuses>("99").is_err());
    }

    use super::*;

    #[test]
    fn durations_people_write_parse() {
        for (s, ms) in [
            ("800ms", 800),
            ("90s", 90_000),
            ("2m", 120_000),
            ("1h30m", 5_400_000),
            ("1.5s", 1500),
            ("2m30s", 150_000),
        ] {
            assert_eq!(
                s.parse::<Dur>().expect(s).0,
                Duration::from_millis(ms),
                "{s}"
            );
        }
    }

    #[test]
    fn durations_print_back_as_written() {
        for s in ["800ms", "90s", "2m", "1h30m", "2m30s", "1.5s", "0s"] {
            let d: Dur = s.parse().expect(s);
            let printed = d.to_string();
            let again: Dur = printed.parse().expect(&printed);
            assert_eq!(d, again, "{s} -> {printed}");
        }
        assert_eq!("150s".parse::<Dur>().expect("150s").to_string(), "2m30s");
    }

    #[test]
    fn bad_durations_say_how_to_fix_them() {
        let e = "90".parse::<Dur>().expect_err("no unit");
        assert_eq!(
            e.0,
            "duration \"90\" has no unit: write 90s for seconds or 90ms for milliseconds"
        );
        assert!(
            "-5s"
                .parse::<Dur>()
                .expect_err("neg")
                .0
                .contains("negative")
        );
        assert!("5 parsecs".parse::<Dur>().is_err());
        assert!(
            "5x".parse::<Dur>()
                .expect_err("x")
                .0
                .contains("unknown unit \"x\"")
        );
    }

    #[test]
    fn rates_and_percentages_parse() {
        assert_eq!("120/s".parse::<Rate>().expect("r").per_second(), 120.0);
        assert_eq!("7200/m".parse::<Rate>().expect("r").per_second(), 120.0);
        assert_eq!("0.5%".parse::<Percent>().expect("p").fraction(), 0.005);
        assert_eq!("1%".parse::<Percent>().expect("p").to_string(), "1%");
        assert!("-3/s".parse::<Rate>().is_err());
        assert!("120".parse::<Rate>().is_err());
        assert!("150%".parse::<Percent>().is_err());
        assert!(
            "1".parse::<Percent>()
                .expect_err("bare")
                .0
                .contains("% sign")
        );
    }
}
