//! A distributed run's traffic (`traffic.distributed`): N shard processes split the one
//! schedule (shard `k` sends arrivals `k, k+N, …`, all from one absolute zero `t0`), each
//! reports its measurements to the store every half second ([`runner`]), and the engine adds
//! them up into the run's one recorder — exactly: HdrHistograms add bucket by bucket — so
//! SLOs, checks and guards are evaluated once, by the same code as for one process.
//!
//! - **Where shards run.** `local`: N processes of this binary on this host. `kubernetes`: one
//!   Indexed Job ([`drill_faults::kubernetes::job`]), written to the ledger before it is
//!   created and deleted like a fault: at the end, on abort, by `drill recover`.
//! - **Time.** Shards report per intended second; a second is added once it is
//!   [`SETTLED`] past its end, and the drills mark their phases on whole seconds (waiting for
//!   the next one), so that every span holds whole seconds and nothing is attributed to the
//!   wrong side of a boundary. Guards see the traffic up to [`SETTLED`] late.
//! - **Stop.** The engine writes the stop into the store; shards poll it every
//!   [`POLL_EVERY`], and also stop when the run is no longer running or its lease ran out,
//!   and by themselves after [`STORE_LOSS`] without the store.
//! - **Silence is an error.** A shard without a report for [`SILENT_AFTER`] (or one that
//!   reports a failure, or whose pod fails) aborts the run, saying which: its part of the
//!   traffic is missing, and a verdict over the rest would not be the run's.
//!
//! What it is not: it sends no request itself (the shards' `drill-load` does).

mod collect;
mod protocol;
pub mod runner;
pub mod store;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drill_faults::kubernetes::job::{self, ShardJobSpec};
use drill_faults::kubernetes::{Action, Record};
use drill_faults::{Prepared, RevertRecord};
use drill_load::{Shard, Stop};
use drill_spec::model::{Distributed, Playbook, ShardsOn};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;

use self::collect::Collector;
pub use self::protocol::{POLL_EVERY, Report, SILENT_AFTER, STORE_CALL, STORE_LOSS};
use crate::chain;
use crate::context::RunContext;
use crate::live;
use crate::store::{StoreError, now_ms};

pub use crate::context::SETTLED;
/// How far ahead of the first arrival local shards are started.
pub const LOCAL_LEAD: Duration = Duration::from_secs(2);

/// What every shard of a run reads from the store: the traffic, its dataset's records, the
/// time scale and the shared zero.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardPlan {
    pub playbook: Playbook,
    pub records: Vec<serde_json::Map<String, serde_json::Value>>,
    pub scale: f64,
    /// The schedule's zero, milliseconds since the Unix epoch.
    pub t0_ms: i64,
    pub shards: u32,
}

/// A shard that could not run.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run {0} has no shard plan: is it a distributed run, and still running?")]
    NoPlan(String),
    #[error("the shard plan does not read: {0}")]
    Plan(#[source] serde_json::Error),
    #[error("shard {mine}: the run has {plan} shards")]
    Count { mine: Shard, plan: u32 },
    #[error(transparent)]
    Load(#[from] drill_load::LoadError),
    #[error(transparent)]
    Wire(#[from] drill_load::shard::WireError),
    #[error("{0} report(s) could not be written to the store")]
    Unreported(usize),
}

/// How long before the first arrival the shards are started: where they run decides.
pub fn lead(d: &Distributed) -> Duration {
    match (d.run_on, &d.kubernetes) {
        (ShardsOn::Kubernetes, Some(k)) => k.start_within.0,
        _ => LOCAL_LEAD,
    }
}

/// Writes a shard's failure where the engine reads it.
pub async fn report_failure(store: &crate::Store, run_id: &str, shard: Shard, error: &str) {
    // Bounded: the failure may be that the store is gone.
    let put = store.put_shard_report(run_id, shard.index, i64::MAX / 2, true, Some(error), "{}");
    let _ = tokio::time::timeout(STORE_CALL, put).await;
}

/// The shards of a distributed run, each one's part: the report's types.
pub use drill_report::{ShardPart, Shards};

/// Runs the traffic of `load` in `d.shards` shards and adds up what they measure into its
/// recorder; returns its report, thresholds evaluated once, and each shard's part.
pub(crate) async fn drive(
    cx: Arc<RunContext>,
    load: drill_load::Run,
    plan: ShardPlan,
    d: Distributed,
    stop: Stop,
) -> (drill_load::Report, Shards) {
    let mut shards = Shards {
        count: plan.shards,
        run_on: match d.run_on {
            ShardsOn::Local => "local",
            ShardsOn::Kubernetes => "kubernetes",
        }
        .to_owned(),
        each: Vec::new(),
    };
    let report = run_shards(cx, load, plan, d, stop, &mut shards).await;
    (report, shards)
}

async fn run_shards(
    cx: Arc<RunContext>,
    load: drill_load::Run,
    plan: ShardPlan,
    d: Distributed,
    stop: Stop,
    parts: &mut Shards,
) -> drill_load::Report {
    let n = plan.shards;
    let recorder = load.recorder();
    // Reports come up to half a second late, and are read every quarter second.
    recorder.set_grace(plan.playbook.traffic.timeout.0 + SETTLED + Duration::from_secs(2));
    let Some(mut launched) = launch(&cx, &plan, &d).await else {
        return load.conclude(true, cx.start);
    };
    let (pods_tx, mut pods_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    if let Launched::Job { namespace } = &launched {
        launched_watch(&cx, namespace.clone(), pods_tx);
    }
    let (on_abort, aborted_ms) = stop_on_abort(&cx, &stop);
    let timeout = plan.playbook.traffic.timeout.0;
    let mut c = Collector::new(n);
    let mut every = tokio::time::interval(POLL_EVERY);
    loop {
        every.tick().await;
        match cx.store.shard_reports(&cx.run_id, c.after()).await {
            Ok(rows) => c.take(rows, &recorder, &stop),
            Err(e) => cx.say(&format!("warning: shards: {}", chain(&e))),
        }
        while let Ok(why) = pods_rx.try_recv() {
            c.failed.get_or_insert(why);
        }
        let now = cx.now();
        c.settle(&recorder, Some(now));
        recorder.tick(now);
        if !stop.stopped() {
            c.watch_silence(now);
        }
        if let Some(why) = &c.failed {
            // The first failure is the run's cause; later ones change nothing.
            cx.abort.trigger(why.clone());
            stop.stop();
        }
        if stop.stopped() && c.stop_sent.is_none() {
            let why = cx
                .abort
                .reason()
                .unwrap_or_else(|| "the run was stopped".into());
            match cx.store.stop_shards(&cx.run_id, &why).await {
                Ok(()) => c.stop_sent = Some((Instant::now(), now_ms())),
                Err(e) => cx.say(&format!("warning: shards: {}", chain(&e))),
            }
        }
        if c.all_done() {
            break;
        }
        if c.give_up(now, load.duration, timeout) {
            cx.abort.trigger(format!(
                "shard(s) {} sent no last report: their traffic is not all counted",
                c.missing().join(", ")
            ));
            break;
        }
    }
    on_abort.abort();
    c.settle(&recorder, None);
    let at_ms = aborted_ms.load(std::sync::atomic::Ordering::Relaxed);
    if c.stop_sent.is_some()
        && at_ms > 0
        && let Some((k, lo, hi)) = c.stop_lags(at_ms)
    {
        cx.say(&format!(
            "shards: {k} of {n} stopped sending {:.2}–{:.2}s after the abort (their clocks)",
            lo as f64 / 1000.0,
            hi as f64 / 1000.0
        ));
    }
    parts.each = c.parts();
    for p in parts.each.iter().filter(|p| p.dropped > 0) {
        cx.say(&format!(
            "warning: shard {}/{n} dropped {} of its {} arrivals: its host did not keep up (see the report's shards)",
            p.shard, p.dropped, p.scheduled
        ));
    }
    let report = load.conclude(stop.stopped(), cx.start);
    let counted = report.measurements.counters;
    cx.say(&format!(
        "shards: {} of {n} finished; {} arrivals scheduled, {} sent, {} dropped",
        c.done_count(),
        counted.scheduled,
        counted.sent,
        counted.dropped()
    ));
    launched.end(&cx).await;
    if let Err(e) = cx.store.drop_shard_reports(&cx.run_id).await {
        cx.say(&format!("warning: shards: {}", chain(&e)));
    }
    report
}

/// Writes the shards' plan where they read it and starts them; `None` (and the run aborted)
/// when either fails.
async fn launch(cx: &Arc<RunContext>, plan: &ShardPlan, d: &Distributed) -> Option<Launched> {
    let text = match serde_json::to_string(plan) {
        Ok(t) => t,
        Err(e) => {
            cx.abort
                .trigger(format!("the shards' plan cannot be written: {e}"));
            return None;
        }
    };
    if let Err(e) = cx
        .store
        .put_shard_plan(&cx.run_id, plan.shards, &text)
        .await
    {
        cx.abort
            .trigger(format!("the shards cannot start: {}", chain(&e)));
        return None;
    }
    Some(match d.run_on {
        ShardsOn::Local => local(cx, plan.shards),
        ShardsOn::Kubernetes => kubernetes(cx, d, plan.shards, plan).await,
    })
}

/// An abort (a guard, a halt, Ctrl-C, a failed shard) stops the shards at once, through the
/// store, whatever the drills are doing; when it happened (the wall clock, in ms) is what
/// their stop is measured from.
fn stop_on_abort(
    cx: &Arc<RunContext>,
    stop: &Stop,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicI64>,
) {
    let aborted_ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let (cx, stop, at) = (cx.clone(), stop.clone(), aborted_ms.clone());
    let task = tokio::spawn(async move {
        tokio::select! {
            () = cx.abort.triggered() => {}
            () = stopped(&stop) => {}
        }
        at.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
        stop.stop();
        let why = cx
            .abort
            .reason()
            .unwrap_or_else(|| "the run was stopped".into());
        // Retried by the loop if the store does not take it now.
        let _ = cx.store.stop_shards(&cx.run_id, &why).await;
    });
    (task, aborted_ms)
}

/// Resolves once `stop` is set (checked every 50 ms).
async fn stopped(stop: &Stop) {
    while !stop.stopped() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the shards were started.
enum Launched {
    Local(Vec<tokio::process::Child>),
    Job { namespace: String },
    Nothing,
}

impl Launched {
    /// After the last report: local processes are waited for (killed after 5 s); the Job is
    /// deleted through the ledger.
    async fn end(&mut self, cx: &Arc<RunContext>) {
        match self {
            Launched::Local(children) => {
                for c in children.iter_mut() {
                    if tokio::time::timeout(Duration::from_secs(5), c.wait())
                        .await
                        .is_err()
                    {
                        let _ = c.kill().await;
                    }
                }
            }
            Launched::Job { .. } => {
                let jobs: Vec<_> = cx
                    .outstanding(Some(TRAFFIC))
                    .into_iter()
                    .filter(|f| f.name == JOB_FAULT)
                    .collect();
                for f in jobs {
                    if let Err(e) = live::revert(cx, &f).await {
                        cx.say(&format!(
                            "error: the shards' Job could not be deleted: {}",
                            chain(&e)
                        ));
                    }
                }
            }
            Launched::Nothing => {}
        }
    }
}

/// The ledger's drill and fault names of the shards' Job.
pub const TRAFFIC: &str = "(traffic)";
pub const JOB_FAULT: &str = "shards-job";

fn local(cx: &Arc<RunContext>, n: u32) -> Launched {
    let exe = std::env::var_os("DRILL_SHARD_BIN")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::current_exe().ok());
    let Some(exe) = exe else {
        cx.abort
            .trigger("the shards cannot start: this program's path is unknown");
        return Launched::Nothing;
    };
    let mut children = Vec::new();
    for k in 0..n {
        let spawned = tokio::process::Command::new(&exe)
            .args(["load", "--run", &cx.run_id, "--shard", &format!("{k}/{n}")])
            .env("DATABASE_URL", cx.store.given_url())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(mut c) => {
                if let Some(err) = c.stderr.take() {
                    let cx = cx.clone();
                    tokio::spawn(async move {
                        let mut lines = tokio::io::BufReader::new(err).lines();
                        while let Ok(Some(l)) = lines.next_line().await {
                            // The shard's lines name it.
                            cx.say(&l);
                        }
                    });
                }
                children.push(c);
            }
            Err(e) => {
                cx.abort.trigger(format!(
                    "shard {k}/{n} cannot start ({}): {e}",
                    exe.display()
                ));
                break;
            }
        }
    }
    cx.say(&format!(
        "shards: {} of {n} processes started on this host",
        children.len()
    ));
    Launched::Local(children)
}

async fn kubernetes(cx: &Arc<RunContext>, d: &Distributed, n: u32, plan: &ShardPlan) -> Launched {
    let Some(k) = &d.kubernetes else {
        cx.abort
            .trigger("shards on kubernetes need traffic.distributed.kubernetes");
        return Launched::Nothing;
    };
    if cx.store.is_sqlite() {
        cx.abort.trigger(
            "shards on kubernetes report to the history store, and a SQLite file is out of their reach: give --db postgres://…",
        );
        return Launched::Nothing;
    }
    let lead = k.start_within.0;
    let deadline = lead
        + drill_spec::timeline::traffic(&plan.playbook.traffic.profile, plan.scale)
            .duration
            .0
        + plan.playbook.traffic.timeout.0
        + Duration::from_secs(60);
    let spec = ShardJobSpec {
        run_id: cx.run_id.clone(),
        namespace: k.namespace.clone(),
        image: k.image.clone(),
        shards: n,
        service_account: k.service_account.clone(),
        store_url: cx.store.given_url().to_owned(),
        store_secret: k
            .store_secret
            .as_ref()
            .map(|s| (s.name.clone(), s.key.clone())),
        deadline_s: i64::try_from(deadline.as_secs()).unwrap_or(i64::MAX),
        ttl_s: 600,
    };
    let name = job::job_name(&cx.run_id);
    let prepared = Prepared {
        record: RevertRecord::Kubernetes(Record {
            context: None,
            namespace: k.namespace.clone(),
            action: Action::ShardJob {
                name: name.clone(),
                manifest: job::manifest(&spec),
            },
        }),
        changes: vec![format!(
            "create Job {}/{name} ({n} indexed pods of {}), deleted after the traffic",
            k.namespace, k.image
        )],
    };
    match live::inject_prepared(cx, TRAFFIC, JOB_FAULT, prepared).await {
        Ok(()) => Launched::Job {
            namespace: k.namespace.clone(),
        },
        Err(e) => {
            cx.abort.trigger(format!(
                "the shards' Job could not be created: {}",
                chain(&e)
            ));
            Launched::Nothing
        }
    }
}

/// Watches the Job's pods; a pod that fails, or cannot pull or start its image, is sent.
fn launched_watch(
    cx: &Arc<RunContext>,
    namespace: String,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let run_id = cx.run_id.clone();
    tokio::spawn(async move {
        let Ok(client) = drill_faults::kubernetes::client(None).await else {
            return;
        };
        while !tx.is_closed() {
            let r = job::watch_pods(&client, &namespace, &run_id, 60, |p| {
                let bad = p.phase == "Failed"
                    || p.reason.as_deref().is_some_and(|r| {
                        matches!(
                            r,
                            "ErrImagePull"
                                | "ImagePullBackOff"
                                | "CrashLoopBackOff"
                                | "CreateContainerConfigError"
                                | "InvalidImageName"
                        )
                    });
                if bad {
                    let _ = tx.send(format!(
                        "shard pod {} (index {}) is {}{}",
                        p.pod,
                        p.index.map_or("?".into(), |i| i.to_string()),
                        p.phase,
                        p.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ));
                }
                !tx.is_closed()
            })
            .await;
            // A watch ends at its timeout (or on an error): look again shortly after.
            tokio::time::sleep(Duration::from_secs(if r.is_err() { 2 } else { 1 })).await;
        }
    });
}
