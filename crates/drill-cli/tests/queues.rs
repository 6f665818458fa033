//! Job formats against the real job systems: the shipped `queue-outage` drill stops a real
//! RQ, Celery or Sidekiq worker (installed from PyPI and Debian by tests/services/up.sh),
//! enqueues jobs in that system's format while it is down, restarts it, and measures the
//! drain with the system's own pending count. A fast worker drains in time and works every
//! job (its counter in Redis says so); a slow one does not, and the drain check fails.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Running, Work, fixture, last_report};
use drill_testkit::{redis, redis_ready, repo, service};

/// Database 3 of the test Redis: the queues of these tests only.
const REDIS: &str = "redis://127.0.0.1:6379/3";

const PLAYBOOK: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: queues-FORMAT}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    processes: ["PIDFILE"]
    redis: ["redis://127.0.0.1:6379"]
    exec: ["WORKER_SH"]
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 20/s, hold: 4m}]
drills:
  - uses: queue-outage
    at: 1m
    with:
      workers:
        process:
          pid_file: PIDFILE
          restart:
            command: [WORKER_SH, FORMAT]
            env: ENV
      redis: REDIS
      format: FORMAT
      queue: drill-q
      task: TASK
      args: ["{n}"]
      jobs: 100
      hold: 40s
      drain_within: 2m
"#;

struct Worker {
    format: &'static str,
    task: &'static str,
}

const WORKERS: [Worker; 3] = [
    Worker {
        format: "rq",
        task: "rqjobs.work",
    },
    Worker {
        format: "celery",
        task: "celeryjobs.work",
    },
    Worker {
        format: "sidekiq",
        task: "DrillWork",
    },
];

fn worker_sh() -> PathBuf {
    repo().join("tests/queues/worker.sh")
}

fn installed(format: &str) -> bool {
    let py = std::env::var("DRILL_TEST_PY").unwrap_or_else(|_| "/var/lib/drill-test/py".into());
    match format {
        "sidekiq" => Command::new("sidekiq")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        f => PathBuf::from(py).join("bin").join(f).exists(),
    }
}

/// Kills the worker in the pid file when the test ends, however it ends.
struct Stopped(PathBuf);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// One drill: the worker takes `job_ms` per job. Returns the exit code, the drain check's
/// report entry and how many jobs the worker ran.
async fn outage(w: &Worker, job_ms: u32) -> (Option<i32>, serde_json::Value, String, String) {
    let work = Work::new();
    let pid_file = work.dir.path().join("worker.pid");
    let log = work.dir.path().join("worker.log");
    let env = serde_json::json!({
        "DRILL_REDIS": REDIS,
        "DRILL_QUEUE": "drill-q",
        "DRILL_JOB_MS": job_ms.to_string(),
        "DRILL_PIDFILE": pid_file,
        "DRILL_LOG": log,
    });
    redis(&["-n", "3", "FLUSHDB"]);
    let start = Command::new(worker_sh())
        .arg(w.format)
        .envs(
            env.as_object()
                .expect("env")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())),
        )
        .status()
        .expect("worker.sh");
    assert!(start.success());
    let _stopped = Stopped(pid_file.clone());
    // The worker is up before the drill stops it: it has written its pid and connected.
    std::thread::sleep(Duration::from_secs(2));
    let server = fixture().await;
    let pb = work.file(
        "queues.yaml",
        &PLAYBOOK
            .replace("BASE", &server.url(""))
            .replace("PIDFILE", &pid_file.display().to_string())
            .replace("WORKER_SH", &worker_sh().display().to_string())
            .replace("REDIS", REDIS)
            .replace("FORMAT", w.format)
            .replace("TASK", w.task)
            .replace("ENV", &env.to_string()),
    );
    let (code, out, err) = Running::spawn(work.apply_args(&pb, &["--time-scale", "0.05"]))
        .finish(Duration::from_secs(90));
    assert!(
        matches!(code, Some(0 | 1)),
        "{}: the run ended with a verdict\n{out}\n{err}",
        w.format
    );
    let r = last_report(&work).await;
    let check = r["drills"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "backlog-drains")
        .cloned()
        .expect("the drain check");
    let done = redis(&["-n", "3", "GET", &format!("drill:q:done:{}", w.format)]);
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (
        code,
        check,
        done,
        format!("{out}\n{err}\nworker log:\n{log}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_format_is_worked_by_its_real_workers_and_the_drain_is_measured() {
    if !service("redis on 127.0.0.1:6379", redis_ready()) {
        return;
    }
    for w in &WORKERS {
        if !service(
            &format!("{} worker (tests/services/up.sh)", w.format),
            installed(w.format),
        ) {
            continue;
        }
        // Fast: 100 jobs drain in well under the 6 s window, and every one was run.
        let (code, check, done, log) = outage(w, 0).await;
        assert_eq!(code, Some(0), "{}: a fast worker drains\n{log}", w.format);
        assert_eq!(check["passed"], true, "{}: {check}\n{log}", w.format);
        assert_eq!(
            done, "100",
            "{}: the real worker ran every job enqueued\n{log}",
            w.format
        );
        // Slow: 300 ms a job is 30 s for the backlog; the drain check measures it failing.
        let (code, check, done, log) = outage(w, 300).await;
        assert_eq!(code, Some(1), "{}: a slow worker fails\n{log}", w.format);
        assert_eq!(check["passed"], false, "{}: {check}\n{log}", w.format);
        let measured = check["measured"].as_str().unwrap_or_default();
        assert!(
            !measured.starts_with("0 "),
            "{}: the backlog was still there: {check}",
            w.format
        );
        let ran: u64 = done.parse().unwrap_or(0);
        assert!(
            ran > 0 && ran < 100,
            "{}: the worker was working the backlog, slowly ({ran} jobs)\n{log}",
            w.format
        );
    }
    redis(&["-n", "3", "FLUSHDB"]);
}
