//! drill-testkit: the helpers drill's tests share, so each crate's tests stop copying them.
//!
//! What it is: the rule for a missing service (skip and say so; under `CI=true`, fail), the
//! loopback addresses of the services `tests/services/up.sh` starts, a fresh PostgreSQL
//! database per test, and Docker containers made from the local `drill-test-busybox` image.
//! What it is not: a dependency of anything but tests (`[dev-dependencies]` only), and no
//! assertion about drill itself.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The variable that lets a test whose service is missing skip instead of failing.
pub const SKIP_MISSING_ENV: &str = "DRILL_TEST_SKIP_MISSING";

/// Whether the user opted out of the services explicitly (`DRILL_TEST_SKIP_MISSING=1`).
pub fn skip_missing() -> bool {
    std::env::var(SKIP_MISSING_ENV).as_deref() == Ok("1")
}

/// True when the service is there. When it is not, the test fails, naming the service and
/// how to start it — unless `DRILL_TEST_SKIP_MISSING=1`, where it says loudly that it skips:
/// a run that tested nothing real must not look like a pass.
pub fn service(what: &str, up: bool) -> bool {
    if !up {
        assert!(
            skip_missing(),
            "{what} is not available: start it with `bash tests/services/up.sh` (or set {SKIP_MISSING_ENV}=1 to skip the tests that need it)"
        );
        eprintln!(
            "SKIPPED ({SKIP_MISSING_ENV}=1): {what} is not available; this test tested nothing"
        );
    }
    up
}

/// The checkout's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a program to its end.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Its standard output, trimmed.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// The Redis the backend tests use.
pub fn redis_url() -> String {
    std::env::var("DRILL_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn redis_ready() -> bool {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "PING"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
}

/// `redis-cli` on the test Redis.
pub fn redis(args: &[&str]) -> String {
    let mut a = vec!["-h", "127.0.0.1", "-p", "6379"];
    a.extend_from_slice(args);
    stdout(&run("redis-cli", &a))
}

/// `psql` as postgres on `port`; true when the statement succeeded.
pub fn psql(port: u16, sql: &str) -> bool {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-Atqc",
            sql,
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A fresh database `name` on the test primary (5433), or None when PostgreSQL is not
/// running here. Drop it with [`drop_postgres_db`].
pub fn postgres_db(name: &str) -> Option<String> {
    (psql(5433, &format!("DROP DATABASE IF EXISTS {name}"))
        && psql(5433, &format!("CREATE DATABASE {name}")))
    .then(|| format!("postgres://postgres@127.0.0.1:5433/{name}"))
}

pub fn drop_postgres_db(name: &str) {
    psql(
        5433,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// `docker` with these arguments; its standard output.
pub fn docker(args: &[&str]) -> String {
    stdout(&run("docker", args))
}

/// Whether the local test image is there (the Docker engine answers and up.sh built it).
pub fn docker_image_ready() -> bool {
    Command::new("docker")
        .args(["image", "inspect", "drill-test-busybox"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A container's state (`running`, `paused`, `exited`), read from the engine.
pub fn container_state(name: &str) -> String {
    docker(&["inspect", "-f", "{{.State.Status}}", name])
}

/// Starts `n` containers named `{prefix}-{i}`, labelled `drill.test={prefix}`, running
/// `cmd` in the drill-test-busybox image (on the host's network when `host_net`).
pub fn containers(prefix: &str, n: usize, cmd: &[&str], host_net: bool) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = format!("{prefix}-{i}");
            let _ = docker(&["rm", "-f", &name]);
            let label = format!("drill.test={prefix}");
            let mut args = vec![
                "run",
                "-d",
                "--stop-timeout",
                "1",
                "--name",
                &name,
                "--label",
                &label,
            ];
            if host_net {
                args.extend(["--network", "host"]);
            }
            args.push("drill-test-busybox");
            args.extend_from_slice(cmd);
            docker(&args);
            name
        })
        .collect()
}

/// Containers that sleep.
pub fn sleepers(prefix: &str, n: usize) -> Vec<String> {
    containers(prefix, n, &["/bin/sleep", "3600"], false)
}

/// Removes the containers.
pub fn cleanup(names: &[String]) {
    for n in names {
        let _ = docker(&["rm", "-f", n]);
    }
}

/// Polls `cond` every 10 ms until it holds, for at most `within`; panics naming `what`
/// otherwise. Tests wait for a state this way, never with a fixed sleep.
pub fn eventually(what: &str, within: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "{what}: not so within {within:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Waits until process `pid` runs the program `name` (a child carries the test's name until
/// it has exec'd).
pub fn wait_exec(pid: u32, name: &str) {
    eventually(
        &format!("process {pid} runs {name}"),
        std::time::Duration::from_secs(10),
        || std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name),
    );
}
