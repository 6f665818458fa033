//! Steps and actions, typed: the one call each makes.
//!
//! A playbook writes a step as `{name, exec: …}` or `{name, http: …}` and an action with one
//! of `enqueue`, `exec`, `http` beside its moment — optional fields, which is what people read
//! and what the schema describes. Validation reports a step or an action that sets none or
//! several, with its location; [`ValidStep::try_from`] and [`ValidAction::try_from`] then make
//! the typed value, whose [`Call`] or [`ActionKind`] holds the one that is set. The engine and
//! the backends match on it and never look at the optional fields again.

use serde::{Deserialize, Serialize};

use crate::model::{Action, Enqueue, Exec, HttpCall, Moment, Step};
use crate::units::Dur;

/// What a step runs: a command or an HTTP call.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Exec(Exec),
    Http(HttpCall),
}

/// A setup or teardown step (or a promotion's route switch) that passed validation. Its serde
/// form is the playbook's [`Step`], so a revert record that holds one reads as it always has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "Step", try_from = "Step")]
pub struct ValidStep {
    pub name: Option<String>,
    pub call: Call,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    Enqueue(Enqueue),
    Exec(Exec),
    Http(HttpCall),
}

/// A drill's action that passed validation: when it runs, and the one thing it does.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidAction {
    pub name: Option<String>,
    pub at: Moment,
    pub delay: Option<Dur>,
    pub kind: ActionKind,
}

impl ValidAction {
    /// The key a playbook writes the action's call under.
    pub fn key(&self) -> &'static str {
        match self.kind {
            ActionKind::Enqueue(_) => "enqueue",
            ActionKind::Exec(_) => "exec",
            ActionKind::Http(_) => "http",
        }
    }
}

/// A step or an action that sets none or several of its one-of keys. Validation reports
/// it with its location and a hint, so a validated playbook never yields one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must set exactly one of {keys}, not {set}")]
pub struct OneOf {
    pub what: &'static str,
    pub keys: &'static str,
    /// The keys that were set, or `none`.
    pub set: String,
}

fn one_of<T>(what: &'static str, keys: &'static str, set: Vec<(&str, T)>) -> Result<T, OneOf> {
    let names: Vec<&str> = set.iter().map(|(n, _)| *n).collect();
    let mut set = set.into_iter();
    match (set.next(), set.next()) {
        (Some((_, one)), None) => Ok(one),
        _ => Err(OneOf {
            what,
            keys,
            set: if names.is_empty() {
                "none".into()
            } else {
                names.join(" and ")
            },
        }),
    }
}

impl TryFrom<Step> for ValidStep {
    type Error = OneOf;

    fn try_from(s: Step) -> Result<Self, OneOf> {
        let mut set = Vec::new();
        if let Some(e) = s.exec {
            set.push(("exec", Call::Exec(e)));
        }
        if let Some(h) = s.http {
            set.push(("http", Call::Http(h)));
        }
        Ok(ValidStep {
            name: s.name,
            call: one_of("a step", "exec, http", set)?,
        })
    }
}

impl From<ValidStep> for Step {
    fn from(s: ValidStep) -> Step {
        let (exec, http) = match s.call {
            Call::Exec(e) => (Some(e), None),
            Call::Http(h) => (None, Some(h)),
        };
        Step {
            name: s.name,
            exec,
            http,
        }
    }
}

impl TryFrom<Action> for ValidAction {
    type Error = OneOf;

    fn try_from(a: Action) -> Result<Self, OneOf> {
        let mut set = Vec::new();
        if let Some(e) = a.enqueue {
            set.push(("enqueue", ActionKind::Enqueue(e)));
        }
        if let Some(e) = a.exec {
            set.push(("exec", ActionKind::Exec(e)));
        }
        if let Some(h) = a.http {
            set.push(("http", ActionKind::Http(h)));
        }
        Ok(ValidAction {
            name: a.name,
            at: a.at,
            delay: a.delay,
            kind: one_of("an action", "enqueue, exec, http", set)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec() -> Exec {
        Exec {
            command: vec!["true".into()],
            env: Default::default(),
            dir: None,
            timeout: Dur::from_secs(1),
        }
    }

    #[test]
    fn a_step_is_its_one_call_and_serializes_as_written() {
        let raw = Step {
            name: Some("warm".into()),
            exec: Some(exec()),
            http: None,
        };
        let v = ValidStep::try_from(raw.clone()).expect("one call");
        assert_eq!(v.call, Call::Exec(exec()));
        assert_eq!(
            serde_json::to_value(&v).expect("json"),
            serde_json::to_value(&raw).expect("json")
        );
    }

    #[test]
    fn a_step_with_none_or_two_calls_is_refused_naming_them() {
        let none = Step {
            name: None,
            exec: None,
            http: None,
        };
        let e = ValidStep::try_from(none).expect_err("none");
        assert_eq!(e.set, "none");
        let a = Action {
            name: None,
            at: Moment::Inject,
            delay: None,
            enqueue: None,
            exec: Some(exec()),
            http: Some(HttpCall {
                url: "http://127.0.0.1/".into(),
                method: "POST".into(),
                headers: Default::default(),
                body: None,
                expect_status: Default::default(),
                timeout: Dur::from_secs(1),
            }),
        };
        let e = ValidAction::try_from(a).expect_err("two");
        assert_eq!(
            e.to_string(),
            "an action must set exactly one of enqueue, exec, http, not exec and http"
        );
    }
}
