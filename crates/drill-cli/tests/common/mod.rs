//! What the end-to-end tests of `drill apply` share: a work directory with its own history
//! store, a running `drill` whose standard error is read line by line, the loopback fixture,
//! and the PostgreSQL replica's state.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write as _};
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

/// `curl`: the status and the body.
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&[u8]>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if body.is_some() {
        c.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ]);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    if let Some(b) = body {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b)
            .expect("body");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// The daemon's base URL from its "API on http://ADDR/api/v1/" line.
pub fn api_base(line: &str) -> String {
    line.split("API on ")
        .nth(1)
        .expect("address")
        .trim()
        .trim_end_matches('/')
        .trim_end_matches("/api/v1")
        .to_owned()
}

pub fn token(w: &Work, file: &std::path::Path, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .current_dir(w.dir.path())
        .args([
            "token",
            "add",
            "--tokens",
            &file.display().to_string(),
            "--role",
            role,
            "--subject",
            &format!("{role}-1"),
        ])
        .output()
        .expect("drill token add");
    assert!(out.status.success(), "{out:?}");
    stdout(&out).trim().to_owned()
}

/// Where `name` is found along this process's `PATH`, as drill resolves a command's program
/// (`true` is a shell builtin, so `command -v` would not say).
pub fn which(name: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{name}", d.trim_end_matches('/')))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| panic!("{name} is not installed here"))
}

/// A policy that lets posted playbooks run commands and inline drills on loopback, with
/// `true` as the only program (what the API tests post).
pub fn open_policy(w: &Work) -> PathBuf {
    w.file(
        "policy.yaml",
        &format!(
            "apiVersion: drill/v1\nkind: Policy\nallow:\n  http: [\"127.0.0.1\"]\n  exec: [\"{}\"]\nposted: {{exec: true, inline_drills: true}}\n",
            which("true")
        ),
    )
}
