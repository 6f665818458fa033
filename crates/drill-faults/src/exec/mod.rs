//! Exec hooks: a command as the fault, another as its revert (the seed's ProxySQL failover
//! script, `php artisan horizon:pause` / `horizon:continue`). The revert command must be safe
//! to run twice; drill runs it on every revert attempt.

use std::process::Stdio;

use drill_spec::model::{Allow, Exec, ExecFault};
use serde::{Deserialize, Serialize};

use crate::contract::{FaultError, Prepared, Reverted, allowed};

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

pub(crate) fn prepare(e: &ExecFault, allow: &Allow) -> Result<Prepared<Record>, FaultError> {
    let inject = resolve(&e.inject, allow)?;
    let revert = e.revert.as_ref().map(|r| resolve(r, allow)).transpose()?;
    let changes = vec![format!("run {}", shown(&inject))];
    Ok(Prepared {
        record: Record { inject, revert },
        changes,
    })
}

/// The machine drill runs on, as [`drill_spec::program`] asks it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Real;

impl drill_spec::program::Host for Real {
    fn executable(&self, path: &str) -> Option<String> {
        use std::os::unix::fs::PermissionsExt as _;
        let canonical = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&canonical).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .then(|| canonical.display().to_string())
    }
    fn cwd(&self) -> String {
        std::env::current_dir().map_or_else(|_| "/".into(), |d| d.display().to_string())
    }
    fn path_var(&self) -> String {
        std::env::var("PATH").unwrap_or_default()
    }
}

/// Finds the file a command will run (its `PATH`, its `dir`), checks that file against the
/// allow-list and the policy, and returns the command as it will run: the program by its
/// absolute path, the directory absolute. Run only what this returns: the check and the run
/// then see the same file, whatever `PATH` or `dir` say, and a revert record holds exactly
/// what `drill recover` will run.
pub fn resolve(e: &Exec, allow: &Allow) -> Result<Exec, FaultError> {
    use drill_spec::program::Host as _;
    allowed(drill_spec::allow::exec(allow, &e.command))?;
    if let Some(env) = &allow.envelope
        && let Some(k) = e.env.keys().find(|k| {
            drill_spec::program::dangerous_env(k)
                && !env.exec_env.iter().any(|a| a.eq_ignore_ascii_case(k))
        })
    {
        return Err(FaultError::NotAllowed(
            format!("{k} in the environment of {}", e.command.join(" ")),
            "the daemon's policy does not let a command set it (allow.exec_env)".into(),
        ));
    }
    let host = Real;
    let program = e.command.first().map_or("", String::as_str);
    let found = drill_spec::program::resolve(
        program,
        e.dir.as_deref(),
        e.env.get("PATH").map(String::as_str),
        &host,
    )
    .map_err(|why| FaultError::backend("exec", format!("cannot run {program}: {why}")))?;
    allowed(drill_spec::allow::exec_resolved(
        allow, &e.command, &found, &host,
    ))?;
    let mut out = e.clone();
    if let Some(p) = out.command.first_mut() {
        p.clone_from(&found.path);
    }
    out.dir = Some(drill_spec::program::absolute(
        &host.cwd(),
        e.dir.as_deref().unwrap_or("."),
    ));
    Ok(out)
}

/// A command as it may be printed: its arguments with URL passwords masked (an environment
/// is never printed).
pub fn shown(e: &Exec) -> String {
    drill_spec::redact::text(&e.command.join(" ")).into_owned()
}

/// Runs a command without a shell, with its environment, directory and timeout. Give it
/// what [`resolve`] returned (a revert record holds that already).
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
        .map_err(|err| FaultError::context("exec", format!("cannot run {program}"), err))?;
    let cmdline = shown(e);
    let out = match tokio::time::timeout(e.timeout.0, child.wait_with_output()).await {
        Ok(r) => r.map_err(|err| FaultError::context("exec", program.to_string(), err))?,
        Err(_) => {
            return Err(FaultError::backend(
                "exec",
                format!("{cmdline} did not finish within {}", e.timeout),
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
                "{cmdline} exited with {}: {}",
                output.status,
                drill_spec::redact::text(&tail)
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
            shown(&r.inject)
        ))),
        Some(c) => {
            run(c).await?;
            Ok(Reverted::Restored(vec![format!("ran {}", shown(c))]))
        }
    }
}
