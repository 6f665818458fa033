//! Where a run's lines go: each through the run's one redaction rule, then to the caller's
//! [`Log`] (a terminal, a progress bar, a test's buffer) as the text it always was, and to
//! `tracing` as one event — inside the run's span, so a subscriber (the daemon's logs, JSON
//! or text) sees `run` and `playbook` on it. The lines that matter to whoever reads logs
//! later (a fault applied and reverted, a check's verdict, a guard's trip, an action, the
//! measured hold) carry their own fields too: `drill`, `fault`, `check`, `verdict`,
//! `applied_ms`, …; the rest are events with the line as their message, at the level its
//! words say ([`emit`]).

use std::sync::Arc;

use drill_spec::redact::Redactor;

use crate::Log;

/// A line as a `tracing` event, at the level its words say: `warning…` is WARN; `error…`,
/// `cannot …` and `STILL CHANGED` are ERROR; the rest INFO.
pub fn emit(line: &str) {
    if line.starts_with("warning") || line.contains(": warning:") {
        tracing::warn!("{line}");
    } else if line.starts_with("error")
        || line.contains("cannot ")
        || line.contains("STILL CHANGED")
    {
        tracing::error!("{line}");
    } else {
        tracing::info!("{line}");
    }
}

/// A run's lines (see the module's doc).
#[derive(Clone)]
pub(crate) struct Lines {
    term: Log,
    redact: Redactor,
}

impl Lines {
    pub fn new(term: Log, redact: Redactor) -> Self {
        Lines { term, redact }
    }

    /// A line: to the terminal, and as an event at the level its words say.
    pub fn line(&self, text: &str) {
        self.with(text, emit);
    }

    /// A line whose event `event` emits itself, with its fields; `event` gets the line,
    /// redacted, for its message: the same text the terminal shows.
    pub fn with(&self, text: &str, event: impl FnOnce(&str)) {
        let shown = self.redact.apply(text);
        event(&shown);
        (self.term)(&shown);
    }

    /// A field's value as the run may print it: names come from the playbook, which may have
    /// interpolated them from the environment, so they go through the same redaction.
    pub fn shown(&self, value: &str) -> String {
        self.redact.apply(value).into_owned()
    }

    /// The same, as a [`Log`] for the code that takes one.
    pub fn log(&self) -> Log {
        let lines = self.clone();
        Arc::new(move |text: &str| lines.line(text))
    }
}
