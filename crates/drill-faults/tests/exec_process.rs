//! Exec hooks and local processes, for real.

mod common;

use std::time::Duration;

use common::{allow, fault, roundtrip};
use drill_faults::{FaultError, Reverted, apply, prepare, process, revert};
use serde_json::json;

#[tokio::test]
async fn an_exec_fault_runs_its_command_and_its_revert_runs_the_other() {
    let dir = std::env::temp_dir().join(format!("drill-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let flag = dir.join("paused");
    let f = fault(json!({
        "name": "pause-horizon", "action": "exec",
        "exec": {
            "inject": {"command": ["touch", flag]},
            "revert": {"command": ["rm", "-f", flag]}
        }
    }));
    let a = allow(json!({"exec": ["touch", "rm"]}));
    let p = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    assert!(!flag.exists(), "preflight changes nothing");
    apply(&p.record).await.expect("apply");
    assert!(flag.exists());
    let record = roundtrip(&p.record);
    assert!(matches!(
        revert(&record).await.expect("revert"),
        Reverted::Restored(_)
    ));
    assert!(!flag.exists());
    // The revert command is idempotent, so reverting again changes nothing.
    revert(&record).await.expect("second revert");
    assert!(!flag.exists());
}

#[tokio::test]
async fn exec_passes_arguments_environment_and_directory_and_captures_output() {
    let e: drill_spec::model::Exec = serde_json::from_value(json!({
        "command": ["sh", "-c", "echo \"$DRILL_GREETING from $(pwd)\"; echo warn >&2"],
        "env": {"DRILL_GREETING": "hello"},
        "dir": "/tmp"
    }))
    .expect("exec");
    let out = drill_faults::exec::run(&e).await.expect("runs");
    assert_eq!(out.stdout.trim(), "hello from /tmp");
    assert_eq!(out.stderr.trim(), "warn");
    assert_eq!(out.status, 0);
}

#[tokio::test]
async fn a_command_outside_the_allow_list_is_refused_before_it_runs() {
    let flag = std::env::temp_dir().join(format!("drill-exec-refused-{}", std::process::id()));
    let f = fault(
        json!({"name": "x", "action": "exec", "exec": {"inject": {"command": ["touch", flag]}, "revert": {"command": ["true"]}}}),
    );
    let e = prepare(
        &f,
        &allow(json!({"exec": ["true"]})),
        Duration::from_secs(1),
    )
    .await
    .expect_err("refused");
    assert!(matches!(e, FaultError::NotAllowed(..)), "{e}");
    assert!(!flag.exists());
}

#[tokio::test]
async fn a_failing_or_slow_command_is_an_error_with_its_output() {
    let f = fault(
        json!({"name": "x", "action": "exec", "exec": {"inject": {"command": ["sh", "-c", "echo nope >&2; exit 3"]}, "revert": {"command": ["sleep", "5"], "timeout": "200ms"}}}),
    );
    let p = prepare(
        &f,
        &allow(json!({"exec": ["sh", "sleep"]})),
        Duration::from_secs(1),
    )
    .await
    .expect("prepare");
    let e = apply(&p.record).await.expect_err("fails");
    assert!(e.to_string().contains("exited with 3: nope"), "{e}");
    let e = revert(&p.record).await.expect_err("times out");
    assert!(e.to_string().contains("did not finish within 200ms"), "{e}");
}

fn spawn_sleeper() -> std::process::Child {
    let child = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("sleep");
    drill_testkit::wait_exec(child.id(), "sleep");
    child
}

#[tokio::test]
async fn pausing_a_process_stops_it_and_revert_continues_it() {
    let mut child = spawn_sleeper();
    let pid = i32::try_from(child.id()).expect("pid");
    let pid_file = std::env::temp_dir().join(format!("drill-sleeper-{pid}.pid"));
    std::fs::write(&pid_file, pid.to_string()).expect("pid file");
    let f = fault(
        json!({"name": "pause", "action": "pause", "target": {"process": {"pid_file": pid_file}}}),
    );
    let a = allow(json!({"processes": [pid_file]}));
    let p = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    assert_ne!(process::state(pid), Some('T'));
    apply(&p.record).await.expect("apply");
    drill_testkit::eventually("the process is stopped", Duration::from_secs(5), || {
        process::state(pid) == Some('T')
    });
    let record = roundtrip(&p.record);
    assert!(matches!(
        revert(&record).await.expect("revert"),
        Reverted::Restored(_)
    ));
    drill_testkit::eventually("the process runs again", Duration::from_secs(5), || {
        process::state(pid) != Some('T')
    });
    assert_eq!(
        revert(&record).await.expect("again"),
        Reverted::AlreadyRestored
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn a_process_stopped_before_the_drill_stays_stopped() {
    let mut child = spawn_sleeper();
    let pid = i32::try_from(child.id()).expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .expect("stop");
    drill_testkit::eventually("the process is stopped", Duration::from_secs(5), || {
        process::state(pid) == Some('T')
    });
    let pid_file = std::env::temp_dir().join(format!("drill-stopped-{pid}.pid"));
    std::fs::write(&pid_file, pid.to_string()).expect("pid file");
    let f = fault(
        json!({"name": "pause", "action": "pause", "target": {"process": {"pid_file": pid_file}}}),
    );
    let p = prepare(
        &f,
        &allow(json!({"processes": [pid_file]})),
        Duration::from_secs(1),
    )
    .await
    .expect("prepare");
    apply(&p.record).await.expect("apply");
    assert_eq!(
        revert(&p.record).await.expect("revert"),
        Reverted::AlreadyRestored
    );
    assert_eq!(
        process::state(pid),
        Some('T'),
        "it was stopped before, so it stays stopped"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A uniquely named worker program: a copy of `sleep` under another name, in a directory of
/// this test process's own.
fn named_sleep(name: &str) -> std::path::PathBuf {
    named_copy("/bin/sleep", name)
}

/// A copy of the program `bin` named `name`, so its processes are told apart by name.
fn named_copy(bin: &str, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("drill-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let copy = dir.join(name);
    std::fs::copy(bin, &copy).expect("copy the program");
    copy
}

/// Stops `child` through a `stop` fault on the process `target`, reverts from a JSON
/// round-trip of the record — which must run the restart command (`why` if not) — and returns
/// the restarted process as the target finds it. Reverting again must find it back and start
/// nothing.
async fn stop_then_restart(
    target: serde_json::Value,
    a: &drill_spec::model::Allow,
    child: &mut std::process::Child,
    why: &str,
) -> (i32, String) {
    let f = fault(json!({"name": "stop", "action": "stop", "target": {"process": target}}));
    let p = prepare(&f, a, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("apply");
    let _ = child.wait();
    let record = roundtrip(&p.record);
    let first = revert(&record).await.expect("revert");
    assert!(matches!(first, Reverted::Restored(_)), "{why}: {first:?}");
    let t: drill_spec::model::ProcessTarget =
        serde_json::from_value(target).expect("process target");
    drill_testkit::eventually(
        &format!("{why}: restarted"),
        Duration::from_secs(10),
        || process::find(&t).is_ok_and(|(pid, _)| pid != child.id() as i32),
    );
    let running = process::find(&t).expect("restarted");
    assert_eq!(
        revert(&record).await.expect("again"),
        Reverted::AlreadyRestored,
        "it is back: no second one"
    );
    running
}

#[tokio::test]
async fn stopping_a_process_restarts_it_with_its_command_once() {
    let worker = named_sleep("drillworker");
    let mut child = std::process::Command::new(&worker)
        .arg("300")
        .spawn()
        .expect("worker");
    drill_testkit::wait_exec(child.id(), "drillworker");
    let restart =
        json!({"command": ["sh", "-c", format!("{} 300 >/dev/null 2>&1 &", worker.display())]});
    let target = json!({"name": "drillworker", "restart": restart});
    let a = allow(json!({"processes": ["drillworker"], "exec": ["sh"]}));
    let running = stop_then_restart(target, &a, &mut child, "the restart command runs").await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(running.0),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A process that takes a while to exit on SIGTERM (a worker's warm shutdown) is waited for,
/// then restarted: reverting while it is still shutting down must not call it "already
/// running" and leave nothing to restart it once it exits.
#[tokio::test]
async fn a_process_slow_to_exit_on_sigterm_is_waited_for_then_restarted() {
    let shell = named_copy("/bin/bash", "drillslowexit");
    let ready = shell.with_file_name("ready");
    let _ = std::fs::remove_file(&ready);
    let script = format!(
        "trap 'sleep 1.5; exit 0' TERM; : > {}; while :; do sleep 0.1; done",
        ready.display()
    );
    let mut child = std::process::Command::new(&shell)
        .args(["-c", &script])
        .spawn()
        .expect("slow worker");
    // Its trap is set once it has written `ready`.
    drill_testkit::eventually("the trap is set", Duration::from_secs(10), || {
        ready.exists()
    });
    let restart = json!({"command": ["sh", "-c", format!("{} -c \"{script}\" >/dev/null 2>&1 &", shell.display())]});
    let target = json!({"name": "drillslowexit", "restart": restart});
    let a = allow(json!({"processes": ["drillslowexit"], "exec": ["sh"]}));
    let f = fault(json!({"name": "stop", "action": "stop", "target": {"process": target.clone()}}));
    let p = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("apply");
    // Revert at once, while the process is still in its trap.
    let started = std::time::Instant::now();
    let reverted = revert(&roundtrip(&p.record)).await.expect("revert");
    let waited = started.elapsed();
    assert!(matches!(reverted, Reverted::Restored(_)), "{reverted:?}");
    assert!(
        waited >= Duration::from_millis(1_000),
        "the revert did not wait for the exit: {waited:?}"
    );
    let _ = child.wait();
    let t: drill_spec::model::ProcessTarget =
        serde_json::from_value(target).expect("process target");
    drill_testkit::eventually("restarted", Duration::from_secs(10), || {
        process::find(&t).is_ok_and(|(pid, _)| pid != child.id() as i32)
    });
    let (pid, _) = process::find(&t).expect("restarted");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A target found by pid file is restarted even while another process of the same program
/// runs (an API server and its queue worker are often one binary): the pid file, not the
/// name, says whether it is back.
#[tokio::test]
async fn a_pid_file_target_is_restarted_even_when_a_namesake_runs() {
    let worker = named_sleep("drillpidworker");
    let dir = worker.parent().expect("its directory").to_path_buf();
    let pid_file = dir.join("worker.pid");
    let spawn = || {
        std::process::Command::new(&worker)
            .arg("300")
            .spawn()
            .expect("spawn")
    };
    let mut namesake = spawn();
    let mut child = spawn();
    std::fs::write(&pid_file, child.id().to_string()).expect("pid file");
    drill_testkit::wait_exec(namesake.id(), "drillpidworker");
    drill_testkit::wait_exec(child.id(), "drillpidworker");
    let restart = json!({"command": ["sh", "-c", format!(
        "{} 300 >/dev/null 2>&1 & echo $! > {}", worker.display(), pid_file.display()
    )]});
    let target = json!({"pid_file": pid_file, "restart": restart});
    let a = allow(json!({"processes": [pid_file], "exec": ["sh"]}));
    let (new_pid, name) =
        stop_then_restart(target, &a, &mut child, "the namesake is not the target").await;
    assert_eq!(name, "drillpidworker");
    assert_ne!(new_pid, child.id() as i32, "its pid file names the new one");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(new_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = namesake.kill();
    let _ = namesake.wait();
}

#[tokio::test]
async fn a_process_outside_the_allow_list_is_refused_before_it_is_looked_up() {
    let f = fault(
        json!({"name": "p", "action": "pause", "target": {"process": {"name": "no-such-process-anywhere"}}}),
    );
    let e = prepare(
        &f,
        &allow(json!({"processes": ["php-fpm"]})),
        Duration::from_secs(1),
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(e, FaultError::NotAllowed(..)),
        "refused by the allow-list, not 'not found': {e}"
    );
}
