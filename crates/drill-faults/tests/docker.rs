//! Docker faults against the real engine, on containers these tests create from the local
//! drill-test-busybox image (tests/services/up.sh builds it; no registry is needed).

mod common;

use std::time::Duration;

use common::{allow, fault, roundtrip, service};
use drill_faults::{FaultError, Reverted, apply, prepare, probe, revert};
use serde_json::json;

use drill_testkit::{cleanup, container_state as state, docker, docker_image_ready as image_ready};

/// Starts containers named `{prefix}-{i}` with a label; returns their names.
fn start(prefix: &str, n: usize) -> Vec<String> {
    drill_testkit::sleepers(prefix, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_restores_running_containers_and_leaves_stopped_ones_stopped() {
    if !service("docker image drill-test-busybox", image_ready()) {
        return;
    }
    let prefix = format!("drill-t-stop-{}", std::process::id());
    let names = start(&prefix, 3);
    docker(&["stop", "-t", "0", &names[2]]);
    assert_eq!(state(&names[2]), "exited");
    let label = format!("drill.test={prefix}");
    let a = allow(json!({"docker": {"labels": [label]}}));
    let f = fault(
        json!({"name": "stop-workers", "action": "stop", "target": {"docker": {"labels": [label]}}}),
    );
    let p = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    assert_eq!(p.changes.len(), 3);
    assert!(
        p.changes[2].contains("is not running: left as it is"),
        "{:?}",
        p.changes
    );
    assert_eq!(state(&names[0]), "running", "preflight changes nothing");
    apply(&p.record).await.expect("stop");
    assert_eq!(
        (state(&names[0]).as_str(), state(&names[1]).as_str()),
        ("exited", "exited")
    );
    let record = roundtrip(&p.record);
    let r = revert(&record).await.expect("revert");
    assert_eq!(
        r,
        Reverted::Restored(vec![
            format!("started {}", names[0]),
            format!("started {}", names[1])
        ])
    );
    assert_eq!(
        (
            state(&names[0]).as_str(),
            state(&names[1]).as_str(),
            state(&names[2]).as_str()
        ),
        ("running", "running", "exited")
    );
    assert_eq!(
        revert(&record).await.expect("again"),
        Reverted::AlreadyRestored
    );
    // A probe counts the running ones.
    let pr =
        serde_json::from_value::<drill_spec::model::Probe>(json!({"docker": {"labels": [label]}}))
            .expect("probe");
    assert_eq!(probe(&pr, &a).await.expect("probe"), 2.0);
    cleanup(&names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_kill_are_undone_and_max_targets_limits_the_blast_radius() {
    if !service("docker image drill-test-busybox", image_ready()) {
        return;
    }
    let prefix = format!("drill-t-pause-{}", std::process::id());
    let names = start(&prefix, 3);
    let a = allow(json!({"docker": {"containers": [format!("{prefix}-*")]}}));
    let label = format!("drill.test={prefix}");
    let a_labels =
        allow(json!({"docker": {"containers": [format!("{prefix}-*")], "labels": [label]}}));
    let f = fault(
        json!({"name": "pause", "action": "pause", "target": {"docker": {"labels": [label], "max_targets": 2}}}),
    );
    let p = prepare(&f, &a_labels, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("pause");
    let paused: Vec<String> = names.iter().map(|n| state(n)).collect();
    assert_eq!(
        paused,
        ["paused", "paused", "running"],
        "max_targets: 2 of 3"
    );
    revert(&roundtrip(&p.record)).await.expect("unpause");
    assert!(names.iter().all(|n| state(n) == "running"));

    let f =
        fault(json!({"name": "kill", "action": "kill", "target": {"docker": {"name": names[0]}}}));
    let p = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("kill");
    assert_eq!(state(&names[0]), "exited");
    revert(&roundtrip(&p.record)).await.expect("start");
    assert_eq!(state(&names[0]), "running");
    cleanup(&names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_is_undone_by_reconnecting_the_network() {
    if !service("docker image drill-test-busybox", image_ready()) {
        return;
    }
    let prefix = format!("drill-t-net-{}", std::process::id());
    let net = format!("{prefix}-net");
    let _ = docker(&["network", "rm", &net]);
    docker(&["network", "create", &net]);
    let names = start(&prefix, 1);
    docker(&["network", "connect", &net, &names[0]]);
    let nets = || {
        docker(&[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            &names[0],
        ])
    };
    assert!(nets().contains(&net));
    let a = allow(json!({"docker": {"containers": [names[0]]}}));
    let f = fault(
        json!({"name": "cut", "action": "disconnect", "network": net, "target": {"docker": {"name": names[0]}}}),
    );
    let p = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("disconnect");
    assert!(!nets().contains(&net));
    revert(&roundtrip(&p.record)).await.expect("reconnect");
    assert!(nets().contains(&net));
    assert_eq!(
        revert(&p.record).await.expect("again"),
        Reverted::AlreadyRestored
    );
    cleanup(&names);
    let _ = docker(&["network", "rm", &net]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_outside_the_allow_list_is_refused_before_the_engine_is_asked() {
    let f = fault(
        json!({"name": "stop", "action": "stop", "target": {"docker": {"name": "no-such-container-anywhere"}}}),
    );
    let e = prepare(
        &f,
        &allow(json!({"docker": {"containers": ["worker-*"]}})),
        Duration::from_secs(1),
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(e, FaultError::NotAllowed(..)),
        "refused, not 'not found': {e}"
    );
}
