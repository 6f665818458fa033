//! One drill's state machine, from its start to its verdict:
//!
//! wait for the start (`at`, or the previous drill's recovery + `delay`) → baseline (the
//! window before the start, from the recorder's kept seconds) → inject every fault through
//! the ledger → actions and fault-phase probe checks → hold → revert newest first →
//! recovery probe checks until they hold or their windows end (the measured recovery) →
//! the traffic checks on the recorder's spans, and the playbook's per-phase SLOs.
//!
//! An abort at any point stops the drill where it is; the run's sweep reverts what it left.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drill_load::metrics::Stats;
use drill_spec::ResolvedDrill;
use drill_spec::call::ValidAction;
use drill_spec::check::ProbeRule;
use drill_spec::model::{After, Moment, Phase};
use drill_spec::timeline::{self, Start};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::chain;
use crate::checks::{self, ProbeOutcome, fmt_dur};
use crate::context::RunContext;
use crate::live;
use crate::outcome::{ActionResult, DrillResult, DrillStatus, secs};
use crate::status::Stage;

/// How a drill ended, for the next one's `after:`.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    /// When (an offset from the run's start).
    pub at: Duration,
    /// Why it did not recover, if it did not: its hold was cut short, or a recovery check
    /// failed.
    pub not_recovered: Option<String>,
}

/// When and how the previous drill ended, for `after:`.
pub(crate) type Recovered = watch::Receiver<Option<Ended>>;

fn span_name(drill: &str, phase: &str) -> String {
    format!("{drill}/{phase}")
}

/// Runs one drill. `prev` says when the previous drill recovered; `recovered` is told when
/// this one has.
pub(crate) async fn run(
    cx: Arc<RunContext>,
    d: ResolvedDrill,
    prev: Option<Recovered>,
    recovered: watch::Sender<Option<Ended>>,
) -> DrillResult {
    let mut res = crate::outcome::drill_result(&d);
    let start = match start_time(&cx, &d, prev).await {
        Begin::At(t) => t,
        Begin::Never => return res,
        Begin::Skip(why) => {
            skip(&cx, &d, &mut res, &recovered, why);
            return res;
        }
    };
    if !cx.sleep_until(start).await {
        return res;
    }
    let (s, baseline) = begin(&cx, &d, &mut res).await;
    let guards = cx.register_guards(&d.name, &d.spec.guards);
    let hold = cx.scaled(d.spec.hold);
    if !inject(&cx, &d, hold).await {
        return res;
    }
    // Actions at injection, and the fault-phase probe checks.
    let inject_actions = actions(&cx, &d, Moment::Inject);
    let fault_probes = probe_checks(&cx, &d, true);
    let held = hold_then_revert(&cx, &d, s, hold).await;
    let r = cx.boundary().await;
    if held {
        res.reverted_s = Some(secs(r));
    }
    cx.stage(&d.name, Stage::Recovery);
    cx.recorder.close_span(&span_name(&d.name, "fault"), r);
    cx.recorder.open_span(&span_name(&d.name, "recovery"), r);
    let revert_actions = actions(&cx, &d, Moment::Revert);
    let (rec, probes) = recovery(&cx, &d, held, r, fault_probes).await;
    if held && cx.abort.reason().is_none() {
        res.recovered_s = Some(secs(rec));
    }
    let _ = recovered.send(Some(Ended {
        at: rec,
        not_recovered: not_recovered(held, &probes),
    }));
    drop(guards);
    res.actions = inject_actions.await.unwrap_or_default();
    res.actions.extend(revert_actions.await.unwrap_or_default());

    // Every sample of the drill's spans is in (a distributed run's reports come late).
    cx.settled(rec).await;
    let baseline = baseline.task.await.unwrap_or_default();
    let spans = Spans {
        baseline,
        fault: span(&cx, &d.name, "fault"),
        recovery: span(&cx, &d.name, "recovery"),
        whole: span(&cx, &d.name, "drill"),
        b_from: s.saturating_sub(cx.scaled(d.spec.baseline)),
        s,
        r,
        rec,
        held,
    };
    for phase in [Phase::Baseline, Phase::Fault, Phase::Recovery] {
        let (stats, from, to) = spans.bounds(phase);
        res.phases
            .insert(phase, crate::outcome::phase_stats(stats, from, to));
    }
    verdicts(&cx, &d, &spans, &probes, &mut res);
    res.status = if cx.abort.reason().is_some() {
        DrillStatus::Aborted
    } else {
        DrillStatus::Completed
    };
    cx.stage(&d.name, Stage::Done);
    res
}

/// A drill that will not run (`after: recovered`, and the previous one did not recover).
fn skip(
    cx: &RunContext,
    d: &ResolvedDrill,
    res: &mut DrillResult,
    recovered: &watch::Sender<Option<Ended>>,
    why: String,
) {
    cx.tell(&format!("{}: skipped: {why}", d.name), |m| {
        tracing::warn!(drill = cx.shown(&d.name), verdict = "skipped", "{m}");
    });
    res.status = DrillStatus::Skipped;
    res.skipped = Some(why.clone());
    cx.stage(&d.name, Stage::Done);
    let _ = recovered.send(Some(Ended {
        at: cx.now(),
        not_recovered: Some(format!("it was skipped ({why})")),
    }));
}

/// The baseline's measurements, read once they are in.
struct Baseline {
    task: JoinHandle<Stats>,
}

/// The drill's start `s` (a second boundary): its spans opened, the baseline (the traffic
/// before `s`) read — at once in one process; a distributed run's arrive a few seconds late,
/// while the fault goes on.
async fn begin(
    cx: &Arc<RunContext>,
    d: &ResolvedDrill,
    res: &mut DrillResult,
) -> (Duration, Baseline) {
    let s = cx.boundary().await;
    let b_from = s.saturating_sub(cx.scaled(d.spec.baseline));
    let early = (!cx.distributed).then(|| cx.recorder.window_between(b_from, s));
    if let Some(b) = &early {
        res.phases
            .insert(Phase::Baseline, crate::outcome::phase_stats(b, b_from, s));
    }
    let task = {
        let cx = cx.clone();
        tokio::spawn(async move {
            match early {
                Some(b) => b,
                None => {
                    cx.settled(s).await;
                    // Whole seconds before `s` (the window's ends count whole).
                    let to = s.saturating_sub(Duration::from_millis(1));
                    cx.recorder.window_between(b_from, to)
                }
            }
        })
    };
    cx.recorder.open_span(&span_name(&d.name, "fault"), s);
    cx.recorder.open_span(&span_name(&d.name, "drill"), s);
    res.status = DrillStatus::Aborted;
    res.injected_s = Some(secs(s));
    cx.stage(&d.name, Stage::Fault);
    cx.say(&format!(
        "{}: injecting {} fault(s)",
        d.name,
        d.faults.len()
    ));
    (s, Baseline { task })
}

/// Injects the drill's faults in order; `false` (and the run aborted) when one cannot be.
async fn inject(cx: &Arc<RunContext>, d: &ResolvedDrill, hold: Duration) -> bool {
    for f in &d.faults {
        if let Err(e) = live::inject(cx, &d.name, f, hold).await {
            cx.abort.trigger(format!(
                "{}/{}: the fault could not be applied: {}",
                d.name,
                f.name,
                chain(&e)
            ));
            return false;
        }
    }
    true
}

/// Holds the faults for `hold` from when the last of them was applied, then reverts them
/// newest first. The hold is the measured applied window, not time since the injection
/// began at `s`: a stop whose process ignores SIGTERM takes the engine's grace (10 s by
/// default) before anything is broken, and a hold counted from `s` would end before the
/// fault began — a check judging traffic during which nothing was broken. `false` when the
/// run was aborted during the hold: the sweep then reverts everything at once,
/// concurrently, and the traffic checks are still evaluated on what was measured until now.
async fn hold_then_revert(cx: &RunContext, d: &ResolvedDrill, s: Duration, hold: Duration) -> bool {
    let since: Vec<Duration> = cx
        .outstanding(Some(&d.name))
        .iter()
        .filter_map(|f| f.since)
        .collect();
    let all_applied = since.iter().copied().max().unwrap_or(s).max(s);
    if !cx.sleep_until(all_applied + hold).await {
        return false;
    }
    // Measured, from when the first fault was really applied (a frozen process holds longer
    // than planned, and says so).
    let applied = since
        .iter()
        .copied()
        .min()
        .map_or(hold, |t| cx.now().saturating_sub(t));
    let took = all_applied.saturating_sub(s);
    let applying = if took >= Duration::from_secs(1) {
        format!(
            " (applying them took {}: the hold counts from when they were)",
            fmt_dur(took)
        )
    } else {
        String::new()
    };
    cx.tell(
        &format!(
            "{}: hold over: the faults were applied for {} (planned {}), reverting{applying}",
            d.name,
            fmt_dur(applied),
            fmt_dur(hold)
        ),
        |m| {
            tracing::info!(
                drill = cx.shown(&d.name),
                applied_ms = applied.as_millis() as u64,
                planned_ms = hold.as_millis() as u64,
                "{m}"
            );
        },
    );
    for f in cx.outstanding(Some(&d.name)).iter().rev() {
        if let Err(e) = live::revert(cx, f).await {
            cx.abort.trigger(format!(
                "{}/{} could not be reverted: {}",
                f.drill,
                f.name,
                chain(&e)
            ));
        }
    }
    true
}

/// Recovery from the revert at `r`: until the recovery probe checks pass (or their windows
/// end), else the drill's recovery window; then the fault-phase probes' readings. Returns
/// the end of recovery (a second boundary) and every probe check's readings.
async fn recovery(
    cx: &Arc<RunContext>,
    d: &ResolvedDrill,
    held: bool,
    r: Duration,
    fault_probes: Vec<ProbeTask>,
) -> (Duration, Vec<(ProbeCheck, Phase, ProbeOutcome)>) {
    let recovery_probes = if held {
        probe_checks(cx, d, false)
    } else {
        Vec::new()
    };
    let mut results = Vec::new();
    let has_recovery_probes = !recovery_probes.is_empty();
    for (c, phase, h) in recovery_probes {
        if let Ok(o) = h.await {
            results.push((c, phase, o));
        }
    }
    if held && !has_recovery_probes {
        cx.sleep_until(r + cx.scaled(d.spec.recovery)).await;
    }
    for (c, phase, h) in fault_probes {
        if let Ok(o) = h.await {
            results.push((c, phase, o));
        }
    }
    let rec = cx.boundary().await;
    for n in ["recovery", "drill"] {
        cx.recorder.close_span(&span_name(&d.name, n), rec);
    }
    (rec, results)
}

/// Why the drill did not recover, for a next drill `after: recovered`: its hold was cut
/// short, or a recovery probe check failed.
fn not_recovered(held: bool, probes: &[(ProbeCheck, Phase, ProbeOutcome)]) -> Option<String> {
    if !held {
        return Some("its hold was cut short".to_owned());
    }
    probes
        .iter()
        .filter(|(_, phase, _)| *phase != Phase::Fault)
        .map(|(c, phase, o)| checks::probe(&c.name, &c.rule, *phase, o))
        .find(|r| !r.passed)
        .map(|r| {
            format!(
                "its recovery check {} failed: {} (limit {})",
                r.name, r.measured, r.limit
            )
        })
}

/// When a drill begins.
enum Begin {
    At(Duration),
    /// The run ended first.
    Never,
    /// `after: recovered`, and the previous drill did not recover: why.
    Skip(String),
}

/// When to inject: at `at`, or once the previous drill ended (`after:`).
async fn start_time(cx: &RunContext, d: &ResolvedDrill, prev: Option<Recovered>) -> Begin {
    match (d.start, prev) {
        (Start::At(t), _) => Begin::At(cx.scaled(t)),
        (Start::After(after, delay), Some(mut rx)) => {
            let ended = tokio::select! {
                r = rx.wait_for(Option::is_some) => r.ok().and_then(|v| v.clone()),
                () = cx.abort.triggered() => None,
            };
            match ended {
                None => Begin::Never,
                Some(Ended {
                    not_recovered: Some(why),
                    ..
                }) if after == After::Recovered => Begin::Skip(format!(
                    "it runs `after: recovered`, and the previous drill did not recover: {why} (write `after: previous` to run it anyway)"
                )),
                Some(e) => Begin::At(e.at + cx.scaled(delay)),
            }
        }
        (Start::After(_, delay), None) => Begin::At(cx.scaled(delay)),
    }
}

/// The drill's actions at `moment`, in order, each after its delay; a failed action aborts
/// the run.
fn actions(
    cx: &Arc<RunContext>,
    d: &ResolvedDrill,
    moment: Moment,
) -> JoinHandle<Vec<ActionResult>> {
    let cx = cx.clone();
    let list: Vec<(usize, ValidAction)> = d
        .actions
        .iter()
        .cloned()
        .enumerate()
        .filter(|(_, a)| a.at == moment)
        .collect();
    let drill = d.name.clone();
    tokio::spawn(
        async move {
            let mut out = Vec::new();
            for (i, a) in list {
                if let Some(delay) = a.delay {
                    let at = cx.now() + cx.scaled(delay);
                    if !cx.sleep_until(at).await {
                        break;
                    }
                }
                let label = format!(
                    "{drill}/{}",
                    a.name
                        .clone()
                        .unwrap_or_else(|| format!("action {}", i + 1))
                );
                let r = live::action(&cx, &a, &label).await;
                if !r.ok {
                    cx.abort.trigger(format!("{label} failed: {}", r.result));
                }
                out.push(r);
            }
            out
        }
        .in_current_span(),
    )
}

/// A probe check of the drill: its name and its reading.
struct ProbeCheck {
    name: String,
    rule: ProbeRule,
}

type ProbeTask = (ProbeCheck, Phase, JoinHandle<ProbeOutcome>);

/// Starts the drill's probe checks of the fault phase (`fault_phase`) or of the others.
fn probe_checks(cx: &Arc<RunContext>, d: &ResolvedDrill, fault_phase: bool) -> Vec<ProbeTask> {
    d.checks
        .iter()
        .filter(|c| (timeline::check_phase(c) == Phase::Fault) == fault_phase)
        .filter_map(|c| {
            let rule = c.probe()?.clone();
            let window = cx.scaled(rule.within);
            let task = tokio::spawn(poll_probe(cx.clone(), rule.clone(), window).in_current_span());
            let check = ProbeCheck {
                name: c.name.clone(),
                rule,
            };
            Some((check, timeline::check_phase(c), task))
        })
        .collect()
}

/// Reads a probe every `every` from now until `until` holds or `window` has passed.
async fn poll_probe(cx: Arc<RunContext>, p: ProbeRule, window: Duration) -> ProbeOutcome {
    let from = Instant::now();
    // Reads at least ten times per window, never more often than every 50 ms.
    let every = p.every.0.min(window / 10).max(Duration::from_millis(50));
    let mut out = ProbeOutcome {
        held_after: None,
        last: None,
        error: None,
        window,
        reads: 0,
    };
    loop {
        match drill_faults::probe(&p.probe, &cx.allow).await {
            Ok(v) => {
                out.reads += 1;
                out.last = Some(v);
                if p.until.holds(v) {
                    out.held_after = Some(from.elapsed());
                    return out;
                }
            }
            Err(e) => out.error = Some(chain(&e)),
        }
        if from.elapsed() >= window {
            return out;
        }
        tokio::select! {
            () = tokio::time::sleep(every.min(window.saturating_sub(from.elapsed()))) => {}
            () = cx.abort.triggered() => return out,
        }
    }
}

fn span(cx: &RunContext, drill: &str, phase: &str) -> Stats {
    cx.recorder
        .span(&span_name(drill, phase))
        .unwrap_or_default()
}

/// A drill's measured phases and their bounds (offsets from the run's start).
struct Spans {
    baseline: Stats,
    fault: Stats,
    recovery: Stats,
    whole: Stats,
    b_from: Duration,
    s: Duration,
    r: Duration,
    rec: Duration,
    /// The hold ran to its end (the run was not aborted during it).
    held: bool,
}

impl Spans {
    /// A phase's measurements and its bounds.
    fn bounds(&self, phase: Phase) -> (&Stats, Duration, Duration) {
        match phase {
            Phase::Baseline => (&self.baseline, self.b_from, self.s),
            Phase::Fault => (&self.fault, self.s, self.r),
            Phase::Recovery => (&self.recovery, self.r, self.rec),
            Phase::Drill => (&self.whole, self.s, self.rec),
        }
    }

    /// A phase's measurements and its length.
    fn of(&self, phase: Phase) -> (&Stats, Duration) {
        let (stats, from, to) = self.bounds(phase);
        (stats, to.saturating_sub(from))
    }
}

/// Every check of the drill, and the playbook's per-phase SLOs, in the drill's declared
/// order; a phase the abort cut off has nothing to judge.
fn verdicts(
    cx: &RunContext,
    d: &ResolvedDrill,
    sp: &Spans,
    probes: &[(ProbeCheck, Phase, ProbeOutcome)],
    res: &mut DrillResult,
) {
    for c in &d.checks {
        let phase = timeline::check_phase(c);
        if !sp.held && matches!(phase, Phase::Recovery) {
            continue;
        }
        let (stats, len) = sp.of(phase);
        let error_limit = cx
            .phase_slos
            .get(&phase)
            .and_then(|l| l.error_rate)
            .map(|p| p.fraction())
            .or(cx.error_limit);
        // Probe checks are judged on their readings, below.
        res.checks.extend(checks::traffic(
            c,
            phase,
            stats,
            len,
            &sp.baseline,
            error_limit,
        ));
    }
    for (c, phase, o) in probes {
        res.checks.push(checks::probe(&c.name, &c.rule, *phase, o));
    }
    for (phase, limits) in &cx.phase_slos {
        if !sp.held && matches!(phase, Phase::Recovery) {
            continue;
        }
        res.checks.push(checks::slo(
            &format!("slo.phases.{phase}"),
            *phase,
            limits,
            sp.of(*phase).0,
        ));
    }
    let order: HashMap<&str, usize> = d
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    res.checks
        .sort_by_key(|c| order.get(c.name.as_str()).copied().unwrap_or(usize::MAX));
    for c in &res.checks {
        let line = format!(
            "{}: check {} {}: {} (limit {})",
            d.name,
            c.name,
            c.verdict.word(),
            c.measured,
            c.limit
        );
        cx.tell(&line, |m| {
            tracing::info!(
                drill = cx.shown(&d.name),
                check = cx.shown(&c.name),
                phase = %c.phase,
                verdict = c.verdict.as_str(),
                "{m}"
            );
        });
    }
}
