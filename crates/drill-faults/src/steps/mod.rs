//! One-shot calls that are not faults: a playbook's setup and teardown steps, and a drill's
//! actions (run a command, call an endpoint, enqueue jobs).
//!
//! They have no revert record: a step is what the playbook asks to run, as it is. Like
//! every other call here, the allow-list is checked first, here and only here, so the engine
//! never checks a target itself.

use std::fmt;

use drill_spec::call::{ActionKind, Call, ValidAction, ValidStep};
use drill_spec::model::{Allow, Exec, HttpCall};

use crate::contract::FaultError;

/// What a step or an action did, as measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// A command exited 0; the last non-empty line it printed.
    Exec {
        command: String,
        last_line: Option<String>,
    },
    /// An HTTP call answered with a status the call accepts.
    Http {
        method: String,
        url: String,
        status: u16,
    },
    /// Jobs written into a queue, and the jobs pending in it after (counted as its job
    /// system counts them).
    Enqueued {
        jobs: u32,
        format: &'static str,
        key: String,
        pending: u64,
    },
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Done::Exec { command, last_line } => {
                write!(f, "{command} exited 0")?;
                if let Some(l) = last_line {
                    write!(f, ": {l}")?;
                }
                Ok(())
            }
            Done::Http {
                method,
                url,
                status,
            } => write!(f, "{method} {url} → {status}"),
            Done::Enqueued {
                jobs,
                format,
                key,
                pending,
            } => write!(
                f,
                "enqueued {jobs} {format} jobs into {key} ({pending} pending now)"
            ),
        }
    }
}

/// Runs a setup or teardown step (or a promotion's route switch). URLs must be absolute.
pub async fn run_step(s: &ValidStep, allow: &Allow) -> Result<Done, FaultError> {
    run_call(&s.call, allow).await
}

async fn run_call(c: &Call, allow: &Allow) -> Result<Done, FaultError> {
    match c {
        Call::Exec(e) => run_exec(e, allow).await,
        Call::Http(h) => run_http(h, allow).await,
    }
}

async fn run_exec(e: &Exec, allow: &Allow) -> Result<Done, FaultError> {
    let e = crate::exec::resolve(e, allow)?;
    let out = crate::exec::run(&e).await?;
    Ok(Done::Exec {
        command: crate::exec::shown(&e),
        last_line: out
            .stdout
            .lines()
            .last()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
    })
}

async fn run_http(h: &HttpCall, allow: &Allow) -> Result<Done, FaultError> {
    let status = crate::http::call(h, allow).await?;
    Ok(Done::Http {
        method: h.method.clone(),
        url: drill_spec::redact::url(&h.url),
        status,
    })
}

/// Runs a drill's action: an enqueue, a command or a call.
pub async fn run_action(a: &ValidAction, allow: &Allow) -> Result<Done, FaultError> {
    match &a.kind {
        ActionKind::Enqueue(e) => {
            let pending = crate::redis::enqueue(e, allow).await?;
            Ok(Done::Enqueued {
                jobs: e.jobs,
                format: e.format.name(),
                key: e.queue_ref().key(),
                pending,
            })
        }
        ActionKind::Exec(e) => run_exec(e, allow).await,
        ActionKind::Http(h) => run_http(h, allow).await,
    }
}
