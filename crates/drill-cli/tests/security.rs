//! The daemon cannot be turned against its host (issue #27): one test per finding, each
//! against the real binary — a real daemon over real HTTP where the finding is the API's —
//! and each checking the host (files a command would have written, bytes of the store, a
//! server's request count), not only drill's own words. docs/SECURITY.md lists them.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Running, Work, api_base, call, chmod_x, fixture, token, which};
use drill_testkit::stdout;

/// A daemon of `w` on `dir` (its playbooks), with a policy file when given; its base URL.
fn daemon(w: &Work, dir: &Path, policy: Option<&Path>, env: &[(&str, &str)]) -> (Running, String) {
    let tokens = w.dir.path().join("tokens");
    let mut c = w.cmd(&[
        "daemon",
        "--playbooks",
        &dir.display().to_string(),
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        &tokens.display().to_string(),
        "--report-dir",
        &w.dir.path().join("reports").display().to_string(),
    ]);
    if let Some(p) = policy {
        c.arg("--policy").arg(p);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let mut d = Running::spawn(c);
    d.wait_for("API on http", Duration::from_secs(20));
    let base = api_base(d.seen.last().map_or("", String::as_str));
    (d, base)
}

/// The three tokens of `w`'s token file: viewer, operator, admin.
fn tokens(w: &Work) -> [String; 3] {
    let file = w.dir.path().join("tokens");
    ["viewer", "operator", "admin"].map(|r| token(w, &file, r))
}

fn post_yaml(base: &str, tok: &str, yaml: &str, params: serde_json::Value) -> (u16, String) {
    let body = serde_json::json!({"yaml": yaml, "params": params}).to_string();
    call(
        "POST",
        &format!("{base}/api/v1/runs"),
        Some(tok),
        Some(body.as_bytes()),
    )
}

/// `drill ARGS` with no `--db` (for the commands that take none).
fn bare(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(args)
        .output()
        .expect("drill")
}

fn stop(d: Running) -> String {
    common::nix_kill(d.child.id(), "TERM");
    let (_, _, err) = d.finish(Duration::from_secs(30));
    err
}

const HARMLESS: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: harmless}
target:
  base_url: BASE
  allow: {http: ["127.0.0.1"]}
traffic:
  requests: [{name: home, path: /}]
  profile: [{rate: 10/s, hold: 3s}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_playbook_runs_no_command_and_cannot_widen_the_policy() {
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    let [_, operator, _] = tokens(&w);
    let policy = w.file(
        "policy.yaml",
        &format!(
            "apiVersion: drill/v1\nkind: Policy\nallow:\n  http: [\"127.0.0.1\"]\n  exec: [\"{}\"]\n",
            which("true")
        ),
    );
    let (d, base) = daemon(&w, &dir, Some(&policy), &[]);
    let canary = w.dir.path().join("id-ran");
    // The attack of the issue: its own allow.exec, a shell in setup, a hook as a fault.
    let attack = format!(
        r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: attack}}
target:
  base_url: {}
  allow: {{http: ["127.0.0.1"], exec: [sh, "true"]}}
setup:
  - exec: {{command: [sh, -c, "id > {c}; echo $DATABASE_URL >> {c}"]}}
traffic:
  requests: [{{name: home, path: /}}]
  profile: [{{rate: 10/s, hold: 10s}}]
drills:
  - name: hook
    at: 2s
    drill:
      baseline: 1s
      hold: 1s
      recovery: 1s
      faults:
        - {{name: sh, action: exec, exec: {{inject: {{command: [sh, -c, "touch {c}"]}}, revert: {{command: ["true"]}}}}}}
"#,
        server.url(""),
        c = canary.display()
    );
    let (s, b) = post_yaml(&base, &operator, &attack, serde_json::json!({}));
    assert_eq!(s, 403, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    // Located, one per violation: the allow-list entry, the setup, both commands, the
    // inline drill.
    assert!(
        errors.iter().all(|e| e.contains("posted.yaml:")),
        "{errors:?}"
    );
    for (line, what) in [
        (6, "\"sh\" is outside the daemon's policy"),
        (8, "may not have setup steps"),
        (8, "may not run commands"),
        (16, "may not write its own drill"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("posted.yaml:{line}:")) && e.contains(what)),
            "line {line}: {what}: {errors:?}"
        );
    }
    // Nothing ran, as the host sees it.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!canary.exists(), "a posted command ran");
    assert!(
        w.store().await.runs(10).await.expect("runs").is_empty(),
        "no run was even recorded"
    );
    // The audit keeps the text's hash and the violations.
    let (_, a) = call(
        "GET",
        &format!("{base}/api/v1/audit"),
        Some(&operator),
        None,
    );
    let a: serde_json::Value = serde_json::from_str(&a).expect("audit");
    let row = &a["audit"][0];
    assert_eq!(row["status"], 403, "{a}");
    let detail = row["detail"].as_str().unwrap_or_default();
    use sha2::Digest as _;
    let hash: String = sha2::Sha256::digest(attack.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        detail.starts_with(&format!("posted playbook sha256 {hash} refused: "))
            && detail.contains("may not run commands"),
        "{detail}"
    );
    // Inside the policy, a posted playbook runs.
    let ok = HARMLESS.replace("BASE", &server.url(""));
    let (s, b) = post_yaml(&base, &operator, &ok, serde_json::json!({}));
    assert_eq!(s, 202, "{b}");
    stop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_without_a_policy_says_so_and_refuses_posted_playbooks() {
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    let [_, operator, _] = tokens(&w);
    let (d, base) = daemon(&w, &dir, None, &[]);
    assert!(
        d.seen
            .iter()
            .any(|l| l.contains("no --policy: the safe default policy")),
        "{:?}",
        d.seen
    );
    let (s, b) = post_yaml(
        &base,
        &operator,
        &HARMLESS.replace("BASE", &server.url("")),
        serde_json::json!({}),
    );
    assert_eq!(s, 403, "{b}");
    assert!(
        b.contains("no envelope") && b.contains("posted.yaml:6:"),
        "{b}"
    );
    stop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_value_of_the_daemons_environment_reaches_a_response_a_log_or_a_report() {
    const SECRET: &str = "CANARY-s3cr3t-9f1c";
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    // A loaded playbook that uses the secret (the operator's file may): in a step's URL
    // password and a header, the way a real staging playbook would.
    std::fs::write(
        dir.join("loaded.yaml"),
        format!(
            r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: loaded}}
target:
  base_url: {base}
  allow: {{http: ["127.0.0.1"]}}
setup:
  - http: {{url: "http://ops:${{DRILL_CANARY}}@{host}/warm", method: GET, headers: {{X-Api-Key: "${{DRILL_CANARY}}"}}, expect_status: [200, 404]}}
traffic:
  requests: [{{name: home, path: /}}]
  profile: [{{rate: 10/s, hold: 2s}}]
"#,
            base = server.url(""),
            host = server.url("").trim_start_matches("http://").trim_end_matches('/'),
        ),
    )
    .expect("playbook");
    let [viewer, operator, _] = tokens(&w);
    let policy = w.file(
        "policy.yaml",
        "apiVersion: drill/v1\nkind: Policy\nallow: {http: [\"127.0.0.1\"]}\nposted: {env: [DRILL_EXPOSED]}\n",
    );
    let db_url = format!("postgres://drill:{SECRET}@127.0.0.1:5433/drill");
    let (d, base) = daemon(
        &w,
        &dir,
        Some(&policy),
        &[
            ("DRILL_CANARY", SECRET),
            ("DATABASE_URL_CANARY", &db_url),
            ("DRILL_EXPOSED", &server.url("")),
        ],
    );
    let mut answers = Vec::new();
    // The issue's probe: a value of the environment in a field that echoes it.
    let probe = HARMLESS
        .replace("BASE", &server.url(""))
        .replace("hold: 3s", "hold: \"${DATABASE_URL_CANARY}\"");
    let (s, b) = post_yaml(&base, &operator, &probe, serde_json::json!({}));
    assert_eq!(s, 400, "{b}");
    assert!(
        b.contains("variable DATABASE_URL_CANARY is not set") && b.contains("params"),
        "{b}"
    );
    answers.push(b);
    // The same through params: the poster's own value, echoed as its name.
    let (s, b) = post_yaml(
        &base,
        &operator,
        &probe,
        serde_json::json!({"DATABASE_URL_CANARY": format!("x{SECRET}")}),
    );
    assert_eq!(s, 400, "{b}");
    assert!(
        b.contains("invalid duration \\\"${DATABASE_URL_CANARY}\\\""),
        "{b}"
    );
    answers.push(b);
    // A variable the policy exposes is read; the report prints its name, not its value.
    let exposed = HARMLESS.replace("BASE", "${DRILL_EXPOSED}");
    let (s, b) = post_yaml(&base, &operator, &exposed, serde_json::json!({}));
    assert_eq!(s, 202, "{b}");
    let posted_run = serde_json::from_str::<serde_json::Value>(&b).expect("json")["run"]
        .as_str()
        .expect("id")
        .to_owned();
    let (s, b) = call(
        "POST",
        &format!("{base}/api/v1/runs"),
        Some(&operator),
        Some(br#"{"playbook": "loaded"}"#),
    );
    assert_eq!(s, 202, "{b}");
    let loaded_run = serde_json::from_str::<serde_json::Value>(&b).expect("json")["run"]
        .as_str()
        .expect("id")
        .to_owned();
    let until = Instant::now() + Duration::from_secs(40);
    for id in [&posted_run, &loaded_run] {
        loop {
            let (_, b) = call(
                "GET",
                &format!("{base}/api/v1/runs/{id}"),
                Some(&viewer),
                None,
            );
            let v: serde_json::Value = serde_json::from_str(&b).expect("json");
            if v["run"]["status"] != "running" {
                assert_eq!(v["run"]["status"], "passed", "{v}");
                answers.push(b);
                break;
            }
            assert!(Instant::now() < until, "{v}");
            std::thread::sleep(Duration::from_millis(300));
        }
        for f in ["json", "md", "junit", "html"] {
            let (s, b) = call(
                "GET",
                &format!("{base}/api/v1/runs/{id}/report?format={f}"),
                Some(&viewer),
                None,
            );
            assert_eq!(s, 200, "{f}: {b}");
            answers.push(b);
        }
    }
    let (_, posted_report) = call(
        "GET",
        &format!("{base}/api/v1/runs/{posted_run}/report?format=json"),
        Some(&viewer),
        None,
    );
    assert!(
        !posted_report.contains(&server.url("")),
        "the exposed value shows as its name: {posted_report}"
    );
    for path in ["/api/v1/audit", "/api/v1/runs", "/metrics"] {
        answers.push(call("GET", &format!("{base}{path}"), Some(&viewer), None).1);
    }
    let log = stop(d);
    assert!(
        log.contains("ops:***@"),
        "the step's URL is logged, masked: {log}"
    );
    for (i, a) in answers.iter().enumerate() {
        assert!(!a.contains(SECRET), "answer {i} holds the secret: {a}");
    }
    assert!(!log.contains(SECRET), "the log holds the secret:\n{log}");
    for f in walk(&w.dir.path().join("reports")) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(!text.contains(SECRET), "{} holds the secret", f.display());
    }
    // `drill plan` and `drill validate` print the variable's name, never its value.
    let pb = dir.join("loaded.yaml");
    for cmd in [&["plan"][..], &["validate"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(cmd)
            .arg(&pb)
            .env("DRILL_CANARY", SECRET)
            .output()
            .expect("drill");
        let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{all}");
        assert!(!all.contains(SECRET), "{cmd:?}: {all}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_and_dir_cannot_change_which_program_runs() {
    let server = fixture().await;
    let w = Work::new();
    let evil = w.dir.path().join("evil");
    std::fs::create_dir_all(evil.join("scripts")).expect("dir");
    let canary = w.dir.path().join("evil-ran");
    for f in ["true", "scripts/hook.sh"] {
        let p = evil.join(f);
        std::fs::write(&p, format!("#!/bin/sh\ntouch {}\n", canary.display())).expect("evil");
        chmod_x(&p);
    }
    std::fs::create_dir_all(w.dir.path().join("scripts")).expect("dir");
    let good = w.dir.path().join("scripts/hook.sh");
    std::fs::write(&good, "#!/bin/sh\nexit 0\n").expect("hook");
    chmod_x(&good);
    let playbook = |step: &str| {
        format!(
            r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: escape}}
target:
  base_url: {}
  allow: {{http: ["127.0.0.1"], exec: ["true", ./scripts/hook.sh]}}
setup:
  - {step}
traffic:
  requests: [{{name: home, path: /}}]
  profile: [{{rate: 10/s, hold: 2s}}]
"#,
            server.url("")
        )
    };
    for (name, step, refused) in [
        (
            "path",
            format!(
                "exec: {{command: [\"true\"], env: {{PATH: \"{}\"}}}}",
                evil.display()
            ),
            format!("resolves to {}/true", evil.display()),
        ),
        (
            "dir",
            format!(
                "exec: {{command: [./scripts/hook.sh], dir: \"{}\"}}",
                evil.display()
            ),
            format!("resolves to {}/scripts/hook.sh", evil.display()),
        ),
    ] {
        let pb = w.file(&format!("{name}.yaml"), &playbook(&step));
        let out = w.apply_args(&pb, &[]).output().expect("apply");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}: {err}");
        assert!(
            err.contains(&refused) && err.contains("outside the allow-list"),
            "{name}: {err}"
        );
        assert!(!canary.exists(), "{name}: the other program ran");
    }
    // The allowed programs, resolved, are what `plan` shows and what runs.
    let pb = w.file(
        "fine.yaml",
        &playbook("exec: {command: [./scripts/hook.sh]}")
            .replace("setup:\n", "setup:\n  - exec: {command: [\"true\"]}\n"),
    );
    let plan = stdout(
        &Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(["plan", &pb.display().to_string()])
            .current_dir(w.dir.path())
            .output()
            .expect("plan"),
    );
    assert!(
        plan.contains(&format!("exec {}", which("true")))
            && plan.contains(&format!("exec {}", good.display())),
        "{plan}"
    );
    let out = w.apply_args(&pb, &[]).output().expect("apply");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Under a policy, PATH may not even be set.
    let policy = w.file(
        "policy.yaml",
        &format!(
            "apiVersion: drill/v1\nkind: Policy\nallow:\n  http: [\"127.0.0.1\"]\n  exec: [\"{}\", \"{}\"]\n",
            which("true"),
            good.display()
        ),
    );
    let pb = w.file(
        "env.yaml",
        &playbook("exec: {command: [\"true\"], env: {LD_PRELOAD: /tmp/x.so}}"),
    );
    let out = bare(&[
        "validate",
        "--policy",
        &policy.display().to_string(),
        &pb.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("env.yaml:8:") && err.contains("LD_PRELOAD may not be set"),
        "{err}"
    );
}

/// A server that answers every request with `307` to `to`, counting them.
async fn redirector(to: String) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let to = to.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let mut buf = vec![0u8; 8192];
                let _ = s.read(&mut buf).await;
                let r = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(r.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_out_of_the_allow_list_are_not_followed() {
    let server = fixture().await;
    // The place a redirect points to, outside the list: it must never be asked.
    let (outside, outside_hits) = redirector("http://127.0.0.1:9/".into()).await;
    let (inside, _) = redirector(format!("{outside}/stolen")).await;
    let w = Work::new();
    let host = |u: &str| u.trim_start_matches("http://").to_owned();
    let playbook = |what: &str| {
        format!(
            r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: redirect}}
target:
  base_url: {}
  allow: {{http: ["{}", "{}"]}}
{what}
traffic:
  requests: [{{name: home, path: /}}]
  profile: [{{rate: 10/s, hold: 6s}}]
"#,
            server.url(""),
            host(&server.url("")).trim_end_matches('/'),
            host(&inside),
        )
    };
    // A fault's POST, answered 307: not sent again anywhere.
    let fault = playbook(&format!(
        r#"drills:
  - name: d
    at: 2s
    drill:
      baseline: 1s
      hold: 1s
      recovery: 1s
      faults:
        - {{name: hook, action: http, http: {{inject: {{url: "{inside}/inject"}}, revert: {{url: "{inside}/revert"}}}}}}"#
    ));
    let pb = w.file("fault.yaml", &fault);
    let out = w
        .apply_args(&pb, &["--revert-timeout", "1s"])
        .output()
        .expect("apply");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("answered 307, a redirect to")
            && err.contains("follows no redirect of a POST"),
        "{err}"
    );
    // A GET step, redirected outside the list: refused, named.
    let step = playbook(&format!(
        "setup:\n  - http: {{url: \"{inside}/warm\", method: GET}}"
    ));
    // (A store of its own: the first run's revert is still refused, as it should be.)
    let w = Work::new();
    let pb = w.file("step.yaml", &step);
    let out = w.apply_args(&pb, &[]).output().expect("apply");
    let err = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("redirected to {outside}/stolen"))
            && err.contains("outside the allow-list"),
        "{err}"
    );
    assert_eq!(
        outside_hits.load(Ordering::SeqCst),
        0,
        "the place outside the list was asked"
    );
}

/// Parses an OpenMetrics exposition with Python's prometheus_client (installed by
/// tests/services/up.sh); the label sets of every sample.
fn parse_openmetrics(text: &str) -> Result<Vec<String>, String> {
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        print(s.name, sorted(s.labels.items()))
"#;
    let py = std::env::var("DRILL_TEST_PY").unwrap_or_else(|_| "/var/lib/drill-test/py".into());
    let mut child = Command::new(Path::new(&py).join("bin/python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    if out.status.success() {
        Ok(stdout(&out).lines().map(str::to_owned).collect())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_refused_and_metrics_parse_with_a_real_openmetrics_parser() {
    if !drill_testkit::service(
        "Python's prometheus_client (bash tests/services/up.sh)",
        parse_openmetrics("# EOF\n").is_ok(),
    ) {
        return;
    }
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    let [viewer, operator, _] = tokens(&w);
    let policy = w.file(
        "policy.yaml",
        &format!(
            "apiVersion: drill/v1\nkind: Policy\nallow:\n  http: [\"127.0.0.1\"]\n  exec: [\"{}\"]\nposted: {{exec: true, inline_drills: true}}\n",
            which("true")
        ),
    );
    let (d, base) = daemon(&w, &dir, Some(&policy), &[]);
    let with_name = |name: &str| {
        format!(
            r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: names}}
target:
  base_url: {}
  allow: {{http: ["127.0.0.1"], exec: ["true"]}}
traffic:
  requests: [{{name: home, path: /}}]
  profile: [{{rate: 20/s, hold: 5s}}]
drills:
  - name: {name}
    at: 1s
    drill:
      baseline: 1s
      hold: 1s
      recovery: 1s
      faults:
        - {{name: noop, action: exec, exec: {{inject: {{command: ["true"]}}, revert: {{command: ["true"]}}}}}}
"#,
            server.url("")
        )
    };
    for hostile in [
        r#""x\"} 1\ndrill_halt_active{fake=\"1""#,
        r#""<img src=x onerror=alert(1)>""#,
        r#""a b""#,
    ] {
        let (s, b) = post_yaml(&base, &operator, &with_name(hostile), serde_json::json!({}));
        assert_eq!(s, 400, "{hostile}: {b}");
        assert!(
            b.contains("posted.yaml:11:") && b.contains("invalid drill name"),
            "{hostile}: {b}"
        );
    }
    // The widest name allowed runs, and every scrape parses.
    let (s, b) = post_yaml(
        &base,
        &operator,
        &with_name("Edge_case.drill-1"),
        serde_json::json!({}),
    );
    assert_eq!(s, 202, "{b}");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, m) = call("GET", &format!("{base}/metrics"), Some(&viewer), None);
        assert_eq!(s, 200);
        let samples = parse_openmetrics(&m).unwrap_or_else(|e| panic!("{e}\n{m}"));
        assert!(!m.contains("fake"), "{m}");
        if samples.iter().any(|l| {
            l.starts_with("drill_runs_total ")
                && l.contains("('outcome', 'passed')")
                && l.contains("('playbook', 'names')")
        }) {
            assert!(
                samples
                    .iter()
                    .any(|l| l.contains("('drill', 'Edge_case.drill-1')")),
                "{samples:?}"
            );
            break;
        }
        assert!(Instant::now() < until, "{m}");
        std::thread::sleep(Duration::from_millis(300));
    }
    stop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_beyond_the_maximum_is_refused_and_sigterm_ends_apply_at_the_highest_rate() {
    let server = fixture().await;
    let w = Work::new();
    let pb = |rate: &str, hold: &str| {
        w.file(
            "rate.yaml",
            &HARMLESS.replace("BASE", &server.url("")).replace(
                "rate: 10/s, hold: 3s",
                &format!("rate: {rate}, hold: {hold}"),
            ),
        )
    };
    let huge = pb("1e18/s", "1s");
    let started = Instant::now();
    let out = bare(&["validate", &huge.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("rate.yaml:9:20: error: 1000000000000000000/s is above drill's maximum of 200000/s per process"),
        "{out:?}"
    );
    let out = w.apply_args(&huge, &[]).output().expect("apply");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = w.drill(&[
        "load",
        "--url",
        &server.url(""),
        "--rate",
        "1e18/s",
        "--duration",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // At the highest rate allowed, the first SIGTERM still ends the run within its revert
    // timeout.
    let top = pb("200000/s", "60s");
    let mut r = Running::spawn(w.apply_args(&top, &["--revert-timeout", "5s"]));
    r.wait_for("traffic: harmless", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let signalled = Instant::now();
    common::nix_kill(r.child.id(), "TERM");
    let (code, _, err) = r.finish(Duration::from_secs(30));
    let took = signalled.elapsed();
    eprintln!("SIGTERM at 200,000/s: apply ended {took:?} later");
    assert_eq!(code, Some(3), "{err}");
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM took {took:?}:\n{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_the_playbooks_never_stalls_the_api_nor_the_halt() {
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("long.yaml"),
        HARMLESS
            .replace("BASE", &server.url(""))
            .replace("harmless", "long")
            .replace("hold: 3s", "hold: 60s"),
    )
    .expect("playbook");
    let fifo = dir.join("x.yaml");
    assert!(
        drill_testkit::run("mkfifo", &[&fifo.display().to_string()])
            .status
            .success()
    );
    let [viewer, operator, admin] = tokens(&w);
    let (d, base) = daemon(&w, &dir, None, &[]);
    // /healthz answers at once, again and again, and the FIFO is one file's error.
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(call("GET", &format!("{base}/healthz"), None, None).0, 200);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    let (_, b) = call(
        "GET",
        &format!("{base}/api/v1/playbooks"),
        Some(&viewer),
        None,
    );
    assert!(b.contains("it is a FIFO") && b.contains("\"long\""), "{b}");
    // A halt still lands: the running run is aborted within 2 s.
    let (s, b) = call(
        "POST",
        &format!("{base}/api/v1/runs"),
        Some(&operator),
        Some(br#"{"playbook": "long"}"#),
    );
    assert_eq!(s, 202, "{b}");
    let id = serde_json::from_str::<serde_json::Value>(&b).expect("json")["run"]
        .as_str()
        .expect("id")
        .to_owned();
    std::thread::sleep(Duration::from_secs(2));
    let halted = Instant::now();
    let (s, b) = call(
        "POST",
        &format!("{base}/api/v1/halt"),
        Some(&admin),
        Some(br#"{"reason": "fifo test"}"#),
    );
    assert_eq!(s, 200, "{b}");
    loop {
        let (_, b) = call(
            "GET",
            &format!("{base}/api/v1/runs/{id}"),
            Some(&viewer),
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&b).expect("json");
        if v["run"]["status"] == "aborted" {
            eprintln!(
                "the halt aborted the run {:?} after it was posted",
                halted.elapsed()
            );
            break;
        }
        assert!(halted.elapsed() < Duration::from_secs(2), "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(d);
    // `drill validate` refuses a device at once instead of reading it for ever.
    let t = Instant::now();
    let out = bare(&["validate", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("it is a device"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_never_printed() {
    let server = fixture().await;
    let w = Work::new();
    let host = server
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let pb = w.file(
        "secrets.yaml",
        &format!(
            r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: secrets}}
target:
  base_url: http://u:PW1base@{host}/
  allow:
    http: ["127.0.0.1"]
    redis: ["redis://127.0.0.1:6379"]
    sql: ["postgres://127.0.0.1:5433"]
setup:
  - http: {{url: "http://u:PW2step@{host}/warm", method: GET, expect_status: [200, 404]}}
traffic:
  requests: [{{name: home, path: /}}]
  profile: [{{rate: 10/s, hold: 3s}}]
guards:
  - {{when: value > 1000000, probe: {{redis: {{url: "redis://:PW3redis@127.0.0.1:6379/0", dbsize: true}}}}}}
  - {{when: value > 1000000, probe: {{sql: {{url: "postgres://postgres:PW4sql@127.0.0.1:5433/postgres", query: "select 1"}}}}}}
"#
        ),
    );
    let plan = bare(&["plan", &pb.display().to_string()]);
    let text = format!("{}{}", stdout(&plan), String::from_utf8_lossy(&plan.stderr));
    assert!(plan.status.success(), "{text}");
    for pw in ["PW1base", "PW2step", "PW3redis", "PW4sql"] {
        assert!(!text.contains(pw), "plan prints {pw}: {text}");
    }
    assert!(text.contains("u:***@"), "{text}");
    // The run's log: the step's URL, masked.
    let out = w.apply_args(&pb, &["--dry-run"]).output().expect("apply");
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    for pw in ["PW1base", "PW2step", "PW3redis", "PW4sql"] {
        assert!(!text.contains(pw), "apply prints {pw}: {text}");
    }
    // Errors of --db and --server.
    for (args, pw) in [
        (
            &[
                "runs",
                "--db",
                "postgres://127.0.0.1:1/x?user=a&password=PW5query",
            ][..],
            "PW5query",
        ),
        (
            &["runs", "--db", "mysql://u:PW6mysql@127.0.0.1/x"][..],
            "PW6mysql",
        ),
        (
            &["runs", "--db", "postgres://u:PW7pg@127.0.0.1:1/x"][..],
            "PW7pg",
        ),
        (
            &["runs", "--server", "http://u:PW8server@127.0.0.1:1"][..],
            "PW8server",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(args)
            .env("DRILL_TOKEN", "x")
            .output()
            .expect("drill");
        let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{args:?}: {text}");
        assert!(!text.contains(pw), "{args:?} prints {pw}: {text}");
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_reports_and_tokens_are_private() {
    let server = fixture().await;
    let w = Work::new();
    let pb = w.file("p.yaml", &HARMLESS.replace("BASE", &server.url("")));
    // A permissive umask: the files are 0600 anyway.
    let out = Command::new("sh")
        .args(["-c", "umask 022; exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_drill"))
        .args(["apply", "--db", &w.db, "--report-dir"])
        .arg(w.dir.path().join("reports"))
        .arg(&pb)
        .current_dir(w.dir.path())
        .output()
        .expect("apply");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let db = Path::new(&w.db);
    for f in [
        db.to_path_buf(),
        std::path::PathBuf::from(format!("{}-wal", w.db)),
        std::path::PathBuf::from(format!("{}-shm", w.db)),
    ] {
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    let reports = walk(&w.dir.path().join("reports"));
    assert_eq!(reports.len(), 5, "{reports:?}");
    for f in &reports {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    // An existing store readable by others is narrowed, and the log says so.
    std::fs::set_permissions(db, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let out = w.drill(&["runs"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(db), 0o600);
    // Tokens: created 0600; a wider file is warned about, by `token add` and the daemon.
    let file = w.dir.path().join("tokens");
    let t = token(&w, &file, "viewer");
    assert_eq!(mode(&file), 0o600);
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let out = bare(&[
        "token",
        "add",
        "--tokens",
        &file.display().to_string(),
        "--role",
        "admin",
        "--subject",
        "bob",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mode 644, readable by others"),
        "{out:?}"
    );
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    let (d, base) = daemon(&w, &dir, None, &[]);
    assert_eq!(
        call("GET", &format!("{base}/api/v1/runs"), Some(&t), None).0,
        200
    );
    let log = stop(d);
    assert!(log.contains("is mode 644, readable by others"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_keeps_no_secret_in_clear_and_recover_still_reverts() {
    const SECRET: &str = "LEDGER-CANARY-7e2a";
    let server = fixture().await;
    let w = Work::new();
    let reverted = w.dir.path().join("reverted");
    let pb = w.file(
        "ledger.yaml",
        &format!(
            r#"apiVersion: drill/v1
kind: Playbook
metadata: {{name: ledger}}
target:
  base_url: {}
  allow: {{http: ["127.0.0.1"], exec: ["true", sh]}}
traffic:
  requests: [{{name: home, path: /}}]
  profile: [{{rate: 10/s, hold: 1m}}]
drills:
  - name: d
    at: 2s
    drill:
      baseline: 1s
      hold: 30s
      recovery: 1s
      faults:
        - name: hook
          action: exec
          exec:
            inject: {{command: ["true"]}}
            revert: {{command: [sh, -c, 'printf %s "$API_KEY" > {}'], env: {{API_KEY: "{SECRET}"}}}}
"#,
            server.url(""),
            reverted.display()
        ),
    );
    let mut c = w.apply_args(&pb, &[]);
    c.env("DRILL_CRASH_POINT", "applied");
    let mut r = Running::spawn(c);
    r.wait_for("drill: crash point applied", Duration::from_secs(30));
    r.kill9();
    // The store's bytes, as a reader of the file sees them.
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(mut f) = std::fs::File::open(format!("{}{suffix}", w.db)) {
            f.read_to_end(&mut bytes).expect("read");
        }
    }
    assert!(!bytes.is_empty());
    assert!(
        !bytes.windows(SECRET.len()).any(|x| x == SECRET.as_bytes()),
        "the ledger holds the exec's env in clear"
    );
    assert!(
        bytes.windows(10).any(|x| x == b"sealed:v1:"),
        "the record is in the store, sealed"
    );
    // Another key opens nothing and runs nothing.
    let other = w
        .cmd(&["recover", "--revert-timeout", "2s"])
        .env("DRILL_LEDGER_KEY", "00".repeat(32))
        .output()
        .expect("recover");
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(4), "{err}");
    assert!(err.contains("sealed with another ledger key"), "{err}");
    assert!(!reverted.exists(), "nothing ran with the wrong key");
    // The key beside the store opens it: the revert runs with the secret it needs.
    assert_eq!(mode(Path::new(&format!("{}.key", w.db))), 0o600);
    let ok = w.drill(&["recover", "--revert-timeout", "10s"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&reverted).expect("the revert ran"),
        SECRET
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_edges_hold() {
    let server = fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("short.yaml"),
        HARMLESS.replace("BASE", &server.url("")),
    )
    .expect("playbook");
    let [viewer, operator, admin] = tokens(&w);
    let (d, base) = daemon(&w, &dir, None, &[]);
    let url = |p: &str| format!("{base}{p}");
    // A run to read.
    let (s, b) = call(
        "POST",
        &url("/api/v1/runs"),
        Some(&operator),
        Some(br#"{"playbook": "harmless"}"#),
    );
    assert_eq!(s, 202, "{b}");
    let id = serde_json::from_str::<serde_json::Value>(&b).expect("json")["run"]
        .as_str()
        .expect("id")
        .to_owned();
    // `bearer` in any case.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", &format!("Authorization: bearer {viewer}")])
        .arg(url("/api/v1/runs"))
        .output()
        .expect("curl");
    assert_eq!(stdout(&out), "200");
    // Ids: a huge one and a pattern are 404, not 500 nor another run.
    let huge = "a".repeat(50_000);
    assert_eq!(
        call(
            "GET",
            &url(&format!("/api/v1/runs/{huge}")),
            Some(&viewer),
            None
        )
        .0,
        404
    );
    let (s, b) = call("GET", &url("/api/v1/runs/%25"), Some(&viewer), None);
    assert_eq!(s, 404, "{b}");
    // A refused POST with a 60 KB path is audited with a cut path.
    let long = "b".repeat(60_000);
    let (s, _) = call(
        "POST",
        &url(&format!("/api/v1/runs/{long}/abort")),
        Some(&viewer),
        None,
    );
    assert_eq!(s, 403);
    let (_, a) = call("GET", &url("/api/v1/audit"), Some(&viewer), None);
    let a: serde_json::Value = serde_json::from_str(&a).expect("audit");
    assert!(
        a["audit"][0]["path"]
            .as_str()
            .expect("path")
            .chars()
            .count()
            <= 257,
        "{}",
        &a.to_string()[..300]
    );
    // Every error is JSON.
    for (method, path, body, status) in [
        ("GET", "/nope", None, 404),
        ("GET", "/api/v1/nope", None, 404),
        ("DELETE", "/api/v1/runs", None, 405),
        ("GET", "/api/v1/runs?limit=abc", None, 400),
        ("POST", "/api/v1/runs", Some(vec![b' '; 70 * 1024]), 413),
    ] {
        let (s, b) = call(method, &url(path), Some(&admin), body.as_deref());
        assert_eq!(s, status, "{method} {path}: {b}");
        let v: serde_json::Value =
            serde_json::from_str(&b).unwrap_or_else(|e| panic!("{method} {path}: {e}: {b}"));
        assert!(v["error"].is_string(), "{method} {path}: {b}");
    }
    // Each report format is itself.
    let until = Instant::now() + Duration::from_secs(30);
    while call(
        "GET",
        &url(&format!("/api/v1/runs/{id}/report?format=md")),
        Some(&viewer),
        None,
    )
    .0 != 200
    {
        assert!(Instant::now() < until, "no report");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (_, md) = call(
        "GET",
        &url(&format!("/api/v1/runs/{id}/report?format=md")),
        Some(&viewer),
        None,
    );
    assert!(md.starts_with('#') && !md.starts_with('{'), "{md}");
    let (_, html) = call(
        "GET",
        &url(&format!("/api/v1/runs/{id}/report?format=html")),
        Some(&viewer),
        None,
    );
    assert!(html.contains("<html"), "{}", &html[..200.min(html.len())]);
    // A half-sent request is closed after the header timeout, not held for good.
    let mut half = TcpStream::connect(base.trim_start_matches("http://")).expect("connect");
    half.write_all(b"GET /api/v1/runs HTTP/1.1\r\nHost: x\r\n")
        .expect("half");
    half.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let t = Instant::now();
    let mut buf = [0u8; 256];
    let _ = half.read(&mut buf);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "a half-sent request was held {:?}",
        t.elapsed()
    );
    // At most 512 connections at once: the next is closed at once; the cap frees itself
    // when the idle ones time out.
    let addr = base.trim_start_matches("http://").to_owned();
    let held: Vec<TcpStream> = (0..512)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).expect("connect");
            s.write_all(b"GET /healthz HTTP/1.1\r\n").expect("half");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut extra = TcpStream::connect(&addr).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    match extra.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a connection over the cap was not closed at once: {other:?}"),
    }
    drop(held);
    let freed = Instant::now();
    while call("GET", &url("/healthz"), None, None).0 != 200 {
        assert!(
            freed.elapsed() < Duration::from_secs(15),
            "the cap did not free"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A token removed from the file is refused within 2 s, no restart.
    let file = w.dir.path().join("tokens");
    let kept: String = std::fs::read_to_string(&file)
        .expect("tokens")
        .lines()
        .filter(|l| !l.starts_with("viewer "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, kept).expect("rewrite");
    let removed = Instant::now();
    while call("GET", &url("/api/v1/runs"), Some(&viewer), None).0 != 401 {
        assert!(
            removed.elapsed() < Duration::from_secs(2),
            "the removed token still works"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(call("GET", &url("/api/v1/runs"), Some(&admin), None).0, 200);
    stop(d);
    // A subject with a control character is refused.
    let out = bare(&[
        "token",
        "add",
        "--tokens",
        &file.display().to_string(),
        "--role",
        "admin",
        "--subject",
        "a\u{7}b",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_tls_with_the_given_certificate() {
    let w = Work::new();
    let have = drill_testkit::run("openssl", &["version"]).status.success();
    if !drill_testkit::service("openssl (bash tests/services/up.sh)", have) {
        return;
    }
    let (cert, key) = (w.dir.path().join("cert.pem"), w.dir.path().join("key.pem"));
    let made = drill_testkit::run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            &key.display().to_string(),
            "-out",
            &cert.display().to_string(),
        ],
    );
    assert!(made.status.success(), "{made:?}");
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    let [viewer, ..] = tokens(&w);
    // A key that does not go with the certificate: refused at start-up, exit 2.
    let other = w.file(
        "other.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let out = w
        .cmd(&[
            "daemon",
            "--playbooks",
            &dir.display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--tokens",
            &w.dir.path().join("tokens").display().to_string(),
        ])
        .args([
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &other.display().to_string(),
        ])
        .output()
        .expect("daemon");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let mut c = w.cmd(&[
        "daemon",
        "--playbooks",
        &dir.display().to_string(),
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        &w.dir.path().join("tokens").display().to_string(),
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
    ]);
    c.env_remove("RUST_LOG");
    let mut d = Running::spawn(c);
    d.wait_for("API on https://", Duration::from_secs(20));
    let base = api_base(d.seen.last().map_or("", String::as_str));
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&cert)
        .args(["-H", &format!("Authorization: Bearer {viewer}")])
        .arg(format!("{base}/api/v1/runs"))
        .output()
        .expect("curl");
    assert_eq!(stdout(&out), "200", "{out:?}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = base.replace("https://", "http://");
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("{plain}/healthz"))
        .output()
        .expect("curl");
    assert_ne!(stdout(&out), "200");
    stop(d);
}
