//! Local processes, found by pid file or by name: `pause` (SIGSTOP, undone by SIGCONT),
//! `stop` (SIGTERM, undone by the target's `restart` command) and `kill` (SIGKILL, likewise).
//! A process that was already stopped (state T) before the drill stays stopped after it.
//! A process found by pid file counts as restarted when its pid file names a live process of
//! the same program; one found by name, when any process has that name.

use drill_spec::fault::ProcessAction;
use drill_spec::model::{Allow, Exec, ProcessTarget};
use drill_spec::target::ProcessBy;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::contract::{FaultError, Prepared, Reverted, allowed};

/// What a process fault does: the validated action itself (one enum, its serde form the
/// record's).
pub use drill_spec::fault::ProcessAction as Action;

/// The process and its state before the fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub action: Action,
    pub pid: i32,
    pub name: String,
    /// The process was already stopped (SIGSTOP) before the drill.
    pub was_stopped: bool,
    pub restart: Option<Exec>,
    /// Where the target was found: a restarted process writes its new pid there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
}

impl Record {
    pub(crate) fn manual_restore(&self) -> String {
        match (self.action, &self.restart) {
            (Action::Pause, _) if !self.was_stopped => format!("kill -CONT {}", self.pid),
            (Action::Pause, _) => "nothing: it was stopped before the drill".into(),
            (_, Some(r)) => r.command.join(" "),
            (_, None) => format!("start {} again", self.name),
        }
    }
}

/// The state letter of a process (`R`, `S`, `T`, …), or `None` when it is gone.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: the state follows the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The oldest live process with this name.
fn by_name(name: &str) -> Option<i32> {
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &i32| comm(*pid).as_deref() == Some(name) && alive(*pid))
        .collect();
    pids.sort_unstable();
    pids.first().copied()
}

fn alive(pid: i32) -> bool {
    !matches!(state(pid), Some('Z' | 'X') | None)
}

/// The live process a pid file names, with its program name.
fn from_pid_file(f: &str) -> Result<(i32, String), FaultError> {
    let text = std::fs::read_to_string(f)
        .map_err(|e| FaultError::NotFound(format!("pid file {f}: {e}")))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| FaultError::NotFound(format!("pid file {f} holds no pid")))?;
    match comm(pid) {
        Some(name) if alive(pid) => Ok((pid, name)),
        _ => Err(FaultError::NotFound(format!(
            "process {pid} from {f} is not running"
        ))),
    }
}

/// Finds the target's pid: from its pid file, or the oldest process with that name.
pub fn find(t: &ProcessTarget) -> Result<(i32, String), FaultError> {
    let name = match t.by() {
        Some(ProcessBy::PidFile(f)) => return from_pid_file(f),
        Some(ProcessBy::Name(n)) => n,
        None => {
            return Err(FaultError::NotFound(
                "a process target needs exactly one of name, pid_file".into(),
            ));
        }
    };
    by_name(name)
        .map(|p| (p, name.to_owned()))
        .ok_or_else(|| FaultError::NotFound(format!("no process named {name}")))
}

pub(crate) fn prepare(
    t: &ProcessTarget,
    action: ProcessAction,
    allow: &Allow,
) -> Result<Prepared<Record>, FaultError> {
    allowed(drill_spec::allow::process(allow, t))?;
    let restart = t
        .restart
        .as_ref()
        .map(|r| crate::exec::resolve(r, allow))
        .transpose()?;
    let action = match action {
        ProcessAction::Pause => Action::Pause,
        ProcessAction::Stop => Action::Stop,
        ProcessAction::Kill => Action::Kill,
    };
    let (pid, name) = find(t)?;
    let was_stopped = state(pid) == Some('T');
    let verb = match action {
        Action::Pause => "SIGSTOP",
        Action::Stop => "SIGTERM",
        Action::Kill => "SIGKILL",
    };
    let changes = vec![format!("send {verb} to process {pid} ({name})")];
    Ok(Prepared {
        record: Record {
            action,
            pid,
            name,
            was_stopped,
            restart,
            pid_file: t.pid_file.clone(),
        },
        changes,
    })
}

/// How long a revert waits for a process sent SIGTERM (or SIGKILL) to exit before it runs the
/// restart command: past it, the process is taken to ignore the signal, still running.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn signal(pid: i32, s: Signal) -> Result<(), FaultError> {
    match kill(Pid::from_raw(pid), s) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(FaultError::context(
            "process",
            format!("cannot send {s} to {pid}"),
            e,
        )),
    }
}

pub(crate) fn apply(r: &Record) -> Result<(), FaultError> {
    if comm(r.pid).as_deref() != Some(r.name.as_str()) {
        return Err(FaultError::NotFound(format!(
            "process {} ({}) is gone",
            r.pid, r.name
        )));
    }
    signal(
        r.pid,
        match r.action {
            Action::Pause => Signal::SIGSTOP,
            Action::Stop => Signal::SIGTERM,
            Action::Kill => Signal::SIGKILL,
        },
    )
}

pub(crate) async fn revert(r: &Record) -> Result<Reverted, FaultError> {
    // The pid may have been reused: only touch it if it is still the same program.
    let same = comm(r.pid).as_deref() == Some(r.name.as_str());
    match r.action {
        Action::Pause => {
            if r.was_stopped || !same || state(r.pid) != Some('T') {
                return Ok(Reverted::AlreadyRestored);
            }
            signal(r.pid, Signal::SIGCONT)?;
            Ok(Reverted::Restored(vec![format!(
                "sent SIGCONT to {}",
                r.pid
            )]))
        }
        Action::Stop | Action::Kill => {
            // A process told to stop may take a while to exit (a queue worker's warm shutdown
            // finishes its job first): wait for it, bounded, rather than call it "already
            // running" and watch it exit just after, with nothing left to restart it.
            let deadline = std::time::Instant::now() + EXIT_GRACE;
            while same && !r.was_stopped && alive(r.pid) && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            // Still alive after the grace: it did not stop (it ignores the signal); it is in
            // its recorded state, running.
            let still_running = same && alive(r.pid);
            // Restarted already (by an earlier revert, or by a supervisor): the pid file names
            // a live process of the same program, or, without a pid file, some process has
            // that name. That is what makes running the restart command idempotent. (By name
            // alone, another program's process with the same name would pass for it.)
            let restarted = match &r.pid_file {
                Some(f) => from_pid_file(f).is_ok_and(|(_, n)| n == r.name),
                None => by_name(&r.name).is_some(),
            };
            if still_running || restarted || r.was_stopped {
                return Ok(Reverted::AlreadyRestored);
            }
            let Some(cmd) = &r.restart else {
                return Err(FaultError::backend(
                    "process",
                    format!("{} is not running and there is no restart command", r.name),
                ));
            };
            crate::exec::run(cmd).await?;
            Ok(Reverted::Restored(vec![format!(
                "ran {}",
                crate::exec::shown(cmd)
            )]))
        }
    }
}
