//! What the end-to-end tests of `drill apply` share: a work directory with its own history
//! store, a running `drill` whose standard error is read line by line, the loopback fixture,
//! and the PostgreSQL replica's state.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use drill_engine::store::Store;
use drill_fixture::{Behaviour, Server};
use drill_testkit::{repo, run, stdout};

/// Rebuilds the streaming replica when an earlier run promoted it.
pub fn replica_ready() -> bool {
    Command::new("bash")
        .arg(repo().join("tests/services/postgres.sh"))
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn in_recovery() -> String {
    stdout(&run(
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            "5434",
            "-U",
            "postgres",
            "-Atqc",
            "select pg_is_in_recovery()",
        ],
    ))
}

/// A temporary directory with a history store and a report directory.
pub struct Work {
    pub dir: tempfile::TempDir,
    pub db: String,
}

impl Work {
    pub fn new() -> Work {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("history.db").display().to_string();
        Work { dir, db }
    }

    pub fn with_db(db: String) -> Work {
        Work {
            dir: tempfile::tempdir().expect("tempdir"),
            db,
        }
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drill"));
        c.args(args)
            .arg("--db")
            .arg(&self.db)
            .env_remove("DRILL_CRASH_POINT")
            .current_dir(self.dir.path());
        c
    }

    pub fn apply_args(&self, playbook: &Path, extra: &[&str]) -> Command {
        let mut c = self.cmd(&["apply"]);
        c.arg(playbook)
            .arg("--drills")
            .arg(repo().join("drills"))
            .arg("--report-dir")
            .arg(self.dir.path().join("reports"))
            .args(extra);
        c
    }

    pub fn drill(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("drill")
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.db).await.expect("store")
    }
}

/// A running `drill apply` whose standard error is read line by line.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn spawn(mut c: Command) -> Running {
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn drill");
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `what`.
    pub fn wait_for(&mut self, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                    self.seen.push(l);
                }
                panic!("drill exited before {what:?}:\n{}", self.seen.join("\n"));
            }
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let hit = l.contains(what);
                self.seen.push(l);
                if hit {
                    return;
                }
            }
        }
        let _ = self.child.kill();
        panic!(
            "no line with {what:?} within {within:?}:\n{}",
            self.seen.join("\n")
        );
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    /// Waits for the exit; returns the code, standard output and all of standard error.
    pub fn finish(mut self, within: Duration) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                let mut out = String::new();
                if let Some(mut o) = self.child.stdout.take() {
                    let _ = std::io::Read::read_to_string(&mut o, &mut out);
                }
                return (st.code(), out, self.seen.join("\n"));
            }
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "drill apply did not finish within {within:?}:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub async fn fixture() -> Server {
    Server::start(Behaviour {
        delay: Duration::from_millis(2),
        ..Behaviour::default()
    })
    .await
    .expect("fixture")
}

/// The report of the newest run in the store that has one (a refused run has none).
pub async fn last_report(w: &Work) -> serde_json::Value {
    let store = w.store().await;
    for run in store.runs(10).await.expect("runs") {
        if let Some(text) = store.report(&run.id, "json").await.expect("report") {
            return serde_json::from_str(&text).expect("json");
        }
    }
    panic!("no stored report");
}

pub fn nix_kill(pid: u32, sig: &str) {
    assert!(
        run("kill", &[&format!("-{sig}"), &pid.to_string()])
            .status
            .success()
    );
}

/// The newest run in the store ended `status`, its reason containing `reason`.
pub async fn assert_newest_run(w: &Work, status: &str, reason: &str) {
    let runs = w.store().await.runs(10).await.expect("runs");
    let run = runs.first().expect("a run");
    assert_eq!(run.status, status, "{run:?}");
    assert!(
        run.reason.as_deref().unwrap_or("").contains(reason),
        "{run:?}"
    );
}

/// Sends `sig` to every process of group `pgid`, as a terminal's Ctrl-C does.
pub fn nix_kill_group(pgid: u32, sig: &str) {
    assert!(
        run("kill", &[&format!("-{sig}"), "--", &format!("-{pgid}")])
            .status
            .success()
    );
}

/// Makes a script the test wrote executable.
pub fn chmod_x(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
