//! `drill load` as a user runs it, against the loopback fixture server.

use std::process::{Command, Output};
use std::time::Duration;

use drill_fixture::{Behaviour, Server};

fn drill(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("drill runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the binary on a blocking thread while the fixture serves on the runtime.
async fn drill_async(dir: std::path::PathBuf, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        drill(&dir, &a)
    })
    .await
    .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_rate_warns_about_dropped_arrivals() {
    let server = Server::start(Behaviour::default()).await.expect("server");
    let dir = std::env::temp_dir();
    let out = drill_async(
        dir,
        [
            "load",
            "--url",
            &server.url("/"),
            "--rate",
            "200000/s",
            "--duration",
            "300ms",
            "--max-in-flight",
            "16",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: ") && err.contains("arrivals were dropped"),
        "{err}"
    );
    assert!(
        text(&out.stdout).contains("dropped.........."),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_threshold_exits_1_and_writes_every_output() {
    let server = Server::start(Behaviour {
        delay: Duration::from_millis(20),
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let dir = std::env::temp_dir().join(format!("drill-cli-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let host = server.addr.to_string();
    let yaml = format!(
        "apiVersion: drill/v1\nkind: Playbook\nmetadata: {{name: slow}}\ntarget:\n  base_url: http://{host}\n  allow: {{http: [\"{host}\"]}}\ntraffic:\n  requests: [{{name: home, path: /}}]\n  profile: [{{rate: 50/s, hold: 2s}}]\nslo: {{p95: 5ms, error_rate: 1%}}\n"
    );
    std::fs::write(dir.join("p.yaml"), yaml).expect("write");
    let out = drill_async(
        dir.clone(),
        [
            "load",
            "p.yaml",
            "--summary-export",
            "k6.json",
            "--timeline",
            "timeline.json",
            "--markdown",
            "summary.md",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("✗ overall p(95)<=5"),
        "{}",
        text(&out.stdout)
    );
    let k6: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("k6.json")).expect("k6.json"))
            .expect("json");
    assert_eq!(k6["metrics"]["http_reqs"]["count"], 100);
    let tl: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("timeline.json")).expect("timeline"))
            .expect("json");
    assert_eq!(tl["seconds"].as_array().map(Vec::len), Some(2));
    let md = std::fs::read_to_string(dir.join("summary.md")).expect("markdown");
    assert!(
        md.contains("| overall | `p(95)<=5` |") && md.contains("**FAIL**"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_interrupt_stops_the_traffic_and_exits_3() {
    let server = Server::start(Behaviour::default()).await.expect("server");
    let url = server.url("/");
    let out = tokio::task::spawn_blocking(move || {
        let child = Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(["load", "--url", &url, "--rate", "50/s", "--duration", "30s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_secs(1));
        // The shell's own `kill`: no dependency on procps.
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -INT {}", child.id())])
            .status();
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("joined");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("stopping"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        server.requests() < 200,
        "traffic stopped early: {}",
        server.requests()
    );
}
