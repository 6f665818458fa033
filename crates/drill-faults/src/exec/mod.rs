//! Exec hooks: a command as the fault, another as its revert (the seed's ProxySQL failover
//! script, `php artisan horizon:pause` / `horizon:continue`). The revert command must be safe
//! to run twice; drill runs it on every revert attempt.

use std::process::Stdio;

use drill_spec::model::{Allow, Exec, Fault};
use serde::{Deserialize, Serialize};

use crate::{FaultError, Prepared, RevertRecord, Reverted, allowed};

/// The commands, as the playbook gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub inject: Exec,
    pub revert: Option<Exec>,
}

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub(crate) fn prepare(fault: &Fault, allow: &Allow) -> Result<Prepared, FaultError> {
    let Some(e) = &fault.exec else {
        return Err(FaultError::Invalid {
            fault: fault.name.clone(),
            message: "an exec fault needs `exec`".into(),
        });
    };
    allowed(drill_spec::allow::exec(allow, &e.inject.command))?;
    if let Some(r) = &e.revert {
        allowed(drill_spec::allow::exec(allow, &r.command))?;
    }
    let changes = vec![format!("run {}", e.inject.command.join(" "))];
    Ok(Prepared {
        record: RevertRecord::Exec(Record {
            inject: e.inject.clone(),
            revert: e.revert.clone(),
        }),
        changes,
    })
}

/// Runs a command without a shell, with its environment, directory and timeout.
pub async fn run(e: &Exec) -> Result<Output, FaultError> {
    let Some((program, args)) = e.command.split_first() else {
        return Err(FaultError::backend("exec", "empty command"));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(&e.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(d) = &e.dir {
        cmd.current_dir(d);
    }
    let child = cmd
        .spawn()
        .map_err(|err| FaultError::backend("exec", format!("cannot run {program}: {err}")))?;
    let out = match tokio::time::timeout(e.timeout.0, child.wait_with_output()).await {
        Ok(r) => r.map_err(|err| FaultError::backend("exec", format!("{program}: {err}")))?,
        Err(_) => {
            return Err(FaultError::backend(
                "exec",
                format!(
                    "{} did not finish within {}",
                    e.command.join(" "),
                    e.timeout
                ),
            ));
        }
    };
    let output = Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !out.status.success() {
        let tail: String = output
            .stderr
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" / ");
        return Err(FaultError::backend(
            "exec",
            format!(
                "{} exited with {}: {tail}",
                e.command.join(" "),
                output.status
            ),
        ));
    }
    Ok(output)
}

pub(crate) async fn apply(r: &Record) -> Result<(), FaultError> {
    run(&r.inject).await.map(|_| ())
}

pub(crate) async fn revert(r: &Record) -> Result<Reverted, FaultError> {
    match &r.revert {
        None => Ok(Reverted::Permanent(format!(
            "ran {} with no revert command",
            r.inject.command.join(" ")
        ))),
        Some(c) => {
            run(c).await?;
            Ok(Reverted::Restored(vec![format!(
                "ran {}",
                c.command.join(" ")
            )]))
        }
    }
}
