//! `drill apply`: one run of a validated playbook.
//!
//! Order of a run: reconcile (revert what dead runs left) → record the run and take its
//! target locks → preflight every fault and probe (no mutation; any failure aborts before
//! anything changes) → setup steps → traffic for the whole profile, and meanwhile each drill
//! on its timeline: baseline, inject (intent stored first, then applied), actions, hold,
//! revert, recovery checks — with guards evaluated at least every second and the lease
//! renewed — → a final revert sweep → teardown → verdict, reports, release.
//!
//! A run is never reported as passed while anything it changed is still changed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drill_faults::{RevertRecord, Reverted};
use drill_load::metrics::{Recorder, Stats};
use drill_spec::cond::Subject;
use drill_spec::model::{
    Action, Allow, Check, DrillSpec, Fault, Guard, HttpCall, Moment, Phase, Probe, Step, TargetRef,
};
use drill_spec::timeline::{self, Start};
use drill_spec::{ResolvedDrill, ValidPlaybook};
use serde::Serialize;
use tokio::sync::watch;

use crate::checks::{self, CheckResult, ProbeOutcome, fmt_dur};
use crate::owner::Owner;
use crate::recover::{self, Recovered};
use crate::store::{FaultRow, FaultState, RunRow, Store, StoreError, now_ms};
use crate::{Log, report};

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// Multiplies every duration of the playbook (0.1 runs a 9-minute plan in 54 s).
    pub time_scale: f64,
    /// Preflight only: resolve targets, read probes, print what would change; no mutation,
    /// no traffic, nothing stored.
    pub dry_run: bool,
    /// Where the reports go (a directory per run).
    pub report_dir: Option<PathBuf>,
    /// How long a run's lease lasts without a heartbeat (renewed every third of it).
    pub lease: Duration,
    /// How long a failing revert is retried before the run gives up (exit 4).
    pub revert_budget: Duration,
    pub log: Log,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("time_scale", &self.time_scale)
            .field("dry_run", &self.dry_run)
            .field("report_dir", &self.report_dir)
            .field("lease", &self.lease)
            .field("revert_budget", &self.revert_budget)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_scale: 1.0,
            dry_run: false,
            report_dir: None,
            lease: Duration::from_secs(15),
            revert_budget: Duration::from_secs(120),
            log: crate::quiet(),
        }
    }
}

/// Stops a run: a guard trip, a signal, a failed step. The first reason wins.
#[derive(Debug, Clone)]
pub struct Abort(Arc<watch::Sender<Option<String>>>);

impl Default for Abort {
    fn default() -> Self {
        Abort(Arc::new(watch::channel(None).0))
    }
}

impl Abort {
    pub fn trigger(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.0.send_if_modified(move |r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn reason(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// Resolves once the run is aborted.
    pub async fn triggered(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Aborted,
    RevertFailed,
    DryRun,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
            Status::RevertFailed => "revert_failed",
            Status::DryRun => "dry_run",
        }
    }

    /// The CLI's exit code: 0 passed, 1 a check failed, 3 aborted, 4 still changed.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Passed | Status::DryRun => 0,
            Status::Failed => 1,
            Status::Aborted => 3,
            Status::RevertFailed => 4,
        }
    }

    /// The verdict word in reports.
    pub fn verdict(self) -> &'static str {
        match self {
            Status::Passed => "PASS",
            Status::Failed => "FAIL",
            Status::Aborted => "ABORTED",
            Status::RevertFailed => "REVERT FAILED",
            Status::DryRun => "DRY RUN",
        }
    }
}

/// Something still changed at the end of a run, with how to restore it by hand.
#[derive(Debug, Clone, Serialize)]
pub struct StillChanged {
    pub drill: String,
    pub fault: String,
    pub error: String,
    pub manual_restore: String,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
    /// The JSON report.
    pub report: serde_json::Value,
    pub markdown: String,
    pub junit: String,
    /// Report files written.
    pub written: Vec<PathBuf>,
    pub still_changed: Vec<StillChanged>,
    /// Dry run: what each fault would change, and each probe's reading.
    pub preview: Vec<String>,
}

/// An error that stops the engine before a run could be recorded.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
}

/// A fault this run has touched.
#[derive(Debug, Clone)]
struct LiveFault {
    id: String,
    drill: String,
    name: String,
    record: RevertRecord,
    state: FaultState,
    error: Option<String>,
    manual_restore: String,
}

/// A guard that tripped.
#[derive(Debug, Clone, Serialize)]
pub struct GuardTrip {
    pub name: String,
    pub condition: String,
    pub measured: String,
    pub at_s: f64,
}

/// An action's result.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    pub name: String,
    pub at_s: f64,
    pub ok: bool,
    pub result: String,
}

/// Traffic measured over one phase of a drill.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseStats {
    pub start_s: f64,
    pub end_s: f64,
    pub requests: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub by_class: BTreeMap<String, u64>,
    pub dropped: u64,
}

impl PhaseStats {
    pub fn of(s: &Stats, start: Duration, end: Duration) -> PhaseStats {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        PhaseStats {
            start_s: secs(start),
            end_s: secs(end),
            requests: s.requests,
            failed: s.failed,
            error_rate: s.error_rate(),
            p50_ms: ms(s.latency_at(50.0)),
            p90_ms: ms(s.latency_at(90.0)),
            p95_ms: ms(s.latency_at(95.0)),
            p99_ms: ms(s.latency_at(99.0)),
            max_ms: ms(s.latency_max()),
            by_class: s.by_class.clone(),
            dropped: s.dropped,
        }
    }
}

/// One drill's result.
#[derive(Debug, Clone, Serialize)]
pub struct DrillResult {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// `completed`, `aborted` (the run stopped during it) or `not_started`.
    pub status: &'static str,
    pub injected_s: Option<f64>,
    pub reverted_s: Option<f64>,
    pub recovered_s: Option<f64>,
    pub phases: BTreeMap<String, PhaseStats>,
    pub checks: Vec<CheckResult>,
    pub actions: Vec<ActionResult>,
}

impl DrillResult {
    fn new(d: &ResolvedDrill) -> DrillResult {
        DrillResult {
            name: d.name.clone(),
            uses: d.uses.clone(),
            status: "not_started",
            injected_s: None,
            reverted_s: None,
            recovered_s: None,
            phases: BTreeMap::new(),
            checks: Vec::new(),
            actions: Vec::new(),
        }
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

struct Shared {
    store: Store,
    run_id: String,
    allow: Allow,
    log: Log,
    start: Instant,
    scale: f64,
    abort: Abort,
    recorder: Arc<Recorder>,
    faults: Mutex<Vec<LiveFault>>,
    drill_guards: Mutex<Vec<(String, Guard)>>,
    trips: Mutex<Vec<GuardTrip>>,
    revert_budget: Duration,
    seq: AtomicI64,
    /// The playbook's per-phase SLOs, checked in every drill.
    phase_slos: BTreeMap<Phase, drill_spec::model::Limits>,
}

impl Shared {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn say(&self, msg: &str) {
        (self.log)(&format!("[{:>7.1}s] {msg}", self.now().as_secs_f64()));
    }

    fn scaled(&self, d: drill_spec::units::Dur) -> Duration {
        d.scaled(self.scale).0
    }

    fn set_state(&self, id: &str, state: FaultState, error: Option<String>) {
        let mut g = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = g.iter_mut().find(|f| f.id == id) {
            f.state = state;
            f.error = error;
        }
    }

    /// Sleeps until `t` (an offset from the start), or returns false when the run aborts.
    async fn sleep_until(&self, t: Duration) -> bool {
        let at = tokio::time::Instant::from_std(self.start + t);
        tokio::select! {
            () = tokio::time::sleep_until(at) => true,
            () = self.abort.triggered() => false,
        }
    }
}

/// The lock key of each fault's target: runs that would touch the same target exclude each
/// other.
pub fn lock_keys(vp: &ValidPlaybook) -> Vec<String> {
    let mut keys: Vec<String> = vp
        .drills
        .iter()
        .flat_map(|d| d.spec.faults.iter())
        .map(lock_key)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn lock_key(f: &Fault) -> String {
    let endpoint = |u: &str| drill_spec::allow::endpoint_key(u).unwrap_or_else(|| u.to_owned());
    match (&f.target, &f.exec, &f.http) {
        (Some(TargetRef::Redis(e)), ..) => format!("redis:{}", endpoint(&e.url)),
        (Some(TargetRef::Sql(e)), ..) => format!("sql:{}", endpoint(&e.url)),
        (Some(t), ..) => format!(
            "{}:{}",
            t.backend(),
            serde_json::to_string(t).unwrap_or_default()
        ),
        (None, Some(e), _) => format!("exec:{}", e.inject.command.join(" ")),
        (None, None, Some(h)) => format!("http:{}", endpoint(&h.inject.url)),
        (None, None, None) => format!("fault:{}", f.name),
    }
}

/// Resolves a URL relative to the target's base URL.
fn absolute(base: &str, url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            url.trim_start_matches('/')
        )
    }
}

fn resolve_call(base: &str, c: &mut HttpCall) {
    c.url = absolute(base, &c.url);
}

fn resolve_probe(base: &str, p: &mut Probe) {
    if let Probe::Http(h) = p {
        h.url = absolute(base, &h.url);
    }
}

fn resolve_step(base: &str, s: &mut Step) {
    if let Some(h) = &mut s.http {
        resolve_call(base, h);
    }
}

/// Relative URLs in calls and HTTP probes are resolved against `target.base_url`.
fn resolve_urls(vp: &mut ValidPlaybook) {
    let base = vp.playbook.target.base_url.clone();
    let pb = &mut vp.playbook;
    pb.setup.iter_mut().for_each(|s| resolve_step(&base, s));
    pb.teardown.iter_mut().for_each(|s| resolve_step(&base, s));
    for g in &mut pb.guards {
        if let Some(p) = &mut g.probe {
            resolve_probe(&base, p);
        }
    }
    for d in &mut vp.drills {
        let spec: &mut DrillSpec = &mut d.spec;
        for f in &mut spec.faults {
            if let Some(h) = &mut f.http {
                resolve_call(&base, &mut h.inject);
                if let Some(r) = &mut h.revert {
                    resolve_call(&base, r);
                }
            }
            if let Some(s) = &mut f.route_switch {
                resolve_step(&base, s);
            }
        }
        for a in &mut spec.actions {
            if let Some(h) = &mut a.http {
                resolve_call(&base, h);
            }
        }
        for c in &mut spec.checks {
            if let Some(p) = &mut c.probe {
                resolve_probe(&base, p);
            }
        }
        for g in &mut spec.guards {
            if let Some(p) = &mut g.probe {
                resolve_probe(&base, p);
            }
        }
    }
}

/// Every probe of the playbook (checks and guards), labelled.
fn all_probes(vp: &ValidPlaybook) -> Vec<(String, Probe)> {
    let mut out = Vec::new();
    for (i, g) in vp.playbook.guards.iter().enumerate() {
        if let Some(p) = &g.probe {
            out.push((format!("guard {}", guard_name(g, i)), p.clone()));
        }
    }
    for d in &vp.drills {
        for c in &d.spec.checks {
            if let Some(p) = &c.probe {
                out.push((format!("{}: check {}", d.name, c.name), p.clone()));
            }
        }
        for (i, g) in d.spec.guards.iter().enumerate() {
            if let Some(p) = &g.probe {
                out.push((format!("{}: guard {}", d.name, guard_name(g, i)), p.clone()));
            }
        }
    }
    out
}

fn guard_name(g: &Guard, i: usize) -> String {
    g.name.clone().unwrap_or_else(|| format!("guard {}", i + 1))
}

/// Preflight: every fault prepared (allow-list, resolution, current state; no mutation),
/// every probe read once, the traffic target reachable. Returns what would change, and the
/// failures.
async fn preflight(vp: &ValidPlaybook, scale: f64) -> (Vec<String>, Vec<String>) {
    let allow = &vp.playbook.target.allow;
    let mut preview = Vec::new();
    let mut errors = Vec::new();
    for d in &vp.drills {
        let hold = d.spec.hold.scaled(scale).0;
        for f in &d.spec.faults {
            match drill_faults::prepare(f, allow, hold).await {
                Ok(p) => {
                    for c in &p.changes {
                        preview.push(format!("{}/{}: would {c}", d.name, f.name));
                    }
                    if let Some(perm) = p.record.permanent() {
                        preview.push(format!("{}/{}: cannot be undone: {perm}", d.name, f.name));
                    }
                }
                Err(e) => errors.push(format!("{}/{}: {e}", d.name, f.name)),
            }
        }
    }
    for (label, p) in all_probes(vp) {
        match drill_faults::probe(&p, allow).await {
            Ok(v) => preview.push(format!("{label}: reads {}", checks::fmt_num(v))),
            Err(e) => errors.push(format!("{label}: {e}")),
        }
    }
    match reachable(&vp.playbook.target.base_url).await {
        Ok(addr) => preview.push(format!("traffic: {addr} accepts connections")),
        Err(e) => errors.push(format!("traffic: {e}")),
    }
    (preview, errors)
}

/// Whether the traffic target accepts TCP connections.
async fn reachable(base: &str) -> Result<String, String> {
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("{base} has no scheme"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let has_port = hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !hostport.ends_with(']'));
    let addr = if has_port {
        hostport.to_owned()
    } else {
        format!("{hostport}:{}", if scheme == "https" { 443 } else { 80 })
    };
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => Ok(addr),
        Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
        Err(_) => Err(format!("cannot connect to {addr}: no answer in 5 s")),
    }
}

async fn run_step(s: &Step, allow: &Allow) -> Result<String, String> {
    if let Some(e) = &s.exec {
        drill_spec::allow::exec(allow, &e.command)
            .map_err(|r| format!("{} is outside the allow-list; {}", r.message, r.hint))?;
        return drill_faults::exec::run(e)
            .await
            .map(|o| format!("{} exited 0", e.command.join(" ")).to_owned() + &tail(&o.stdout))
            .map_err(|e| e.to_string());
    }
    if let Some(h) = &s.http {
        return drill_faults::http::call(h, allow)
            .await
            .map(|st| format!("{} {} → {st}", h.method, h.url))
            .map_err(|e| e.to_string());
    }
    Ok("nothing to do".into())
}

fn tail(s: &str) -> String {
    s.lines()
        .last()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default()
}

fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (u64::from(std::process::id()) << 20) ^ u64::from(now.timestamp_subsec_nanos());
    format!("{}-{:05x}", now.format("%Y%m%d-%H%M%S"), salt & 0xfffff)
}

/// Runs a playbook. `dir` resolves its relative paths (the dataset). The caller wires
/// signals to `abort`.
pub async fn apply(
    store: &Store,
    vp: &ValidPlaybook,
    dir: &Path,
    opts: &Options,
    abort: Abort,
) -> Result<Outcome, EngineError> {
    let mut vp = vp.clone();
    resolve_urls(&mut vp);
    let vp = vp;
    let log = opts.log.clone();
    let name = vp.playbook.metadata.name.clone();

    if opts.dry_run {
        return dry_run(store, &vp, opts).await;
    }

    // 1. Whatever a dead run left behind is restored before anything else.
    let rec = recover::reconcile(store, None, opts.revert_budget, &log).await?;
    report_recovered(&rec, &log);

    // 2. The run, its lease and its locks.
    let run_id = new_run_id();
    let owner = Owner::me();
    store
        .create_run(&RunRow {
            id: run_id.clone(),
            playbook: name.clone(),
            file: vp.file.clone(),
            status: "running".into(),
            reason: None,
            owner: owner.to_string(),
            heartbeat_ms: now_ms(),
            lease_ms: i64::try_from(opts.lease.as_millis()).unwrap_or(i64::MAX),
            started_ms: now_ms(),
            finished_ms: None,
            time_scale: opts.time_scale,
        })
        .await?;
    log(&format!("run {run_id}: {name} ({})", vp.file));
    let keys = lock_keys(&vp);
    if let Some(held) = store.lock(&run_id, &keys).await? {
        let reason = format!(
            "target {} is held by run {} (playbook {}, {}, owner {}); wait for it to finish, or run `drill recover` if it is gone",
            held.target, held.run.id, held.run.playbook, held.run.status, held.run.owner
        );
        store
            .finish_run(&run_id, "aborted", Some(&format!("refused: {reason}")))
            .await?;
        return Ok(refused(run_id, reason));
    }

    // 3. Heartbeat, and the reconciler's periodic pass over other runs.
    let hb_stop = Abort::default();
    let heartbeat = {
        let store = store.clone();
        let run_id = run_id.clone();
        let stop = hb_stop.clone();
        let log = log.clone();
        let every = (opts.lease / 3).max(Duration::from_millis(200));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = stop.triggered() => return,
                }
                if let Err(e) = store.heartbeat(&run_id).await {
                    log(&format!("warning: {e}"));
                }
                match recover::reconcile(&store, Some(&run_id), Duration::from_secs(5), &log).await
                {
                    Ok(r) => report_recovered(&r, &log),
                    Err(e) => log(&format!("warning: reconcile: {e}")),
                }
            }
        })
    };

    let result = execute(store, &vp, dir, opts, abort, &run_id).await;
    hb_stop.trigger("done");
    let _ = heartbeat.await;
    result
}

fn refused(run_id: String, reason: String) -> Outcome {
    Outcome {
        run_id: Some(run_id),
        status: Status::Aborted,
        reason: Some(reason),
        report: serde_json::Value::Null,
        markdown: String::new(),
        junit: String::new(),
        written: Vec::new(),
        still_changed: Vec::new(),
        preview: Vec::new(),
    }
}

fn report_recovered(rec: &Recovered, log: &Log) {
    for (run, reason) in &rec.runs {
        log(&format!("recover: run {run} {reason}"));
    }
    for (run, f, what) in &rec.reverted {
        log(&format!("recover: run {run}: {f} restored ({what})"));
    }
    for (run, f, what) in &rec.permanent {
        log(&format!("recover: run {run}: {f} cannot be undone: {what}"));
    }
    for (run, f, e, how) in &rec.failed {
        log(&format!(
            "recover: run {run}: {f} is STILL CHANGED: {e}; to restore by hand: {how}"
        ));
    }
}

async fn dry_run(
    store: &Store,
    vp: &ValidPlaybook,
    opts: &Options,
) -> Result<Outcome, EngineError> {
    let (mut preview, errors) = preflight(vp, opts.time_scale).await;
    for k in lock_keys(vp) {
        if let Some(h) = store.holder(&k).await? {
            preview.push(format!("lock: {k} is held by run {h}"));
        }
    }
    for (f, run) in store.outstanding().await? {
        preview.push(format!(
            "ledger: run {} left {}/{} {} (`drill recover` would revert it)",
            run.id,
            f.drill,
            f.fault,
            f.state.as_str()
        ));
    }
    let status = if errors.is_empty() {
        Status::DryRun
    } else {
        Status::Aborted
    };
    let reason = (!errors.is_empty()).then(|| format!("preflight failed: {}", errors.join("; ")));
    Ok(Outcome {
        run_id: None,
        status,
        reason,
        report: serde_json::json!({"dry_run": true, "would": preview, "errors": errors}),
        markdown: String::new(),
        junit: String::new(),
        written: Vec::new(),
        still_changed: Vec::new(),
        preview,
    })
}

async fn execute(
    store: &Store,
    vp: &ValidPlaybook,
    dir: &Path,
    opts: &Options,
    abort: Abort,
    run_id: &str,
) -> Result<Outcome, EngineError> {
    let log = opts.log.clone();
    let allow = vp.playbook.target.allow.clone();
    let scale = opts.time_scale;
    let started_ms = now_ms();

    // Preflight: fail closed before anything changes.
    let (_preview, errors) = preflight(vp, scale).await;
    if !errors.is_empty() {
        for e in &errors {
            log(&format!("preflight: {e}"));
        }
        abort.trigger(format!("preflight failed: {}", errors.join("; ")));
    } else {
        log("preflight: every target and probe answered");
    }

    // Setup steps.
    if abort.reason().is_none() {
        for (i, s) in vp.playbook.setup.iter().enumerate() {
            let label = s.name.clone().unwrap_or_else(|| format!("setup {}", i + 1));
            match run_step(s, &allow).await {
                Ok(r) => log(&format!("setup {label}: {r}")),
                Err(e) => {
                    abort.trigger(format!("setup step {label} failed: {e}"));
                    break;
                }
            }
        }
    }

    let traffic = match drill_load::Run::from_playbook(&vp.playbook, dir, scale) {
        Ok(t) => Some(t),
        Err(e) => {
            abort.trigger(format!("the traffic cannot start: {e}"));
            None
        }
    };
    let recorder = traffic.as_ref().map_or_else(
        || {
            Arc::new(Recorder::new(
                drill_load::metrics::ErrorSet::standard(),
                Duration::from_secs(10),
            ))
        },
        |t| t.recorder(),
    );
    let longest_baseline = vp
        .drills
        .iter()
        .map(|d| d.spec.baseline.scaled(scale).0)
        .max()
        .unwrap_or_default();
    recorder.retain_for(longest_baseline.max(Duration::from_secs(10)) + Duration::from_secs(2));

    let start = Instant::now();
    let sh = Arc::new(Shared {
        store: store.clone(),
        run_id: run_id.to_owned(),
        allow: allow.clone(),
        log: log.clone(),
        start,
        scale,
        abort: abort.clone(),
        recorder: recorder.clone(),
        faults: Mutex::new(Vec::new()),
        drill_guards: Mutex::new(Vec::new()),
        trips: Mutex::new(Vec::new()),
        revert_budget: opts.revert_budget,
        seq: AtomicI64::new(0),
        phase_slos: vp.playbook.slo.phases.clone(),
    });

    let stop = drill_load::Stop::default();
    let mut drills: Vec<DrillResult> = vp.drills.iter().map(DrillResult::new).collect();
    let mut traffic_report = None;
    if abort.reason().is_none()
        && let Some(t) = traffic
    {
        sh.say(&format!(
            "traffic: {} for {}",
            vp.playbook.metadata.name,
            fmt_dur(t.duration)
        ));
        let traffic_task = tokio::spawn(t.execute_from(stop.clone(), start));
        let guards_task = tokio::spawn(guard_loop(sh.clone(), vp.playbook.guards.clone()));

        // The drills, each on its timeline; `after: recovered` waits for the previous one.
        let mut prev: Option<watch::Receiver<Option<Duration>>> = None;
        let mut futs = Vec::new();
        for d in vp.drills.iter() {
            let (tx, rx) = watch::channel(None);
            futs.push(run_drill(sh.clone(), d.clone(), prev.take(), tx));
            prev = Some(rx);
        }
        drills = futures_util::future::join_all(futs).await;

        // The traffic runs to its end unless the run was aborted.
        let mut traffic_task = traffic_task;
        let report = tokio::select! {
            r = &mut traffic_task => r.ok(),
            () = abort.triggered() => {
                stop.stop();
                traffic_task.await.ok()
            }
        };
        stop.stop();
        guards_task.abort();
        traffic_report = report;
    }

    // The final sweep: nothing this run changed may stay changed.
    let still_changed = sweep(&sh).await;

    // Teardown.
    for (i, s) in vp.playbook.teardown.iter().enumerate() {
        let label = s
            .name
            .clone()
            .unwrap_or_else(|| format!("teardown {}", i + 1));
        match run_step(s, &allow).await {
            Ok(r) => log(&format!("teardown {label}: {r}")),
            Err(e) => log(&format!("warning: teardown step {label} failed: {e}")),
        }
    }

    // Verdict.
    let checks_failed = drills
        .iter()
        .flat_map(|d| d.checks.iter())
        .filter(|c| !c.passed)
        .count();
    let slo_failed = traffic_report.as_ref().is_some_and(|r| !r.passed());
    let aborted = abort.reason();
    let status = if !still_changed.is_empty() {
        Status::RevertFailed
    } else if aborted.is_some() {
        Status::Aborted
    } else if checks_failed > 0 || slo_failed {
        Status::Failed
    } else {
        Status::Passed
    };
    let reason = match status {
        Status::RevertFailed => Some(format!(
            "{} fault(s) could not be reverted{}",
            still_changed.len(),
            aborted.map(|a| format!("; {a}")).unwrap_or_default()
        )),
        Status::Aborted => aborted,
        Status::Failed => Some(format!(
            "{checks_failed} check(s) failed{}",
            if slo_failed {
                ", and the run-wide SLO"
            } else {
                ""
            }
        )),
        _ => None,
    };

    let ledger = store.faults(run_id).await.unwrap_or_default();
    let trips = sh
        .trips
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let input = report::Input {
        run_id,
        playbook: &vp.playbook.metadata.name,
        file: &vp.file,
        status,
        reason: reason.as_deref(),
        started_ms,
        finished_ms: now_ms(),
        time_scale: scale,
        traffic: traffic_report.as_ref(),
        drills: &drills,
        ledger: &ledger,
        trips: &trips,
        still_changed: &still_changed,
    };
    let json = report::json(&input);
    let markdown = report::markdown(&input);
    let junit = report::junit(&input);
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    store.save_reports(run_id, &text, &markdown, &junit).await?;
    let mut written = Vec::new();
    if let Some(d) = &opts.report_dir {
        let d = d.join(run_id);
        let files = [
            ("report.json", text.clone()),
            ("report.md", markdown.clone()),
            ("junit.xml", junit.clone()),
            (
                "k6-summary.json",
                traffic_report
                    .as_ref()
                    .map(|r| serde_json::to_string_pretty(&r.k6_summary()).unwrap_or_default())
                    .unwrap_or_else(|| "{}".into()),
            ),
        ];
        std::fs::create_dir_all(&d)
            .map_err(|e| EngineError::Io(format!("cannot create {}: {e}", d.display())))?;
        for (n, body) in files {
            let p = d.join(n);
            std::fs::write(&p, body)
                .map_err(|e| EngineError::Io(format!("cannot write {}: {e}", p.display())))?;
            written.push(p);
        }
    }
    store
        .finish_run(run_id, status.as_str(), reason.as_deref())
        .await?;
    if still_changed.is_empty() {
        store.unlock(run_id).await?;
    }
    Ok(Outcome {
        run_id: Some(run_id.to_owned()),
        status,
        reason,
        report: json,
        markdown,
        junit,
        written,
        still_changed,
        preview: Vec::new(),
    })
}

/// Reverts everything this run still has changed, concurrently; returns what stays changed.
async fn sweep(sh: &Arc<Shared>) -> Vec<StillChanged> {
    let pending: Vec<LiveFault> = sh
        .faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|f| f.state.outstanding())
        .cloned()
        .collect();
    if !pending.is_empty() {
        sh.say(&format!(
            "reverting {} fault(s) still applied",
            pending.len()
        ));
    }
    let futs = pending.into_iter().rev().map(|f| {
        let sh = sh.clone();
        async move {
            revert_live(&sh, &f).await.err().map(|e| StillChanged {
                drill: f.drill.clone(),
                fault: f.name.clone(),
                error: e,
                manual_restore: f.manual_restore.clone(),
            })
        }
    });
    futures_util::future::join_all(futs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Reverts one fault of this run (retried within the budget), keeping the in-memory state
/// in step with the ledger.
async fn revert_live(sh: &Shared, f: &LiveFault) -> Result<(), String> {
    let label = format!("{}/{}", f.drill, f.name);
    match recover::revert_with_retry(
        &sh.store,
        &f.id,
        &label,
        &f.record,
        sh.revert_budget,
        &sh.log,
    )
    .await
    {
        Ok(r) => {
            sh.set_state(&f.id, state_of(&r), None);
            sh.say(&format!("{label}: {}", describe(&r)));
            Ok(())
        }
        Err(e) => {
            sh.set_state(&f.id, FaultState::RevertFailed, Some(e.clone()));
            Err(e)
        }
    }
}

fn state_of(r: &Reverted) -> FaultState {
    if matches!(r, Reverted::Permanent(_)) {
        FaultState::Permanent
    } else {
        FaultState::Reverted
    }
}

fn describe(r: &Reverted) -> String {
    match r {
        Reverted::Restored(d) if d.is_empty() => "reverted".into(),
        Reverted::Restored(d) => format!("reverted ({})", d.join("; ")),
        Reverted::AlreadyRestored => "already in the recorded state".into(),
        Reverted::Permanent(w) => format!("cannot be undone: {w}"),
    }
}

/// Injects one fault: prepare (fresh state), intent in the ledger, apply, applied.
async fn inject(sh: &Arc<Shared>, drill: &str, f: &Fault, hold: Duration) -> Result<(), String> {
    let prepared = drill_faults::prepare(f, &sh.allow, hold)
        .await
        .map_err(|e| e.to_string())?;
    let record = serde_json::to_string(&prepared.record).map_err(|e| e.to_string())?;
    let seq = sh.seq.fetch_add(1, Ordering::SeqCst);
    let id = format!("{}/{seq}", sh.run_id);
    let row = FaultRow {
        id: id.clone(),
        run_id: sh.run_id.clone(),
        seq,
        drill: drill.to_owned(),
        fault: f.name.clone(),
        backend: backend_of(&prepared.record).into(),
        record,
        changes: prepared.changes.clone(),
        manual_restore: prepared.record.manual_restore(),
        state: FaultState::Intent,
        attempts: 0,
        error: None,
        intent_ms: now_ms(),
        applied_ms: None,
        reverted_ms: None,
    };
    // Write-ahead: the record that undoes the fault is durable before the fault happens.
    sh.store
        .fault_intent(&row)
        .await
        .map_err(|e| format!("the ledger refused the intent, so the fault was not applied: {e}"))?;
    sh.faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(LiveFault {
            id: id.clone(),
            drill: drill.to_owned(),
            name: f.name.clone(),
            record: prepared.record.clone(),
            state: FaultState::Intent,
            error: None,
            manual_restore: row.manual_restore.clone(),
        });
    crate::crash_point("intent");
    drill_faults::apply(&prepared.record)
        .await
        .map_err(|e| e.to_string())?;
    crate::crash_point("applied");
    sh.set_state(&id, FaultState::Applied, None);
    if let Err(e) = sh.store.fault_state(&id, FaultState::Applied, None).await {
        // The intent row still covers it: recover reverts intents too.
        sh.say(&format!("warning: {e}"));
    }
    sh.say(&format!(
        "{drill}/{}: applied ({})",
        f.name,
        prepared.changes.join("; ")
    ));
    Ok(())
}

fn backend_of(r: &RevertRecord) -> &'static str {
    match r {
        RevertRecord::Docker(_) => "docker",
        RevertRecord::Process(_) => "process",
        RevertRecord::Exec(_) => "exec",
        RevertRecord::Redis(_) => "redis",
        RevertRecord::Sql(_) => "sql",
        RevertRecord::Kubernetes(_) => "kubernetes",
        RevertRecord::Http(_) => "http",
    }
}

async fn run_action(sh: &Arc<Shared>, a: &Action, label: &str) -> ActionResult {
    let at_s = secs(sh.now());
    let r: Result<String, String> = if let Some(e) = &a.enqueue {
        drill_faults::redis::enqueue(e, &sh.allow)
            .await
            .map(|n| format!("enqueued {} jobs into {} (length now {n})", e.jobs, e.key))
            .map_err(|e| e.to_string())
    } else {
        run_step(
            &Step {
                name: None,
                exec: a.exec.clone(),
                http: a.http.clone(),
            },
            &sh.allow,
        )
        .await
    };
    match &r {
        Ok(m) => sh.say(&format!("{label}: {m}")),
        Err(e) => sh.say(&format!("{label} failed: {e}")),
    }
    ActionResult {
        name: label.to_owned(),
        at_s,
        ok: r.is_ok(),
        result: r.unwrap_or_else(|e| e),
    }
}

/// Reads a probe every `every` from now until `until` holds or `window` has passed.
async fn poll_probe(sh: Arc<Shared>, c: Check, window: Duration) -> ProbeOutcome {
    let from = Instant::now();
    // Reads at least ten times per window, never more often than every 50 ms.
    let every = c.every.0.min(window / 10).max(Duration::from_millis(50));
    let mut out = ProbeOutcome {
        held_after: None,
        last: None,
        error: None,
        window,
        reads: 0,
    };
    let Some(p) = &c.probe else { return out };
    loop {
        match drill_faults::probe(p, &sh.allow).await {
            Ok(v) => {
                out.reads += 1;
                out.last = Some(v);
                if c.until.is_some_and(|u| u.holds(v)) {
                    out.held_after = Some(from.elapsed());
                    return out;
                }
            }
            Err(e) => out.error = Some(e.to_string()),
        }
        if from.elapsed() >= window {
            return out;
        }
        tokio::select! {
            () = tokio::time::sleep(every.min(window.saturating_sub(from.elapsed()))) => {}
            () = sh.abort.triggered() => return out,
        }
    }
}

fn span_name(drill: &str, phase: &str) -> String {
    format!("{drill}/{phase}")
}

/// One drill, from its start to its verdict.
async fn run_drill(
    sh: Arc<Shared>,
    d: ResolvedDrill,
    prev: Option<watch::Receiver<Option<Duration>>>,
    recovered_tx: watch::Sender<Option<Duration>>,
) -> DrillResult {
    let mut res = DrillResult::new(&d);
    let spec = &d.spec;
    // When to inject.
    let start = match (d.start, prev) {
        (Start::At(t), _) => sh.scaled(t),
        (Start::After(_, delay), Some(mut rx)) => {
            let done = tokio::select! {
                r = rx.wait_for(Option::is_some) => r.ok().and_then(|v| *v),
                () = sh.abort.triggered() => None,
            };
            match done {
                Some(t) => t + sh.scaled(delay),
                None => return res,
            }
        }
        (Start::After(_, delay), None) => sh.scaled(delay),
    };
    if !sh.sleep_until(start).await {
        return res;
    }
    let baseline_len = sh.scaled(spec.baseline);
    let s = sh.now();
    let b_from = s.saturating_sub(baseline_len);
    let baseline = sh.recorder.window_between(b_from, s);
    res.phases
        .insert("baseline".into(), PhaseStats::of(&baseline, b_from, s));
    sh.recorder.open_span(&span_name(&d.name, "fault"), s);
    sh.recorder.open_span(&span_name(&d.name, "drill"), s);
    res.status = "aborted";
    res.injected_s = Some(secs(s));
    sh.say(&format!(
        "{}: injecting {} fault(s)",
        d.name,
        spec.faults.len()
    ));
    {
        let mut g = sh
            .drill_guards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for gd in &spec.guards {
            g.push((d.name.clone(), gd.clone()));
        }
    }
    let hold = sh.scaled(spec.hold);
    for f in &spec.faults {
        if let Err(e) = inject(&sh, &d.name, f, hold).await {
            sh.abort.trigger(format!(
                "{}/{}: the fault could not be applied: {e}",
                d.name, f.name
            ));
            unregister_guards(&sh, &d.name);
            return res;
        }
    }

    // Actions at injection, and the fault-phase probe checks.
    let action_task = |moment: Moment| {
        let sh = sh.clone();
        let actions: Vec<(usize, Action)> = spec
            .actions
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, a)| a.at == moment)
            .collect();
        let drill = d.name.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            for (i, a) in actions {
                if let Some(delay) = a.delay {
                    let at = sh.now() + sh.scaled(delay);
                    if !sh.sleep_until(at).await {
                        break;
                    }
                }
                let label = format!(
                    "{drill}/{}",
                    a.name
                        .clone()
                        .unwrap_or_else(|| format!("action {}", i + 1))
                );
                let r = run_action(&sh, &a, &label).await;
                if !r.ok {
                    sh.abort.trigger(format!("{label} failed: {}", r.result));
                }
                out.push(r);
            }
            out
        })
    };
    let inject_actions = action_task(Moment::Inject);
    let probe_checks = |phase_fault: bool| {
        spec.checks
            .iter()
            .filter(|c| c.probe.is_some())
            .filter(|c| (timeline::check_phase(c) == Phase::Fault) == phase_fault)
            .map(|c| {
                let window = sh.scaled(c.within.unwrap_or(spec.recovery));
                let phase = timeline::check_phase(c);
                let c2 = c.clone();
                (
                    c.clone(),
                    phase,
                    tokio::spawn(poll_probe(sh.clone(), c2, window)),
                )
            })
            .collect::<Vec<_>>()
    };
    let fault_probes = probe_checks(true);

    // Hold.
    let held = sh.sleep_until(s + hold).await;
    if held {
        sh.say(&format!(
            "{}: hold over after {}, reverting",
            d.name,
            fmt_dur(hold)
        ));
    }

    // Revert this drill's faults, newest first (also when aborting: the sweep would anyway).
    let mine: Vec<LiveFault> = sh
        .faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|f| f.drill == d.name && f.state.outstanding())
        .cloned()
        .collect();
    // Aborted during the hold: the sweep reverts everything at once, concurrently; the
    // traffic checks are still evaluated on what was measured until now.
    let reverting: &[LiveFault] = if held { &mine } else { &[] };
    for f in reverting.iter().rev() {
        if let Err(e) = revert_live(&sh, f).await {
            sh.abort
                .trigger(format!("{}/{} could not be reverted: {e}", f.drill, f.name));
        }
    }
    let r = sh.now();
    if held {
        res.reverted_s = Some(secs(r));
    }
    sh.recorder.close_span(&span_name(&d.name, "fault"), r);
    sh.recorder.open_span(&span_name(&d.name, "recovery"), r);
    let revert_actions = action_task(Moment::Revert);
    let recovery_probes = if held {
        probe_checks(false)
    } else {
        Vec::new()
    };

    // Recovery: until the recovery probe checks pass (or their windows end), else the
    // drill's recovery window.
    let mut probe_results: Vec<(Check, Phase, ProbeOutcome)> = Vec::new();
    let has_recovery_probes = !recovery_probes.is_empty();
    for (c, phase, h) in recovery_probes {
        if let Ok(o) = h.await {
            probe_results.push((c, phase, o));
        }
    }
    if held && !has_recovery_probes {
        sh.sleep_until(r + sh.scaled(spec.recovery)).await;
    }
    for (c, phase, h) in fault_probes {
        if let Ok(o) = h.await {
            probe_results.push((c, phase, o));
        }
    }
    let rec = sh.now();
    if held && sh.abort.reason().is_none() {
        res.recovered_s = Some(secs(rec));
    }
    for n in ["recovery", "drill"] {
        sh.recorder.close_span(&span_name(&d.name, n), rec);
    }
    let _ = recovered_tx.send(Some(rec));
    unregister_guards(&sh, &d.name);
    res.actions = inject_actions.await.unwrap_or_default();
    res.actions.extend(revert_actions.await.unwrap_or_default());

    // Measurements per phase; samples still in flight land in their spans within the
    // request timeout, so read them after the traffic for this window has settled.
    let fault = sh
        .recorder
        .span(&span_name(&d.name, "fault"))
        .unwrap_or_default();
    let recovery = sh
        .recorder
        .span(&span_name(&d.name, "recovery"))
        .unwrap_or_default();
    let whole = sh
        .recorder
        .span(&span_name(&d.name, "drill"))
        .unwrap_or_default();
    res.phases
        .insert("fault".into(), PhaseStats::of(&fault, s, r));
    res.phases
        .insert("recovery".into(), PhaseStats::of(&recovery, r, rec));
    for c in &spec.checks {
        let phase = timeline::check_phase(c);
        // Probe checks report their own results; a phase the abort cut off has nothing.
        if c.probe.is_some() || (!held && matches!(phase, Phase::Recovery)) {
            continue;
        }
        let (stats, span) = match phase {
            Phase::Baseline => (&baseline, s - b_from),
            Phase::Fault => (&fault, r - s),
            Phase::Recovery => (&recovery, rec - r),
            Phase::Drill => (&whole, rec - s),
        };
        res.checks
            .push(checks::traffic(c, phase, stats, span, &baseline));
    }
    for (c, phase, o) in &probe_results {
        res.checks.push(checks::probe(c, *phase, o));
    }
    for (phase, limits) in &sh.phase_slos {
        if !held && matches!(phase, Phase::Recovery) {
            continue;
        }
        let stats = match phase {
            Phase::Baseline => &baseline,
            Phase::Fault => &fault,
            Phase::Recovery => &recovery,
            Phase::Drill => &whole,
        };
        res.checks.push(checks::slo(
            &format!("slo.phases.{phase}"),
            *phase,
            limits,
            stats,
        ));
    }
    // Keep the drill's declared order.
    let order: HashMap<&str, usize> = spec
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    res.checks
        .sort_by_key(|c| order.get(c.name.as_str()).copied().unwrap_or(usize::MAX));
    for c in &res.checks {
        sh.say(&format!(
            "{}: check {} {}: {} (limit {})",
            d.name,
            c.name,
            if c.passed { "PASS" } else { "FAIL" },
            c.measured,
            c.limit
        ));
    }
    res.status = if sh.abort.reason().is_some() {
        "aborted"
    } else {
        "completed"
    };
    res
}

fn unregister_guards(sh: &Shared, drill: &str) {
    sh.drill_guards
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|(d, _)| d != drill);
}

#[derive(Default)]
struct GuardState {
    since: Option<Duration>,
    next: Duration,
    probe_failures: u32,
}

/// Evaluates the guards (the playbook's, and those of the drills running now) at least every
/// second; the first to trip aborts the run, which reverts everything at once.
async fn guard_loop(sh: Arc<Shared>, playbook_guards: Vec<Guard>) {
    let mut states: HashMap<String, GuardState> = HashMap::new();
    let tick = Duration::from_millis(100);
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = sh.abort.triggered() => return,
        }
        let mut active: Vec<(String, Guard)> = playbook_guards
            .iter()
            .enumerate()
            .map(|(i, g)| (format!("playbook/{}", guard_name(g, i)), g.clone()))
            .collect();
        active.extend(
            sh.drill_guards
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .enumerate()
                .map(|(i, (d, g))| (format!("{d}/{}", guard_name(g, i)), g.clone())),
        );
        for (key, g) in active {
            let now = sh.now();
            let st = states.entry(key.clone()).or_default();
            if now < st.next {
                continue;
            }
            st.next = now + g.every.0.min(Duration::from_secs(1));
            let hold_for = g.for_.map(|f| sh.scaled(f)).unwrap_or_default();
            let value = match (&g.probe, g.when.subject) {
                (Some(p), _) => match drill_faults::probe(p, &sh.allow).await {
                    Ok(v) => {
                        st.probe_failures = 0;
                        v
                    }
                    Err(e) => {
                        st.probe_failures += 1;
                        if st.probe_failures >= 3 {
                            trip(
                                &sh,
                                &key,
                                &g,
                                format!("its probe failed 3 times in a row: {e}"),
                            );
                            return;
                        }
                        continue;
                    }
                },
                (None, Subject::Metric(m)) => {
                    let len = if hold_for.is_zero() {
                        Duration::from_secs(10)
                    } else {
                        hold_for.clamp(Duration::from_secs(1), Duration::from_secs(10))
                    };
                    let stats = sh.recorder.window_between(now.saturating_sub(len), now);
                    if stats.requests == 0 && m != drill_spec::cond::Metric::Dropped {
                        st.since = None;
                        continue;
                    }
                    checks::metric_value(m, &stats, len)
                }
                (None, Subject::Value) => continue,
            };
            if g.when.holds(value) {
                let since = *st.since.get_or_insert(now);
                if now - since >= hold_for {
                    let shown = match g.when.subject {
                        Subject::Metric(m) => checks::fmt_metric(m, value),
                        Subject::Value => checks::fmt_num(value),
                    };
                    trip(
                        &sh,
                        &key,
                        &g,
                        format!("measured {shown}, held for {}", fmt_dur(now - since)),
                    );
                    return;
                }
            } else {
                st.since = None;
            }
        }
    }
}

fn trip(sh: &Shared, key: &str, g: &Guard, measured: String) {
    let at = sh.now();
    let t = GuardTrip {
        name: key.to_owned(),
        condition: g.when.to_string(),
        measured: measured.clone(),
        at_s: secs(at),
    };
    sh.trips
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(t);
    sh.say(&format!(
        "GUARD {key} tripped: {} ({measured}); reverting everything",
        g.when
    ));
    sh.abort
        .trigger(format!("guard {key} tripped: {} ({measured})", g.when));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_resolve_against_the_base() {
        assert_eq!(
            absolute("http://127.0.0.1:8080/", "/health"),
            "http://127.0.0.1:8080/health"
        );
        assert_eq!(absolute("http://a", "https://b/x"), "https://b/x");
    }

    #[test]
    fn actions_are_unused_by_fault_action_enum() {
        // Exec faults carry their own command; their lock key is the command.
        let f = Fault {
            name: "x".into(),
            action: drill_spec::model::FaultAction::Exec,
            target: None,
            replicas: None,
            network: None,
            pattern: None,
            client_type: None,
            scope: None,
            route_switch: None,
            exec: None,
            sql: None,
            http: None,
            irreversible: false,
        };
        assert_eq!(lock_key(&f), "fault:x");
    }
}
