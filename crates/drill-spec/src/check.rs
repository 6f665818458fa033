//! A check, typed: the one rule it holds the drill to.
//!
//! A playbook writes a check with one of `slo`, `count`, `delta`, `probe` (and, for a probe,
//! `until`, `within`, `every` beside it). Validation reports a check that sets none or
//! several, a probe without `until` or `within`, and `until`/`within` on a check that is not a
//! probe, each with its location; [`ValidCheck::try_from`] then makes the typed check, whose
//! [`Rule`] holds only the fields its kind uses. The engine judges by one `match` on it.

use crate::cond::Condition;
use crate::model::{Check, CountCheck, DeltaCheck, Limits, Phase, Probe};
use crate::units::Dur;

/// A check that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCheck {
    pub name: String,
    /// The phase the traffic is measured over; `None` is the default of its kind (`fault`
    /// for traffic checks, the revert onward for probes).
    pub phase: Option<Phase>,
    pub rule: Rule,
}

/// What a check holds the drill to.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// SLO limits on the traffic in the phase.
    Slo(Limits),
    /// At most `max` failed requests of a class in the phase.
    Count(CountCheck),
    /// A metric's rise over the baseline phase.
    Delta(DeltaCheck),
    /// A reading that must satisfy `until` within `within`, read every `every`.
    Probe(ProbeRule),
}

/// A probe check's reading and its recovery window.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRule {
    pub probe: Probe,
    pub until: Condition,
    pub within: Dur,
    pub every: Dur,
}

impl ValidCheck {
    /// The probe, for a probe check.
    pub fn probe(&self) -> Option<&ProbeRule> {
        match &self.rule {
            Rule::Probe(p) => Some(p),
            Rule::Slo(_) | Rule::Count(_) | Rule::Delta(_) => None,
        }
    }
}

/// Why a check is not one rule; validation reports each case with its location and a hint,
/// so a validated check never yields one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("check \"{0}\" must set exactly one of slo, count, delta, probe")]
    OneOf(String),
    #[error("probe check \"{0}\" needs `until` and `within`")]
    ProbeIncomplete(String),
}

impl TryFrom<Check> for ValidCheck {
    type Error = CheckError;

    fn try_from(c: Check) -> Result<Self, CheckError> {
        let rule = match (c.slo, c.count, c.delta, c.probe) {
            (Some(l), None, None, None) => Rule::Slo(l),
            (None, Some(k), None, None) => Rule::Count(k),
            (None, None, Some(d), None) => Rule::Delta(d),
            (None, None, None, Some(probe)) => match (c.until, c.within) {
                (Some(until), Some(within)) => Rule::Probe(ProbeRule {
                    probe,
                    until,
                    within,
                    every: c.every,
                }),
                _ => return Err(CheckError::ProbeIncomplete(c.name)),
            },
            _ => return Err(CheckError::OneOf(c.name)),
        };
        Ok(ValidCheck {
            name: c.name,
            phase: c.phase,
            rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: serde_json::Value) -> Check {
        serde_json::from_value(v).expect("a raw check")
    }

    #[test]
    fn a_check_becomes_the_one_rule_it_sets() {
        let c = ValidCheck::try_from(check(serde_json::json!({
            "name": "backlog drains",
            "probe": {"redis": {"url": "redis://127.0.0.1/0", "llen": "queues:default"}},
            "until": "< 1",
            "within": "5m",
        })))
        .expect("valid");
        let Rule::Probe(p) = &c.rule else {
            panic!("a probe rule: {c:?}")
        };
        assert_eq!(p.within, Dur::from_secs(300));
        assert_eq!(p.every, Dur::from_secs(1));
        assert!(p.until.holds(0.0) && !p.until.holds(1.0));
        let c = ValidCheck::try_from(check(serde_json::json!({
            "name": "errors", "count": {"of": "5xx", "max": 2},
        })))
        .expect("valid");
        assert!(matches!(c.rule, Rule::Count(CountCheck { max: 2, .. })));
        assert!(c.probe().is_none());
    }

    #[test]
    fn none_several_or_an_incomplete_probe_is_refused() {
        let two = check(serde_json::json!({
            "name": "x", "count": {"of": "5xx", "max": 2}, "slo": {"p95": "800ms"},
        }));
        assert_eq!(
            ValidCheck::try_from(two),
            Err(CheckError::OneOf("x".into()))
        );
        let none = check(serde_json::json!({"name": "y"}));
        assert_eq!(
            ValidCheck::try_from(none),
            Err(CheckError::OneOf("y".into()))
        );
        let no_within = check(serde_json::json!({
            "name": "z",
            "probe": {"redis": {"url": "redis://127.0.0.1/0", "dbsize": true}},
            "until": "< 1",
        }));
        assert_eq!(
            ValidCheck::try_from(no_within),
            Err(CheckError::ProbeIncomplete("z".into()))
        );
    }
}
