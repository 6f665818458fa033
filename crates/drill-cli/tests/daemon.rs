//! `drill daemon` end to end on a real target: a schedule fires a drill that pauses a Docker
//! container; `drill halt` reverts it and aborts the run within 2 s (measured), a fire
//! during the halt is recorded as missed (`halted`), the halt survives a daemon restart,
//! and after `drill resume` the next fire runs.

mod common;

use std::time::{Duration, Instant};

use common::{Running, Work, fixture};
use drill_testkit::{cleanup, container_state, docker_image_ready, service, sleepers, stdout};

const PLAYBOOK: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: scheduled}
schedule:
  cron: "*/10 * * * * *"
  concurrency: forbid
  starting_deadline: 5s
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    docker: {containers: ["drill-daemon-*"]}
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 10/s, hold: 2m}]
drills:
  - name: outage
    at: 1s
    drill:
      baseline: 1s
      hold: 90s
      recovery: 1s
      faults:
        - {name: pause, action: pause, target: {docker: {name: drill-daemon-0}}}
"#;

fn daemon(w: &Work, dir: &std::path::Path) -> Running {
    Running::spawn(w.cmd(&[
        "daemon",
        "--playbooks",
        &dir.display().to_string(),
        "--report-dir",
        &w.dir.path().join("reports").display().to_string(),
        "--lease",
        "3s",
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_reverts_a_scheduled_drill_within_2_s_and_survives_a_restart_until_resume() {
    if !service("docker image drill-test-busybox", docker_image_ready()) {
        return;
    }
    let names = sleepers("drill-daemon", 1);
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("scheduled.yaml"),
        PLAYBOOK.replace("BASE", &server.url("")),
    )
    .expect("playbook");
    // An invalid neighbour is refused with its errors; the valid one is scheduled anyway.
    std::fs::write(
        dir.join("broken.yaml"),
        "apiVersion: drill/v1\nkind: Playbook\n",
    )
    .expect("broken");

    let mut d = daemon(&w, &dir);
    d.wait_for(
        "broken.yaml is invalid, not loaded",
        Duration::from_secs(20),
    );
    d.wait_for("loaded scheduled", Duration::from_secs(5));
    d.wait_for("outage/pause: applied", Duration::from_secs(30));
    assert_eq!(container_state(&names[0]), "paused");

    let asked = Instant::now();
    let halt = w.drill(&["halt", "--reason", "incident 42"]);
    assert!(halt.status.success(), "{}", stdout(&halt));
    while container_state(&names[0]) != "running" {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the halt did not revert the pause"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reverted_after = asked.elapsed();
    d.wait_for("ABORTED: halted by", Duration::from_secs(10));
    assert!(
        reverted_after < Duration::from_secs(2),
        "the fault was reverted {reverted_after:?} after the halt"
    );
    eprintln!("halt → pause reverted: {reverted_after:?}");

    common::assert_newest_run(&w, "aborted", "halted by").await;
    let store = w.store().await;
    // The next fire (every 10 s) during the halt is recorded, not run.
    let missed = || async {
        w.store()
            .await
            .fires(Some("scheduled"), 100)
            .await
            .expect("fires")
            .iter()
            .any(|f| f.reason.as_deref() == Some("halted"))
    };
    let until = Instant::now() + Duration::from_secs(15);
    while !missed().await {
        assert!(Instant::now() < until, "no fire recorded as halted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // SIGTERM: the daemon stops; started again, it is still halted.
    common::nix_kill(d.child.id(), "TERM");
    let (code, _, err) = d.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    let mut d = daemon(&w, &dir);
    d.wait_for("halted by", Duration::from_secs(20));
    let before = store.runs(10).await.expect("runs").len();
    let resume = w.drill(&["resume"]);
    assert!(
        stdout(&resume).contains("incident 42"),
        "{}",
        stdout(&resume)
    );
    d.wait_for("resumed", Duration::from_secs(5));
    d.wait_for("outage/pause: applied", Duration::from_secs(20));
    assert_eq!(store.runs(10).await.expect("runs").len(), before + 1);
    common::nix_kill(d.child.id(), "TERM");
    let (code, _, err) = d.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("aborting 1 run(s)"),
        "SIGTERM aborts the running drill: {err}"
    );
    assert_eq!(
        container_state(&names[0]),
        "running",
        "SIGTERM reverted the pause before the daemon exited"
    );
    cleanup(&names);
}

/// `concurrency: replace`: the next fire aborts the running drill, whose pause is reverted,
/// before the new run injects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_reverts_the_old_run_before_the_new_one_injects() {
    if !service("docker image drill-test-busybox", docker_image_ready()) {
        return;
    }
    let names = sleepers("drill-daemon-r", 1);
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("scheduled.yaml"),
        PLAYBOOK
            .replace("BASE", &server.url(""))
            .replace("concurrency: forbid", "concurrency: replace")
            .replace("drill-daemon-", "drill-daemon-r-"),
    )
    .expect("playbook");
    let mut d = daemon(&w, &dir);
    d.wait_for("outage/pause: applied", Duration::from_secs(30));
    let first = d.seen.len();
    // The next fire, at most 10 s later: the old run is aborted and reverted, then the new
    // one pauses the container again.
    d.wait_for("replaced by the run of", Duration::from_secs(15));
    d.wait_for("outage/pause: applied", Duration::from_secs(30));
    let after: Vec<&String> = d.seen[first..].iter().collect();
    let reverted = after
        .iter()
        .position(|l| l.contains("outage/pause: reverted"))
        .unwrap_or_else(|| panic!("the old pause was reverted:\n{after:#?}"));
    let injected = after
        .iter()
        .rposition(|l| l.contains("outage/pause: applied"))
        .expect("the new pause");
    assert!(reverted < injected, "{after:#?}");
    assert_eq!(container_state(&names[0]), "paused", "the new run holds it");
    common::nix_kill(d.child.id(), "TERM");
    let (code, _, err) = d.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(container_state(&names[0]), "running");
    let fires = w
        .store()
        .await
        .fires(Some("scheduled"), 10)
        .await
        .expect("fires");
    assert!(fires.iter().filter(|f| f.outcome == "run").count() >= 2);
    cleanup(&names);
}
