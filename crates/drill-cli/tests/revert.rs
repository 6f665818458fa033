//! `drill revert RECORD`: a fresh process holding only the serialized record restores the
//! original state — for each backend.

use std::process::Command;
use std::time::Duration;

use drill_faults::{apply, prepare};
use serde_json::json;

fn drill_revert(record: &drill_faults::RevertRecord) -> (Option<i32>, String, String) {
    let f = std::env::temp_dir().join(format!(
        "drill-record-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&f, serde_json::to_string_pretty(record).expect("json")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .arg("revert")
        .arg(&f)
        .output()
        .expect("drill");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_new_process_reverts_an_exec_fault_from_its_record() {
    let flag = std::env::temp_dir().join(format!("drill-revert-exec-{}", std::process::id()));
    let f: drill_spec::fault::ValidFault = serde_json::from_value(json!({
        "name": "x", "action": "exec",
        "exec": {"inject": {"command": ["touch", flag]}, "revert": {"command": ["rm", "-f", flag]}}
    }))
    .expect("fault");
    let allow: drill_spec::model::Allow =
        serde_json::from_value(json!({"exec": ["touch", "rm"]})).expect("allow");
    let p = prepare(&f, &allow, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("apply");
    assert!(flag.exists());
    let (code, out, err) = drill_revert(&p.record);
    assert_eq!(code, Some(0), "{err}");
    // The command as the record holds it: `rm` resolved to its file when it was prepared.
    assert!(
        out.starts_with("restored: ran /") && out.contains("/rm -f"),
        "{out}"
    );
    assert!(!flag.exists());
}

#[tokio::test]
async fn a_new_process_reverts_a_paused_process_and_says_so_when_there_is_nothing_to_do() {
    let mut child = Command::new("sleep").arg("300").spawn().expect("sleep");
    drill_testkit::wait_exec(child.id(), "sleep");
    let pid = child.id();
    let pid_file = std::env::temp_dir().join(format!("drill-revert-proc-{pid}.pid"));
    std::fs::write(&pid_file, pid.to_string()).expect("pid");
    let f: drill_spec::fault::ValidFault = serde_json::from_value(
        json!({"name": "p", "action": "pause", "target": {"process": {"pid_file": pid_file}}}),
    )
    .expect("fault");
    let allow: drill_spec::model::Allow =
        serde_json::from_value(json!({"processes": [pid_file]})).expect("allow");
    let p = prepare(&f, &allow, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("apply");
    let state = || drill_faults::process::state(i32::try_from(pid).expect("pid"));
    drill_testkit::eventually("the process is stopped", Duration::from_secs(5), || {
        state() == Some('T')
    });
    let (code, out, _) = drill_revert(&p.record);
    assert_eq!(code, Some(0));
    assert!(out.contains("SIGCONT"), "{out}");
    drill_testkit::eventually("the process runs again", Duration::from_secs(5), || {
        state() != Some('T')
    });
    let (code, out, _) = drill_revert(&p.record);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("nothing to do"), "{out}");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn a_new_process_reverts_a_stopped_container_and_a_redis_pause() {
    if !drill_testkit::service(
        "the Docker image drill-test-busybox",
        drill_testkit::docker_image_ready(),
    ) {
        return;
    }
    let prefix = format!("drill-t-revert-{}", std::process::id());
    let containers = drill_testkit::sleepers(&prefix, 1);
    let name = containers[0].clone();
    let state = || drill_testkit::container_state(&name);
    let f: drill_spec::fault::ValidFault = serde_json::from_value(
        json!({"name": "s", "action": "stop", "target": {"docker": {"name": name}}}),
    )
    .expect("fault");
    let allow: drill_spec::model::Allow = serde_json::from_value(
        json!({"docker": {"containers": [name]}, "redis": ["redis://127.0.0.1:6379"]}),
    )
    .expect("allow");
    let p = prepare(&f, &allow, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("stop");
    assert_eq!(state(), "exited");
    let (code, out, err) = drill_revert(&p.record);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), format!("restored: started {name}"));
    assert_eq!(state(), "running");
    drill_testkit::cleanup(&containers);

    // A Redis write pause, lifted by another process.
    let f: drill_spec::fault::ValidFault = serde_json::from_value(json!({"name": "p", "action": "client-pause", "target": {"redis": "redis://127.0.0.1:6379"}})).expect("fault");
    let p = match prepare(&f, &allow, Duration::from_secs(20)).await {
        Ok(p) => p,
        Err(e) => {
            drill_testkit::service(
                &format!("redis on 127.0.0.1:6379 ({})", drill_engine::chain(&e)),
                false,
            );
            return;
        }
    };
    apply(&p.record).await.expect("pause");
    // The pause really holds writes: a write waits past a 1 s deadline (timeout's exit 124).
    let blocked = Command::new("timeout")
        .args(["1", "redis-cli", "set", "drill:during-pause", "1"])
        .output()
        .expect("timeout redis-cli");
    assert_eq!(
        blocked.status.code(),
        Some(124),
        "a write went through during CLIENT PAUSE WRITE: {blocked:?}"
    );
    let (code, out, _) = drill_revert(&p.record);
    assert_eq!(code, Some(0));
    assert!(out.contains("CLIENT UNPAUSE"), "{out}");
    let started = std::time::Instant::now();
    let set = Command::new("redis-cli")
        .args(["set", "drill:after-unpause", "1"])
        .output()
        .expect("redis-cli");
    assert!(set.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "writes flow again at once"
    );
}

#[test]
fn a_broken_record_is_refused_with_its_position() {
    let f = std::env::temp_dir().join(format!("drill-bad-record-{}.json", std::process::id()));
    std::fs::write(&f, "{\"backend\": \"docker\",\n \"action\": 3}").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .arg("revert")
        .arg(&f)
        .output()
        .expect("drill");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: not a revert record"));
}
