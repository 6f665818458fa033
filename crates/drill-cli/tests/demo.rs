//! `drill demo` end to end: the reference target (crates/drill-target) with Redis, a
//! PostgreSQL primary and streaming replica behind its route, and queue workers in Docker
//! containers or as a local process (scripts/demo-env.sh), the seed plan
//! (playbooks/local.yaml, playbooks/local-processes.yaml) time-scaled.
//! The healthy target passes all three drills; each broken variant fails the drill that is
//! about it, and the report names the check and the measured value.
//! A missing Docker, Redis or PostgreSQL fails the test (unless DRILL_TEST_SKIP_MISSING=1).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use drill_engine::store::Store;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether what the demo needs is here: Redis and PostgreSQL, and Docker for workers in
/// containers.
fn ready(workers: &str) -> bool {
    let ok = |c: &str, a: &[&str]| {
        Command::new(c)
            .args(a)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let up = (workers != "docker" || ok("docker", &["info"]))
        && ok(
            "sh",
            &[
                "-c",
                "command -v redis-server && command -v pg_createcluster",
            ],
        );
    drill_testkit::service(
        if workers == "docker" {
            "the demo's Docker engine, redis-server or PostgreSQL"
        } else {
            "the demo's redis-server or PostgreSQL"
        },
        up,
    )
}

/// Where stdout ends and stderr begins in the text `demo` returns.
const STDERR: &str = "\n--- stderr ---\n";

/// Runs `drill demo --workers WORKERS` and returns its exit code, output and stored report.
async fn demo(
    workers: &str,
    broken: Option<&str>,
    keep: bool,
) -> (Option<i32>, String, serde_json::Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db").display().to_string();
    let mut c = Command::new(env!("CARGO_BIN_EXE_drill"));
    c.current_dir(repo())
        .args(["demo", "--workers", workers, "--time-scale", "0.1"])
        .args(["--db", &db, "--report-dir"])
        .arg(dir.path().join("reports"))
        .env("DRILL_DEMO_DIR", dir.path().join("env"));
    if let Some(b) = broken {
        c.args(["--broken", b]);
    }
    if keep {
        c.arg("--keep");
    }
    let out = c.output().expect("drill demo");
    // The verdict's closing line is the last line on stdout; the logs are on stderr, after.
    let text = format!(
        "{}{STDERR}{}",
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&db).await.expect("store");
    let report = match store.runs(1).await.expect("runs").first() {
        Some(run) => store
            .report(&run.id, "json")
            .await
            .expect("report")
            .map(|t| serde_json::from_str(&t).expect("json"))
            .unwrap_or_default(),
        None => serde_json::Value::Null,
    };
    (out.status.code(), text, report, dir)
}

/// A drill's check from a report.
fn check<'a>(r: &'a serde_json::Value, drill: &str, name: &str) -> &'a serde_json::Value {
    r["drills"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["name"] == drill))
        .and_then(|d| d["checks"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {drill}/{name} in {r}"))
}

/// The reference target cargo built beside the drill binary.
fn target_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_drill")).with_file_name("drill-target")
}

fn down(dir: &tempfile::TempDir) {
    let _ = Command::new("bash")
        .arg(repo().join("scripts/demo-env.sh"))
        .arg("down")
        .env("DRILL_DEMO_DIR", dir.path().join("env"))
        .status();
}

/// Each check row of a run's verdict table (drill, check, PASS or FAIL, limit), and the
/// closing verdict line: what a local and a remote apply must print alike (the measured
/// values differ from run to run).
fn verdict_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            if t.len() >= 4 && l.starts_with("  ") && (t[2] == "PASS" || t[2] == "FAIL") {
                Some(format!("{} {} {} {}", t[0], t[1], t[2], t[t.len() - 1]))
            } else if l.starts_with("PASS:") || l.starts_with("FAIL:") {
                Some(l.to_owned())
            } else {
                None
            }
        })
        .collect()
}

/// A new operator token in `file` (`drill token add`), returned once.
fn operator_token(file: &Path, subject: &str) -> String {
    let made = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args([
            "token",
            "add",
            "--role",
            "operator",
            "--subject",
            subject,
            "--tokens",
        ])
        .arg(file)
        .output()
        .expect("drill token add");
    assert!(made.status.success(), "{made:?}");
    String::from_utf8_lossy(&made.stdout).trim().to_owned()
}

/// A port free on 127.0.0.1 now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `drill daemon` with the demo's playbook directory, and `drill apply --server` of the
/// demo playbook on it; the exit code and output of the apply.
fn through_a_daemon(dir: &tempfile::TempDir) -> (Option<i32>, String) {
    let bin = env!("CARGO_BIN_EXE_drill");
    let tokens = dir.path().join("tokens");
    let token = operator_token(&tokens, "demo-test");
    let pbs = dir.path().join("daemon-playbooks");
    std::fs::create_dir_all(&pbs).expect("dir");
    std::fs::copy(repo().join("playbooks/local.yaml"), pbs.join("local.yaml")).expect("copy");
    // The operator's policy for the demo: what local.yaml touches, its failover's psql, and
    // its dataset's directory, for a posted playbook.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: drill/v1\nkind: Policy\nallow:\n  http: [\"127.0.0.1\"]\n  docker: {{labels: [\"drill.demo=worker\"]}}\n  redis: [\"redis://127.0.0.1:6390\"]\n  sql: [\"postgres://127.0.0.1:5454\"]\n  exec: [\"{}\"]\nposted: {{exec: true, files: [\"{}\"]}}\n",
            common::which("psql"),
            dir.path().join("env").display()
        ),
    )
    .expect("policy");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut daemon = Command::new(bin)
        .current_dir(repo())
        .args(["daemon", "--playbooks"])
        .arg(&pbs)
        .arg("--drills")
        .arg(repo().join("drills"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--tokens"])
        .arg(&tokens)
        .arg("--policy")
        .arg(&policy)
        .arg("--db")
        .arg(dir.path().join("daemon.db"))
        .arg("--report-dir")
        .arg(dir.path().join("daemon-reports"))
        .env("DRILL_DEMO_DIR", dir.path().join("env"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).expect("log"))
        .spawn()
        .expect("drill daemon");
    let up = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            up.elapsed().as_secs() < 20,
            "the daemon's API did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = Command::new(bin)
        .current_dir(repo())
        .args([
            "apply",
            "--server",
            &base,
            "playbooks/local.yaml",
            "--time-scale",
            "0.1",
        ])
        .env("DRILL_TOKEN", &token)
        .env("DRILL_DEMO_DIR", dir.path().join("env"))
        .output()
        .expect("drill apply --server");
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    (
        out.status.code(),
        format!(
            "{}\n{}\n--- the daemon's log:\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_passes_all_three_seed_drills_against_the_healthy_target() {
    if !ready("docker") {
        return;
    }
    let (code, text, r, dir) = demo("docker", None, true).await;
    let stats = Command::new("curl")
        .args(["-s", "http://127.0.0.1:8088/internal/stats"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    down(&dir);
    // The same playbook through a daemon's API, on a fresh environment (the failover's
    // promotion is irreversible: the replica is a primary now, and preflight would refuse).
    let remote = code.is_some_and(|c| c == 0).then(|| {
        let up = Command::new("bash")
            .current_dir(repo())
            .arg("scripts/demo-env.sh")
            .args(["up", "--workers", "docker"])
            .env("DRILL_DEMO_DIR", dir.path().join("env"))
            .env("DRILL_TARGET_BIN", target_bin())
            .status()
            .expect("demo-env.sh up");
        assert!(up.success(), "the demo environment did not come up again");
        let r = through_a_daemon(&dir);
        down(&dir);
        r
    });
    assert_eq!(code, Some(0), "{text}");
    if let Some((rcode, rtext)) = remote {
        assert_eq!(rcode, Some(0), "drill apply --server:\n{rtext}");
        let lines = verdict_lines(&text);
        eprintln!(
            "verdict lines, local and remote alike:\n{}",
            lines.join("\n")
        );
        assert!(lines.len() > 6, "the verdict table of every drill: {text}");
        assert_eq!(
            verdict_lines(&rtext),
            lines,
            "the verdict lines of `drill apply --server` and of the local run differ:\n{rtext}\n---\n{text}"
        );
        assert!(
            rtext.contains("PASS: every check held and every fault was reverted"),
            "{rtext}"
        );
    }
    assert_eq!(r["verdict"], "PASS", "{text}");
    assert!(
        text.contains("PASS: every check held and every fault was reverted"),
        "{text}"
    );
    // The figures of a healthy run, for the record.
    for d in r["drills"].as_array().expect("drills") {
        let p = |ph: &str| d["phases"][ph]["p95_ms"].as_f64().unwrap_or(-1.0);
        eprintln!(
            "healthy {}: p95 baseline {:.1} ms, fault {:.1} ms, recovery {:.1} ms",
            d["name"].as_str().unwrap_or(""),
            p("baseline"),
            p("fault"),
            p("recovery")
        );
    }
    eprintln!(
        "healthy failover 5xx: {}",
        check(&r, "db-failover", "transient-5xx")["measured"]
    );
    eprintln!(
        "healthy drain: {}",
        check(&r, "queue-outage", "backlog-drains")["measured"]
    );
    eprintln!(
        "healthy cache purge: {}",
        check(&r, "cache-purge", "p95-increase")["measured"]
    );
    eprintln!("healthy target stats: {stats}");
    // What happened to the target, from the target itself.
    let st: serde_json::Value = serde_json::from_str(&stats).expect("the target's stats are JSON");
    assert!(st["broken"].is_null(), "{st}");
    let served = st["requests"].as_u64().expect("requests");
    let sent = r["traffic"]["requests"].as_u64().expect("traffic requests");
    let failed = r["traffic"]["failed"].as_u64().unwrap_or(0);
    assert!(
        served + failed >= sent && sent > 0,
        "the target served {served} requests, drill counted {sent} ({failed} failed)"
    );
    assert!(
        st["errors_5xx"].as_u64().expect("errors_5xx") <= 2,
        "the target answered more 5xx than the seed allows: {st}"
    );
    assert!(
        st["flag_fallbacks"].as_u64().expect("flag_fallbacks") >= 1,
        "the cache purge never made the flag middleware fall back to the database: {st}"
    );
    let builds = st["builds_per_key"].as_object().expect("builds_per_key");
    assert!(!builds.is_empty(), "{st}");
    for (key, n) in builds {
        assert!(
            n.as_u64().unwrap_or(0) >= 2,
            "{key} was built {n} time(s): the purge did not empty the cache, or it was never rebuilt"
        );
    }
}

async fn broken(variant: &str, drill: &str, failing: &str, measured_has: &str) {
    broken_with("docker", variant, drill, failing, measured_has).await;
}

async fn broken_with(workers: &str, variant: &str, drill: &str, failing: &str, measured_has: &str) {
    if !ready(workers) {
        return;
    }
    let (code, text, r, _dir) = demo(workers, Some(variant), false).await;
    // The last line of stdout names the cause: the drill, the check, what was measured.
    let stdout_end = text
        .split(STDERR)
        .next()
        .and_then(|o| o.lines().rfind(|l| !l.trim().is_empty()))
        .unwrap_or("");
    assert!(!r.is_null(), "{variant}: no run was recorded\n{text}");
    assert!(
        matches!(code, Some(1 | 3)),
        "{variant}: exit {code:?}\n{text}"
    );
    assert_ne!(r["verdict"], "PASS", "{variant}");
    let c = check(&r, drill, failing);
    assert_eq!(c["passed"], false, "{variant}: {c}");
    let m = c["measured"].as_str().unwrap_or("");
    assert!(m.contains(measured_has), "{variant}: {m}");
    assert!(
        text.contains(failing) && text.contains("FAIL"),
        "{variant}: the verdict table names the check\n{text}"
    );
    // The cause is a check of this drill that failed (the one above, or another the same
    // breakage failed first: a stampede can time requests out as well as slow them).
    let verdict = r["verdict"].as_str().unwrap_or("?");
    let named = stdout_end
        .strip_prefix(&format!("{verdict}: {drill}: "))
        .and_then(|rest| rest.split(" failed in the ").next())
        .unwrap_or_else(|| {
            panic!("{variant}: the closing line names {drill}: {stdout_end:?}\n{text}")
        });
    assert_eq!(
        check(&r, drill, named)["passed"],
        false,
        "{variant}: the closing line names a failed check: {stdout_end:?}"
    );
    assert!(
        stdout_end.contains("(limit "),
        "{variant}: the measured value against its limit: {stdout_end:?}"
    );
    assert!(
        r["still_changed"].as_array().is_some_and(Vec::is_empty),
        "{variant}: all reverted"
    );
    eprintln!(
        "broken {variant}: {drill}/{failing} FAIL: {m} (limit {})\n  closing line: {stdout_end}",
        c["limit"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_that_do_not_come_back_fail_the_queue_outage_drill() {
    broken(
        "no-worker-restart",
        "queue-outage",
        "backlog-drains",
        "queues:notifications pending 5,000 after",
    )
    .await;
}

/// Without Docker the worker is a local process (playbooks/local-processes.yaml): the queue
/// outage stops it with SIGTERM and its revert starts it again from the pid file's target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_passes_with_the_queue_worker_as_a_process() {
    if !ready("processes") {
        return;
    }
    let (code, text, r, dir) = demo("processes", None, true).await;
    let pid_file = dir.path().join("env/workers.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
    let log = std::fs::read_to_string(dir.path().join("env/workers.log")).unwrap_or_default();
    down(&dir);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(r["verdict"], "PASS", "{text}");
    assert_eq!(r["playbook"], "local-processes");
    let fault = r["faults"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["backend"] == "process"))
        .unwrap_or_else(|| panic!("a process fault in {r}"));
    assert_eq!(fault["state"], "reverted", "{fault}");
    assert!(
        !pid.trim().is_empty() && alive,
        "the restarted worker runs and its pid file names it: {pid:?}"
    );
    assert!(
        log.contains("(start 2)"),
        "the worker was started again after the outage:\n{log}"
    );
    eprintln!(
        "processes: drain {}",
        check(&r, "queue-outage", "backlog-drains")["measured"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_that_does_not_come_back_fails_the_queue_outage_drill() {
    broken_with(
        "processes",
        "no-worker-restart",
        "queue-outage",
        "backlog-drains",
        "queues:notifications pending 5,000 after",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_retry_on_failover_fails_the_db_failover_drill() {
    broken("no-retry", "db-failover", "transient-5xx", "5xx in").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_without_the_stampede_lock_fails_the_cache_purge_drill() {
    broken("no-stampede-lock", "cache-purge", "p95-increase", "p95").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_database_fallback_fails_the_cache_purge_drill() {
    broken(
        "no-db-fallback",
        "cache-purge",
        "api-errors-after-flush",
        "error_rate",
    )
    .await;
}

/// An API that hides its failure behind `200 {"error": …}`: the shipped playbook's body check
/// (`expect: {pointer: /data}`) counts it as an error, as it is, with no `check` in
/// `traffic.errors`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_behind_a_200_fail_the_cache_purge_drill_with_the_shipped_playbook() {
    broken(
        "error-body",
        "cache-purge",
        "api-errors-after-flush",
        "error_rate",
    )
    .await;
}

/// A posted playbook: the demo's traffic and its cache-purge drill, short.
const IN_CONTAINER: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata:
  name: in-container
target:
  base_url: http://127.0.0.1:8088
  allow:
    http: ["127.0.0.1"]
    redis: ["redis://127.0.0.1:6390"]
traffic:
  dataset: DATASET
  requests:
    - name: profile_activity
      path: /api/v1/communities/{community_id}/members/{member_id}/activity?per_page=50
      bearer: "{token}"
      expect: {pointer: /data}
  profile:
    - {rate: 40/s, hold: 4m}
  errors: [5xx, 429, timeout, connect, reset, check]
slo:
  p95: 800ms
  error_rate: 1%
drills:
  - uses: cache-purge
    at: 1m
    with:
      redis: redis://127.0.0.1:6390
"#;

/// `curl` with a bearer token: the status and the body.
fn api(method: &str, url: &str, token: &str, body: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url])
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = c.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_in_a_container_runs_a_drill_against_the_demo_target_through_its_api() {
    if !ready("docker") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let env_dir = dir.path().join("env");
    let up = Command::new("bash")
        .current_dir(repo())
        .arg("scripts/demo-env.sh")
        .args(["up", "--workers", "docker"])
        .env("DRILL_DEMO_DIR", &env_dir)
        .env("DRILL_TARGET_BIN", target_bin())
        .status()
        .expect("demo-env.sh up");
    assert!(up.success(), "the demo environment did not come up");
    let name = format!("drill-test-daemon-{}", std::process::id());
    let result = std::panic::catch_unwind(|| in_container(&dir, &env_dir, &name));
    let logs = Command::new("docker")
        .args(["logs", &name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    down(&dir);
    if let Err(e) = result {
        eprintln!("the daemon's log:\n{logs}");
        std::panic::resume_unwind(e);
    }
    assert!(
        logs.contains(r#""span":{"#),
        "JSON logs with the run's span: {logs}"
    );
}

fn in_container(dir: &tempfile::TempDir, env_dir: &Path, name: &str) {
    let bin = env!("CARGO_BIN_EXE_drill");
    let image = Command::new("bash")
        .current_dir(repo())
        .args(["scripts/image.sh", bin, "drill:test"])
        .output()
        .expect("scripts/image.sh");
    assert!(image.status.success(), "{image:?}");
    // What the chart mounts: playbooks, drills, the token file, a writable data volume.
    let tokens = dir.path().join("tokens");
    let token = operator_token(&tokens, "ci");
    let data = dir.path().join("data");
    let pbs = dir.path().join("playbooks");
    for d in [&data, &pbs] {
        std::fs::create_dir_all(d).expect("dir");
    }
    std::os::unix::fs::chown(&data, Some(10001), Some(10001)).expect("chown");
    let readable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    };
    readable(&tokens);
    // The operator's policy, as the chart renders it: the demo target's API and Redis.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: drill/v1\nkind: Policy\nallow:\n  http: [\"127.0.0.1\"]\n  redis: [\"redis://127.0.0.1:6390\"]\n",
    )
    .expect("policy");
    readable(&policy);
    // A posted playbook reads its dataset from the playbook directory only.
    std::fs::copy(
        env_dir.join("load_credentials.json"),
        pbs.join("load_credentials.json"),
    )
    .expect("dataset");
    readable(&pbs.join("load_credentials.json"));
    let port = free_port();
    let mount = |from: &Path, to: &str, ro: bool| {
        format!(
            "--volume={}:{to}{}",
            from.display(),
            if ro { ":ro" } else { "" }
        )
    };
    let env_s = env_dir.display().to_string();
    let run = Command::new("docker")
        .args(["run", "-d", "--name", name, "--network", "host"])
        .args([
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ])
        .args(["--tmpfs", "/tmp"])
        .arg(mount(&pbs, "/etc/drill/playbooks", true))
        .arg(mount(&repo().join("drills"), "/etc/drill/drills", true))
        .arg(mount(&tokens, "/etc/drill/secret/tokens", true))
        .arg(mount(&policy, "/etc/drill/policy/policy.yaml", true))
        .arg(mount(&data, "/var/lib/drill", false))
        .arg(mount(env_dir, &env_s, true))
        .arg("drill:test")
        .args(["daemon", "--playbooks", "/etc/drill/playbooks"])
        .args([
            "--drills",
            "/etc/drill/drills",
            "--tokens",
            "/etc/drill/secret/tokens",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--policy", "/etc/drill/policy/policy.yaml"])
        .args(["--db", "/var/lib/drill/history.db"])
        .args([
            "--report-dir",
            "/var/lib/drill/reports",
            "--log-format",
            "json",
        ])
        .output()
        .expect("docker run");
    assert!(run.status.success(), "{run:?}");
    let base = format!("http://127.0.0.1:{port}");
    let t0 = std::time::Instant::now();
    while api("GET", &format!("{base}/healthz"), "", None).0 != 200 {
        assert!(
            t0.elapsed().as_secs() < 20,
            "the daemon in the container did not answer"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let yaml = IN_CONTAINER.replace("DATASET", "load_credentials.json");
    let body = serde_json::json!({"yaml": yaml, "time_scale": 0.1}).to_string();
    let (s, b) = api("POST", &format!("{base}/api/v1/runs"), &token, Some(&body));
    assert_eq!(s, 202, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    let id = v["run"].as_str().expect("run id").to_owned();
    let t0 = std::time::Instant::now();
    let row = loop {
        let (_, b) = api("GET", &format!("{base}/api/v1/runs/{id}"), &token, None);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_default();
        if v["run"]["status"].as_str().is_some_and(|s| s != "running") {
            break v;
        }
        assert!(t0.elapsed().as_secs() < 90, "the run did not end: {v}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let (_, b) = api(
        "GET",
        &format!("{base}/api/v1/runs/{id}/report?format=json"),
        &token,
        None,
    );
    let r: serde_json::Value = serde_json::from_str(&b).expect("report");
    assert_eq!(row["run"]["status"], "passed", "{row}\n{r}");
    assert_eq!(r["verdict"], "PASS", "{r}");
    assert!(r["traffic"]["requests"].as_u64().unwrap_or(0) > 300, "{r}");
    let flush = check(&r, "cache-purge", "p95-increase");
    assert_eq!(flush["passed"], true, "{flush}");
    // The flush really happened: the target rebuilt its cache.
    let stats = Command::new("curl")
        .args(["-s", "http://127.0.0.1:8088/internal/stats"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let st: serde_json::Value = serde_json::from_str(&stats).expect("stats");
    let builds = st["builds_per_key"].as_object().expect("builds_per_key");
    assert!(
        !builds.is_empty() && builds.values().all(|n| n.as_u64().unwrap_or(0) >= 2),
        "the cache was not rebuilt after the flush: {st}"
    );
}
