//! Distributed traffic (`traffic.distributed`, run_on: local): real shard processes of this
//! binary against the loopback fixture, their reports added up in the history store
//! (PostgreSQL and SQLite), one verdict; a guard that trips on the merged data, a Ctrl-C and
//! a daemon's halt each stop every shard; a shard that dies is an error of the run, not a
//! silent gap; shards cut off from the store stop by themselves.

mod common;

use std::time::{Duration, Instant};

use common::{Running, Work};
use drill_fixture::{Behaviour, Server};

const SHARDED: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: sharded}
target:
  base_url: BASE
  allow:
    http: ["127.0.0.1"]
    exec: ["true"]
traffic:
  requests: [{name: home, path: /}]
  profile:
    - {rate: 100/s}
    - {ramp_to: RATE, over: 2s}
    - {rate: RATE, hold: HOLD}
  distributed: {shards: SHARDS}
slo:
  p95: 500ms
  error_rate: 1%
guards:
  - name: error-rate
    when: error_rate > 20%
    for: 1s
drills:
  - name: hook
    at: 3s
    drill:
      baseline: 2s
      hold: 2s
      recovery: 2s
      faults:
        - {name: noop, action: exec, exec: {inject: {command: ["true"]}, revert: {command: ["true"]}}}
      checks:
        - {name: calm, slo: {error_rate: 1%}}
"#;

fn playbook(w: &Work, server: &Server, rate: &str, hold: &str, shards: u32) -> std::path::PathBuf {
    w.file(
        "sharded.yaml",
        &SHARDED
            .replace("BASE", &server.url(""))
            .replace("RATE", rate)
            .replace("HOLD", hold)
            .replace("SHARDS", &shards.to_string()),
    )
}

/// The slowest shard's stop after the abort, in seconds, from the engine's line
/// `shards: 4 of 4 stopped sending 0.19–0.20s after the abort`.
fn slowest_stop(line: &str) -> f64 {
    line.split('–')
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// Four shard processes split the schedule: the fixture counts every arrival of the one
/// schedule exactly once, the store's merged report counts the same, the thresholds and the
/// drill's check are evaluated once, on the merged data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_local_shards_send_the_one_schedule_and_are_judged_once() {
    // The store of staging, PostgreSQL (the other tests here use the SQLite default).
    let db = drill_testkit::postgres_db("drill_shards");
    if !drill_testkit::service("PostgreSQL on 127.0.0.1:5433", db.is_some()) {
        return;
    }
    let server = common::fixture().await;
    let w = Work::with_db(db.expect("checked"));
    let pb = playbook(&w, &server, "1000/s", "6s", 4);
    // Three bearer tokens from a dataset, so the test sees which record each arrival used.
    let yaml = std::fs::read_to_string(&pb).expect("playbook");
    w.file(
        "sharded.yaml",
        &yaml.replace(
            "  requests: [{name: home, path: /}]",
            "  dataset: creds.json\n  requests: [{name: home, path: /, bearer: \"{token}\"}]",
        ),
    );
    w.file(
        "creds.json",
        r#"[{"token": "tok-0"}, {"token": "tok-1"}, {"token": "tok-2"}]"#,
    );
    let run = Running::spawn(w.apply_args(&pb, &[]));
    let (code, out, err) = run.finish(Duration::from_secs(90));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(err.contains("shards: 4 of 4 processes started"), "{err}");
    assert!(err.contains("shards: 4 of 4 finished"), "{err}");

    let report = common::last_report(&w).await;
    let k6 = &report["k6_summary"];
    // A 2 s ramp from 100/s to 1000/s (1,100), then 6 s at 1000/s: 7,100 arrivals.
    let expected = 1_100 + 6_000;
    let reqs = k6["metrics"]["http_reqs"]["count"]
        .as_u64()
        .expect("http_reqs");
    assert_eq!(reqs, expected, "{k6}");
    assert_eq!(server.requests(), expected, "at the server");
    // Arrival i uses record i mod 3 of the one schedule, whichever shard sends it: 7,100 =
    // 3 x 2,366 + 2. (Shards counting their own arrivals from 0 would give 2,368, 2,368 and
    // 2,364: each shard's 1,775 arrivals leave two extra on the first two tokens.)
    let tokens = server.seen().tokens;
    let want: std::collections::BTreeMap<String, u64> =
        [("tok-0", 2_367), ("tok-1", 2_367), ("tok-2", 2_366)]
            .into_iter()
            .map(|(t, n)| (t.to_owned(), n))
            .collect();
    assert_eq!(tokens, want, "records split as in one process");
    let thresholds = k6["metrics"]["http_req_duration"]["thresholds"]
        .as_object()
        .expect("thresholds");
    assert_eq!(
        thresholds.len(),
        1,
        "one p95 threshold, evaluated once: {k6}"
    );
    // Each shard's part, in the report beside the merged figures: 7,100 = 4 x 1,775.
    let shards = &report["traffic"]["shards"];
    assert_eq!(shards["count"], 4, "{shards}");
    assert_eq!(shards["run_on"], "local", "{shards}");
    let each = shards["each"].as_array().expect("each shard");
    assert_eq!(each.len(), 4, "{shards}");
    for (k, p) in each.iter().enumerate() {
        assert_eq!(p["shard"], k as u64, "{p}");
        assert_eq!(p["sent"], 1_775, "{p}");
        assert_eq!(p["dropped"], 0, "{p}");
        assert_eq!(p["finished"], true, "{p}");
        assert!(p["stopped"].is_null(), "{p}");
    }
    let drill = &report["drills"][0];
    assert_eq!(drill["status"], "completed", "{drill}");
    // The drill's phases are measured on whole seconds of the merged data.
    let fault = &drill["phases"]["fault"];
    assert!(fault["requests"].as_u64().unwrap_or(0) >= 1_000, "{fault}");
    // Nothing is left in the store's shard reports: the run's report holds it all.
    let store = w.store().await;
    let id = report["run"].as_str().expect("run id");
    assert!(
        store
            .shard_reports(id, 0)
            .await
            .expect("reports")
            .is_empty()
    );
    let md = store
        .report(id, "markdown")
        .await
        .expect("markdown")
        .expect("stored");
    assert!(md.contains("4 shards (local), one schedule"), "{md}");
    assert!(
        md.contains("| 3/4 | 1775 | 1775 | 0 | 0 | yes |  |"),
        "{md}"
    );
}

/// A guard on the merged error rate trips, and every shard stops sending within a second of
/// the stop: measured by the shards (the run's log), and by the fixture, which sees no
/// request a second after the abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_on_merged_data_stops_every_shard_within_a_second() {
    let server = Server::start(Behaviour {
        delay: Duration::from_millis(2),
        fail_every: Some((2, 500)),
        ..Behaviour::default()
    })
    .await
    .expect("fixture");
    let w = Work::new();
    let pb = playbook(&w, &server, "400/s", "30s", 4);
    let mut run = Running::spawn(w.apply_args(&pb, &[]));
    run.wait_for("GUARD playbook/error-rate tripped", Duration::from_secs(60));
    let tripped = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let after_1s = server.requests();
    let (code, out, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(3), "aborted: {out}\n{err}");
    assert!(err.contains("guard playbook/error-rate tripped"), "{err}");
    assert_eq!(
        server.requests(),
        after_1s,
        "requests arrived more than 1 s after the abort ({:?} ago)",
        tripped.elapsed()
    );
    let line = err
        .lines()
        .find(|l| l.contains("stopped sending"))
        .unwrap_or_else(|| panic!("no stop measurement: {err}"));
    let worst = slowest_stop(line);
    assert!(line.contains("4 of 4"), "{line}");
    assert!(
        worst < 1.0,
        "the last shard stopped {worst}s after the abort: {line}"
    );
    // The schedule was 31 s long: the shards stopped well before its end.
    assert!(server.requests() < 400 * 20, "{}", server.requests());
}

/// Ctrl-C in the terminal: SIGINT reaches `drill apply` and its local shards together (one
/// process group). Each shard stops sending at once and still sends its last report, so the
/// run ends as soon as the revert is done and its merged count is every request the server
/// saw; the engine reverts the fault and exits 3. (A shard that died on the signal would leave
/// the engine waiting for last reports that never come, and its traffic uncounted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_engine_and_its_shards_together_and_every_request_is_counted() {
    use std::os::unix::process::CommandExt;
    let server = common::fixture().await;
    let w = Work::new();
    let pb = playbook(&w, &server, "300/s", "30s", 4);
    let mut cmd = w.apply_args(&pb, &[]);
    // As a shell does for a foreground job: the terminal's Ctrl-C goes to the whole group.
    cmd.process_group(0);
    let mut run = Running::spawn(cmd);
    run.wait_for("hook/noop: applied", Duration::from_secs(60));
    let pgid = run.child.id();
    common::nix_kill_group(pgid, "INT");
    let signalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let after_1s = server.requests();
    let (code, out, err) = run.finish(Duration::from_secs(60));
    let took = signalled.elapsed();
    for l in err
        .lines()
        .filter(|l| l.contains("shards:") || l.contains("SIGINT"))
    {
        eprintln!("{l}");
    }
    eprintln!("the run ended {took:?} after the signal");
    assert_eq!(code, Some(3), "aborted: {out}\n{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    for k in 0..4 {
        assert!(
            err.contains(&format!("shard {k}/4: stopping: interrupted by SIGINT")),
            "shard {k}/4 did not stop on the signal: {err}"
        );
    }
    assert!(err.contains("shards: 4 of 4 finished"), "{err}");
    assert!(!err.contains("sent no last report"), "{err}");
    assert!(err.contains("hook/noop: reverted"), "{err}");
    assert_eq!(
        server.requests(),
        after_1s,
        "requests arrived more than 1 s after Ctrl-C"
    );
    // No wait for missing last reports (that would be the traffic timeout plus 7 s).
    assert!(
        took < Duration::from_secs(15),
        "the run took {took:?} to end"
    );
    let report = common::last_report(&w).await;
    let reqs = report["k6_summary"]["metrics"]["http_reqs"]["count"]
        .as_u64()
        .expect("http_reqs");
    assert_eq!(
        reqs,
        server.requests(),
        "every request the server saw is counted"
    );
    let each = report["traffic"]["shards"]["each"]
        .as_array()
        .expect("each shard");
    assert_eq!(each.len(), 4);
    for p in each {
        assert_eq!(p["finished"], true, "{p}");
        assert_eq!(p["stopped"], "interrupted by SIGINT", "{p}");
    }
}

/// `drill halt` while the daemon runs a sharded playbook: the halt aborts the run, and every
/// shard stops sending within a second of it (measured by the shards against the abort), and
/// the fixture sees no request once the engine has their last reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halt_stops_every_shard_of_a_daemon_run_within_a_second() {
    let server = common::fixture().await;
    let w = Work::new();
    let dir = w.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).expect("dir");
    let yaml = std::fs::read_to_string(playbook(&w, &server, "300/s", "60s", 4)).expect("yaml");
    std::fs::write(
        dir.join("sharded.yaml"),
        yaml.replace(
            "metadata: {name: sharded}\n",
            "metadata: {name: sharded}\nschedule: {cron: \"* * * * * *\", concurrency: forbid}\n",
        ),
    )
    .expect("playbook");
    let mut d = Running::spawn(w.cmd(&["daemon", "--playbooks", &dir.display().to_string()]));
    d.wait_for("4 of 4 processes started", Duration::from_secs(30));
    d.wait_for("hook/noop: applied", Duration::from_secs(30));
    let halt = w.drill(&["halt", "--reason", "incident 7"]);
    assert!(halt.status.success(), "{}", drill_testkit::stdout(&halt));
    d.wait_for("stopped sending", Duration::from_secs(10));
    let line = d.seen.last().cloned().unwrap_or_default();
    let reported = server.requests();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    d.wait_for("ABORTED: halted by", Duration::from_secs(20));
    eprintln!("{line}");
    common::nix_kill(d.child.id(), "TERM");
    let (code, _, err) = d.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert!(line.contains("4 of 4"), "{line}");
    let worst = slowest_stop(&line);
    assert!(
        worst < 1.0,
        "the last shard stopped {worst}s after the halt: {line}"
    );
    assert_eq!(
        server.requests(),
        reported,
        "requests arrived after every shard had reported its stop"
    );
    common::assert_newest_run(&w, "aborted", "halted by").await;
}

/// The pid of shard `k`/4 of the run `run` has logged (other tests run shards too).
fn shard_pid(run: &Running, k: u32) -> u32 {
    let id = run
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.split(':').next()))
        .expect("the run's id")
        .to_owned();
    let pattern = format!("[-]-run {id} --shard {k}/4");
    let pids = drill_testkit::stdout(&drill_testkit::run("pgrep", &["-f", &pattern]));
    pids.lines()
        .next()
        .unwrap_or_else(|| panic!("no shard {k}/4 process"))
        .trim()
        .parse()
        .expect("pid")
}

/// Runs a 4-shard playbook at 200/s for 30 s, sends `sig` to shard `k`/4 four seconds in,
/// and returns how `drill apply` ended.
async fn signal_one_shard(k: u32, sig: &str) -> (Work, Option<i32>, String, String) {
    let server = common::fixture().await;
    let w = Work::new();
    let pb = playbook(&w, &server, "200/s", "30s", 4);
    let mut run = Running::spawn(w.apply_args(&pb, &[]));
    run.wait_for("4 of 4 processes started", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(4)).await;
    common::nix_kill(shard_pid(&run, k), sig);
    let (code, out, err) = run.finish(Duration::from_secs(60));
    (w, code, out, err)
}

/// A shard killed mid-run stops reporting: the run says which, and is aborted, not judged
/// on three quarters of its traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_dies_aborts_the_run_and_says_which() {
    let (_w, code, out, err) = signal_one_shard(2, "KILL").await;
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(err.contains("shard 2/4 stopped reporting"), "{err}");
}

/// A shard stopped on its own (SIGTERM: a pod evicted from its node) sends its last report
/// and ends early; the engine did not ask it to, so the run is aborted and says which shard
/// and why — its traffic is not the schedule's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_stopped_on_its_own_aborts_the_run_and_says_why() {
    let (w, code, out, err) = signal_one_shard(1, "TERM").await;
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(
        err.contains("shard 1/4 stopped before the end of its schedule: interrupted by SIGTERM"),
        "{err}"
    );
    assert!(!err.contains("stopped reporting"), "{err}");
    // The report names it too, and the three others as stopped by the engine.
    let report = common::last_report(&w).await;
    let each = report["traffic"]["shards"]["each"]
        .as_array()
        .expect("each shard");
    assert_eq!(each[1]["stopped"], "interrupted by SIGTERM", "{report}");
    assert_eq!(each[1]["finished"], true, "{report}");
    for k in [0, 2, 3] {
        let why = each[k]["stopped"].as_str().unwrap_or("");
        assert!(why.contains("shard 1/4 stopped before"), "{}", each[k]);
    }
}

/// A TCP proxy to PostgreSQL that can be cut like a partition: from then on it forwards
/// nothing and holds every connection open, old and new, so queries hang rather than fail.
mod partition {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::net::{TcpListener, TcpStream};

    pub struct Proxy {
        pub port: u16,
        cut: Arc<AtomicBool>,
    }

    impl Proxy {
        pub fn cut(&self) {
            self.cut.store(true, Ordering::SeqCst);
        }
    }

    pub async fn start(to: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let c = cut.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let cut = c.clone();
                tokio::spawn(async move {
                    if cut.load(Ordering::SeqCst) {
                        let _held = inbound;
                        std::future::pending::<()>().await;
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(to).await else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    tokio::join!(pipe(ri, wo, cut.clone()), pipe(ro, wi, cut));
                });
            }
        });
        Proxy { port, cut }
    }

    async fn pipe(mut r: OwnedReadHalf, mut w: OwnedWriteHalf, cut: Arc<AtomicBool>) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cut.load(Ordering::SeqCst) {
                let _held = (r, w);
                std::future::pending::<()>().await;
                return;
            }
            if w.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
}

/// The shards lose the store (a partition that holds their queries open) while the engine
/// keeps it: each shard stops sending by itself within the store-loss bound (5 s, plus one
/// bounded store call of 2 s, plus a second for a busy machine), says why, and the engine
/// aborts the run on their silence. (Measured here: 6.3 s after their last answer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_cut_off_from_the_store_stop_by_themselves() {
    let db = drill_testkit::postgres_db("drill_shards_cut");
    if !drill_testkit::service("PostgreSQL on 127.0.0.1:5433", db.is_some()) {
        return;
    }
    let db = db.expect("checked");
    let proxy = partition::start("127.0.0.1:5433").await;
    let via_proxy = db.replace("127.0.0.1:5433", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(via_proxy, db);
    let server = common::fixture().await;
    let w = Work::with_db(db);
    // The shards reach the store through the proxy; the engine directly.
    let shard_bin = w.file(
        "shard.sh",
        &format!(
            "#!/bin/sh\nDATABASE_URL='{via_proxy}' exec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_drill")
        ),
    );
    common::chmod_x(&shard_bin);
    let pb = playbook(&w, &server, "200/s", "30s", 2);
    let mut c = w.apply_args(&pb, &[]);
    c.env("DRILL_SHARD_BIN", &shard_bin);
    let mut run = Running::spawn(c);
    run.wait_for("2 of 2 processes started", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = server.requests();
    proxy.cut();
    let cut = Instant::now();
    // When the fixture saw its last request.
    let mut last = (server.requests(), Instant::now());
    while cut.elapsed() < Duration::from_secs(12) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = server.requests();
        if n != last.0 {
            last = (n, Instant::now());
        }
    }
    let (code, out, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(3), "aborted: {out}\n{err}");
    assert!(last.0 > before, "the shards sent on after the cut: {err}");
    let quiet_after = last.1.duration_since(cut);
    assert!(
        quiet_after < Duration::from_millis(8_000),
        "the last request came {quiet_after:?} after the cut\n{err}"
    );
    for k in 0..2 {
        assert!(
            err.contains(&format!(
                "shard {k}/2: stopping: the store has not answered"
            )),
            "{err}"
        );
    }
    assert!(
        out.contains("aborted: shard") && out.contains("stopped reporting"),
        "{out}\n{err}"
    );
    // The drill's fault phase came after the cut: nothing of it reached the engine, and its
    // check says so rather than passing on 0 requests.
    assert!(
        out.contains("calm could not be judged in the fault phase: no request was measured"),
        "{out}"
    );
    drill_testkit::drop_postgres_db("drill_shards_cut");
}

/// A Kubernetes API server of our own, enough for the shards' Job: it records every call,
/// and plays the Job controller by starting the Job's pods as local processes (its image's
/// command is this binary, with `JOB_COMPLETION_INDEX` and the env the manifest gives).
mod fake_api {
    use std::process::{Child, Command};
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, State};
    use axum::http::{Method, StatusCode, Uri};
    use axum::response::IntoResponse;
    use axum::routing::any;
    use serde_json::{Value, json};

    #[derive(Default)]
    pub struct Api {
        pub calls: Mutex<Vec<(String, String, Option<Value>)>>,
        pub job: Mutex<Option<Value>>,
        pods: Mutex<Vec<Child>>,
    }

    impl Api {
        pub fn calls(&self) -> Vec<(String, String, Option<Value>)> {
            self.calls.lock().expect("lock").clone()
        }
        pub fn pods_alive(&self) -> usize {
            let mut g = self.pods.lock().expect("lock");
            g.iter_mut()
                .map(|c| c.try_wait().ok().flatten().is_none())
                .filter(|alive| *alive)
                .count()
        }
    }

    impl Drop for Api {
        fn drop(&mut self) {
            for c in self.pods.lock().expect("lock").iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    async fn handle(
        State(api): State<Arc<Api>>,
        method: Method,
        uri: Uri,
        Path(_rest): Path<String>,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        let body: Option<Value> = serde_json::from_slice(&body).ok();
        api.calls.lock().expect("lock").push((
            method.to_string(),
            uri.path().to_owned(),
            body.clone(),
        ));
        let path = uri.path();
        let not_found = || {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})),
            )
                .into_response()
        };
        if path.ends_with("/jobs") && method == Method::POST {
            let job = body.unwrap_or_default();
            let n = job["spec"]["parallelism"].as_u64().unwrap_or(0);
            let c = &job["spec"]["template"]["spec"]["containers"][0];
            let args: Vec<String> = c["args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let url = c["env"][0]["value"].as_str().unwrap_or_default().to_owned();
            let mut pods = api.pods.lock().expect("lock");
            for k in 0..n {
                pods.push(
                    Command::new(env!("CARGO_BIN_EXE_drill"))
                        .args(&args)
                        .env("JOB_COMPLETION_INDEX", k.to_string())
                        .env("DATABASE_URL", &url)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .expect("a pod"),
                );
            }
            *api.job.lock().expect("lock") = Some(job.clone());
            return (StatusCode::CREATED, axum::Json(job)).into_response();
        }
        if path.contains("/jobs/") {
            let job = api.job.lock().expect("lock").clone();
            return match (method, job) {
                (Method::GET, Some(j)) => axum::Json(j).into_response(),
                (Method::DELETE, Some(j)) => {
                    // Background propagation: the pods go too.
                    *api.job.lock().expect("lock") = None;
                    for c in api.pods.lock().expect("lock").iter_mut() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    axum::Json(j).into_response()
                }
                _ => not_found(),
            };
        }
        if path.ends_with("/pods") && method == Method::GET {
            // A watch that sees nothing and ends (the engine watches again).
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            return (StatusCode::OK, "").into_response();
        }
        (StatusCode::FORBIDDEN, "not granted").into_response()
    }

    /// Starts it; returns it and a kubeconfig naming it.
    pub async fn start(dir: &std::path::Path) -> (Arc<Api>, std::path::PathBuf) {
        let api = Arc::new(Api::default());
        let app = axum::Router::new()
            .route("/{*rest}", any(handle))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let cfg = dir.join("kubeconfig");
        std::fs::write(
            &cfg,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: 'http://{addr}'}}}}]\nusers: [{{name: fake, user: {{token: t}}}}]\ncontexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: load}}}}]\ncurrent-context: fake\n"
            ),
        )
        .expect("kubeconfig");
        (api, cfg)
    }
}

fn kubernetes_playbook(w: &Work, server: &Server, hold: &str) -> std::path::PathBuf {
    w.file(
        "k8s.yaml",
        &SHARDED
            .replace("BASE", &server.url(""))
            .replace("RATE", "400/s")
            .replace("HOLD", hold)
            .replace(
                "distributed: {shards: SHARDS}",
                "distributed: {shards: 3, run_on: kubernetes, kubernetes: {image: registry.local/drill:0.1, namespace: load, start_within: 3s}}",
            ),
    )
}

/// `run_on: kubernetes` end to end, against an API server that starts the Job's pods as
/// local processes: the Job is created once with the run's spec, its pods are watched, the
/// run is judged on the merged reports of its 3 shards, and the Job is deleted at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_on_kubernetes_run_as_an_indexed_job_deleted_at_the_end() {
    let db = drill_testkit::postgres_db("drill_shards_k8s");
    if !drill_testkit::service("PostgreSQL on 127.0.0.1:5433", db.is_some()) {
        return;
    }
    let server = common::fixture().await;
    let w = Work::with_db(db.expect("checked"));
    let (api, kubeconfig) = fake_api::start(w.dir.path()).await;
    let pb = kubernetes_playbook(&w, &server, "6s");
    let mut c = w.apply_args(&pb, &[]);
    c.env("KUBECONFIG", &kubeconfig);
    let (code, out, err) = Running::spawn(c).finish(Duration::from_secs(90));
    assert_eq!(code, Some(0), "{out}\n{err}");
    // A 2 s ramp from 100/s to 400/s (500), then 6 s at 400/s.
    assert_eq!(server.requests(), 500 + 2_400, "{err}");
    let calls = api.calls();
    let posts: Vec<_> = calls.iter().filter(|c| c.0 == "POST").collect();
    assert_eq!(posts.len(), 1, "{calls:?}");
    let job = posts[0].2.as_ref().expect("a body");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["parallelism"], 3);
    assert_eq!(job["spec"]["completions"], 3);
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert!(job["spec"]["activeDeadlineSeconds"].as_i64().unwrap_or(0) > 9);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 600);
    let report = common::last_report(&w).await;
    let id = report["run"].as_str().expect("run id");
    assert_eq!(job["metadata"]["labels"]["drill.dev/run"], id);
    assert!(
        calls.iter().any(|c| c.0 == "GET" && c.1.ends_with("/pods")),
        "the pods are watched: {calls:?}"
    );
    let last = calls.last().expect("calls");
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        (
            "DELETE",
            format!("/apis/batch/v1/namespaces/load/jobs/drill-shards-{id}").as_str()
        ),
        "{calls:?}"
    );
    // The ledger says what was made and undone.
    let faults = report["faults"].as_array().expect("faults");
    assert!(
        faults
            .iter()
            .any(|f| f["fault"] == "shards-job" && f["state"] == "reverted"),
        "{faults:?}"
    );
    drop(api);
    drill_testkit::drop_postgres_db("drill_shards_k8s");
}

/// The engine dies mid-run (kill -9): its shards stop by themselves once the run's lease
/// runs out, and `drill recover` finds the Job in the ledger, reads it, and deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_shards_job_is_deleted_by_drill_recover() {
    let db = drill_testkit::postgres_db("drill_shards_recover");
    if !drill_testkit::service("PostgreSQL on 127.0.0.1:5433", db.is_some()) {
        return;
    }
    let server = common::fixture().await;
    let w = Work::with_db(db.expect("checked"));
    let (api, kubeconfig) = fake_api::start(w.dir.path()).await;
    let pb = kubernetes_playbook(&w, &server, "60s");
    let mut c = w.apply_args(&pb, &["--lease", "3s"]);
    c.env("KUBECONFIG", &kubeconfig);
    let mut run = Running::spawn(c);
    run.wait_for("hook: injecting", Duration::from_secs(60));
    run.kill9();
    let killed = Instant::now();
    // The shards see the lease run out on the store's clock and stop sending.
    tokio::time::sleep(Duration::from_secs(3 + 2)).await;
    let quiet = server.requests();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        server.requests(),
        quiet,
        "shards still send {:?} after their engine died",
        killed.elapsed()
    );
    assert_eq!(api.pods_alive(), 0, "every shard process ended by itself");
    assert!(
        api.job.lock().expect("lock").is_some(),
        "the Job is left over"
    );

    let mut rec = w.cmd(&["recover"]);
    rec.env("KUBECONFIG", &kubeconfig);
    let o = rec.output().expect("drill recover");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("deleted Job load/drill-shards-"), "{text}");
    assert!(api.job.lock().expect("lock").is_none(), "deleted");
    let calls = api.calls();
    let tail: Vec<&str> = calls.iter().rev().take(2).map(|c| c.0.as_str()).collect();
    assert_eq!(tail, ["DELETE", "GET"], "read, then delete: {calls:?}");
    drop(api);
    drill_testkit::drop_postgres_db("drill_shards_recover");
}
