//! One-shot calls that are not faults: a playbook's setup and teardown steps, and a drill's
//! actions (run a command, call an endpoint, enqueue jobs).
//!
//! They have no revert record: a step is what the playbook asks to run, as it is. Like
//! every other call here, the allow-list is checked first, here and only here, so the engine
//! never checks a target itself.

use std::fmt;

use drill_spec::model::{Action, Allow, Step};

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
    /// A step with nothing in it (validation refuses those; kept total for callers).
    Nothing,
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
            Done::Nothing => f.write_str("nothing to do"),
        }
    }
}

/// Runs a setup or teardown step (or a promotion's route switch). URLs must be absolute.
pub async fn run_step(s: &Step, allow: &Allow) -> Result<Done, FaultError> {
    if let Some(e) = &s.exec {
        let e = crate::exec::resolve(e, allow)?;
        let out = crate::exec::run(&e).await?;
        return Ok(Done::Exec {
            command: crate::exec::shown(&e),
            last_line: out
                .stdout
                .lines()
                .last()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        });
    }
    if let Some(h) = &s.http {
        let status = crate::http::call(h, allow).await?;
        return Ok(Done::Http {
            method: h.method.clone(),
            url: drill_spec::redact::url(&h.url),
            status,
        });
    }
    Ok(Done::Nothing)
}

/// Runs a drill's action: an enqueue, a command or a call.
pub async fn run_action(a: &Action, allow: &Allow) -> Result<Done, FaultError> {
    if let Some(e) = &a.enqueue {
        let pending = crate::redis::enqueue(e, allow).await?;
        return Ok(Done::Enqueued {
            jobs: e.jobs,
            format: e.format.name(),
            key: e.queue_ref().key(),
            pending,
        });
    }
    run_step(
        &Step {
            name: None,
            exec: a.exec.clone(),
            http: a.http.clone(),
        },
        allow,
    )
    .await
}
