//! The plan as people and programs read it: one list of timed events, printed as text or JSON.

use std::io::Write;

use drill_spec::call::{ActionKind, Call, ValidStep};
use drill_spec::check::{Rule, ValidCheck};
use drill_spec::cond::Subject;
use drill_spec::fault::{
    DockerAction, Kind, KubernetesAction, ProcessAction, RedisAction, SqlAction, ValidFault,
};
use drill_spec::model::{After, DockerTarget, Exec, KubernetesTarget, Probe};
use drill_spec::target::{Containers, Workload};
use drill_spec::timeline::{DrillPlan, Start, TrafficPlan};
use drill_spec::units::Dur;
use drill_spec::{ResolvedDrill, ValidPlaybook};
use serde::Serialize;

/// One thing that happens, or holds, at a time in the run.
#[derive(Debug, Serialize)]
pub struct Event {
    /// `setup`, `traffic`, `guard`, `start`, `phase`, `fault`, `revert`, `keep` (an irreversible
    /// fault stays), `action`, `check`, `teardown`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    pub name: String,
    /// Seconds from the start of the traffic (the earliest, for drills that start `after:`).
    pub start_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_s: Option<f64>,
    /// The latest start, when it depends on how fast the previous drill recovers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_latest_s: Option<f64>,
    pub detail: String,
    /// What it touches, resolved from the documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The plan of one playbook.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub playbook: String,
    pub file: String,
    pub time_scale: f64,
    pub duration_s: f64,
    pub expected_requests: u64,
    pub peak_rate_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How the traffic is split (`traffic.distributed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardsView>,
    pub events: Vec<Event>,
}

/// A distributed run's shards, as `drill plan` shows them.
#[derive(Debug, Serialize)]
pub struct ShardsView {
    pub count: u32,
    /// `local` or `kubernetes`.
    pub on: &'static str,
    /// Where: this host, or the Job's namespace and image.
    pub place: String,
    /// Each shard's share of the schedule.
    pub expected_requests_each: u64,
    pub peak_rate_per_s_each: f64,
    /// How long before the first arrival the shards are started.
    pub lead_s: f64,
}

fn secs(d: Dur) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn dur(s: f64) -> String {
    Dur(std::time::Duration::from_secs_f64(s.max(0.0))).to_string()
}

impl PlanView {
    pub fn new(pb: &ValidPlaybook, scale: f64) -> Self {
        let plan = pb.plan(scale);
        let p = &pb.playbook;
        let end = secs(plan.traffic.duration);
        let mut events = step_events("setup", &pb.setup, 0.0);
        events.extend(traffic_events(&plan.traffic, &p.target.base_url));
        for (i, g) in p.guards.iter().enumerate() {
            events.push(guard_event(g, i, None, 0.0, end));
        }
        for (d, dp) in pb.drills.iter().zip(&plan.drills) {
            events.extend(drill_events(d, dp, scale));
        }
        events.extend(step_events("teardown", &pb.teardown, end));
        // One redaction rule: what came from the environment prints as `${NAME}`, URL
        // passwords as `***`.
        for e in &mut events {
            e.detail = pb.redact.apply(&e.detail).into_owned();
            e.target = e.target.take().map(|t| pb.redact.apply(&t).into_owned());
        }
        PlanView {
            playbook: p.metadata.name.clone(),
            file: pb.file.clone(),
            time_scale: scale,
            duration_s: end,
            expected_requests: plan.traffic.expected_requests.round() as u64,
            peak_rate_per_s: plan.traffic.peak.per_second(),
            schedule: p.schedule.as_ref().map(|s| s.cron.clone()),
            shards: p
                .traffic
                .distributed
                .as_ref()
                .map(|d| shards_view(d, &plan.traffic)),
            events,
        }
    }

    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "playbook {} ({}): {} of traffic, {} requests expected, peak {}/s{}",
            self.playbook,
            self.file,
            dur(self.duration_s),
            group(self.expected_requests),
            self.peak_rate_per_s,
            if (self.time_scale - 1.0).abs() > f64::EPSILON {
                format!(", time scale {}", self.time_scale)
            } else {
                String::new()
            }
        )?;
        if let Some(s) = &self.schedule {
            writeln!(out, "schedule: {s} (UTC, daemon only)")?;
        }
        if let Some(sh) = &self.shards {
            writeln!(
                out,
                "shards: {} ({}), shard k sends arrivals k, k+{}, … of the one schedule: up to {} requests and {}/s each; started {} before the first arrival; judged once on their merged measurements; phases start and end on whole seconds",
                sh.count,
                sh.place,
                sh.count,
                group(sh.expected_requests_each),
                sh.peak_rate_per_s_each,
                dur(sh.lead_s)
            )?;
        }
        let mut current: Option<&Option<String>> = None;
        for e in &self.events {
            if current != Some(&e.drill) {
                match &e.drill {
                    Some(d) => writeln!(out, "\ndrill {d}")?,
                    None if current.is_none() => writeln!(out)?,
                    None => writeln!(out, "\nrun")?,
                }
                current = Some(&e.drill);
            }
            let when = match (e.end_s, e.start_latest_s) {
                (Some(end), Some(l)) => format!(
                    "{}..{} → {}",
                    dur(e.start_s),
                    dur(l),
                    dur(end + (l - e.start_s))
                ),
                (Some(end), None) => format!("{} → {}", dur(e.start_s), dur(end)),
                (None, Some(l)) => format!("{}..{}", dur(e.start_s), dur(l)),
                (None, None) => dur(e.start_s),
            };
            let target = e
                .target
                .as_deref()
                .map(|t| format!("  [{t}]"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {when:<24} {:<8} {:<22} {}{target}",
                e.kind, e.name, e.detail
            )?;
        }
        Ok(())
    }
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A command as it will run: its program resolved on this host the way the run resolves it
/// (`drill_spec::program`), so `plan` shows the file, not the name; arguments with URL
/// passwords masked.
fn command(e: &Exec) -> String {
    let args =
        drill_spec::redact::text(&e.command[1.min(e.command.len())..].join(" ")).into_owned();
    let program = e.command.first().map_or("", String::as_str);
    match drill_spec::program::resolve(
        program,
        e.dir.as_deref(),
        e.env.get("PATH").map(String::as_str),
        &drill_engine::files::HOST,
    ) {
        Ok(r) => format!("exec {} {args}", r.path).trim_end().to_owned(),
        Err(why) => format!("exec {program} {args} (not runnable here: {why})"),
    }
}

fn step_name(s: &ValidStep, i: usize) -> String {
    s.name.clone().unwrap_or_else(|| format!("step {}", i + 1))
}

fn step_detail(s: &ValidStep) -> String {
    match &s.call {
        Call::Exec(e) => command(e),
        Call::Http(h) => format!("{} {}", h.method, h.url),
    }
}

impl Event {
    /// An event at `start_s`, with nothing else set.
    fn at(kind: &'static str, drill: Option<&str>, name: impl Into<String>, start_s: f64) -> Self {
        Event {
            kind,
            drill: drill.map(str::to_owned),
            name: name.into(),
            start_s,
            end_s: None,
            start_latest_s: None,
            detail: String::new(),
            target: None,
        }
    }

    fn until(mut self, end_s: f64) -> Self {
        self.end_s = Some(end_s);
        self
    }

    fn latest(mut self, latest: Option<f64>) -> Self {
        self.start_latest_s = latest;
        self
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    fn target(mut self, target: Option<String>) -> Self {
        self.target = target;
        self
    }
}

/// The setup or teardown steps, all at `at`.
fn step_events(kind: &'static str, steps: &[ValidStep], at: f64) -> Vec<Event> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| Event::at(kind, None, step_name(s, i), at).detail(step_detail(s)))
        .collect()
}

/// The traffic's stages.
fn traffic_events(t: &TrafficPlan, base_url: &str) -> Vec<Event> {
    t.stages
        .iter()
        .map(|s| {
            let detail = if s.from == s.to {
                format!("hold {}", s.from)
            } else {
                format!("ramp {} → {}", s.from, s.to)
            };
            let name = format!("{} requests", group(s.requests.round() as u64));
            Event::at("traffic", None, name, secs(s.start))
                .until(secs(s.end))
                .detail(detail)
                .target(Some(base_url.to_owned()))
        })
        .collect()
}

/// One drill's events: its start and phases, each fault and its revert, its actions,
/// checks and guards.
fn drill_events(d: &ResolvedDrill, dp: &DrillPlan, scale: f64) -> Vec<Event> {
    let name = Some(d.name.as_str());
    let latest = (dp.start_latest != dp.start).then(|| secs(dp.start_latest));
    let mut out = vec![
        Event::at("start", name, d.name.clone(), secs(dp.start))
            .latest(latest)
            .detail(start_detail(d, dp, scale)),
        Event::at("phase", name, "baseline", secs(dp.baseline.start))
            .until(secs(dp.baseline.end))
            .detail("reference for deltas"),
        Event::at("phase", name, "fault", secs(dp.fault.start))
            .until(secs(dp.fault.end))
            .latest(latest)
            .detail(format!("hold {}", d.spec.hold.scaled(scale))),
        Event::at("phase", name, "recovery", secs(dp.recovery.start))
            .until(secs(dp.recovery.end))
            .detail("ends when the recovery checks pass, at the latest here"),
    ];
    for f in &d.faults {
        out.push(
            Event::at("fault", name, f.name.clone(), secs(dp.fault.start))
                .latest(latest)
                .detail(fault_detail(f))
                .target(fault_target(f)),
        );
        let (kind, detail) = revert_detail(f);
        out.push(
            Event::at(kind, name, f.name.clone(), secs(dp.fault.end))
                .detail(detail)
                .target(fault_target(f)),
        );
    }
    for (a, (aname, at)) in d.actions.iter().zip(&dp.actions) {
        let (detail, target) = match &a.kind {
            ActionKind::Enqueue(e) => (
                format!(
                    "enqueue {} {} jobs into {}",
                    group(u64::from(e.jobs)),
                    e.format.name(),
                    e.queue_ref().key(),
                ),
                Some(e.redis.clone()),
            ),
            ActionKind::Exec(e) => (command(e), None),
            ActionKind::Http(h) => (format!("{} {}", h.method, h.url), Some(h.url.clone())),
        };
        out.push(
            Event::at("action", name, aname.clone(), secs(*at))
                .detail(detail)
                .target(target),
        );
    }
    for (c, cw) in d.checks.iter().zip(&dp.checks) {
        out.push(
            Event::at("check", name, c.name.clone(), secs(cw.window.start))
                .until(secs(cw.window.end))
                .detail(check_detail(c, cw.phase, scale))
                .target(c.probe().map(|p| probe_target(&p.probe))),
        );
    }
    for (i, g) in d.spec.guards.iter().enumerate() {
        out.push(guard_event(
            g,
            i,
            Some(d.name.clone()),
            secs(dp.fault.start),
            secs(dp.recovery.end),
        ));
    }
    out
}

/// Where a drill comes from and when it starts.
fn start_detail(d: &ResolvedDrill, dp: &DrillPlan, scale: f64) -> String {
    let origin = d
        .uses
        .as_ref()
        .map_or_else(|| "inline".to_string(), |u| format!("uses {u}"));
    let once = match d.start {
        Start::After(After::Recovered, _) => {
            "once the previous drill recovered; skipped if its recovery checks fail"
        }
        Start::After(After::Previous, _) | Start::At(_) => {
            "once the previous drill ended, whatever its checks said"
        }
    };
    let when = match d.start {
        Start::At(t) => format!("at {}", t.scaled(scale)),
        Start::After(..) if dp.start == dp.start_latest => format!("at {}, {once}", dp.start),
        Start::After(..) => format!("between {} and {}, {once}", dp.start, dp.start_latest),
    };
    format!("{origin}; starts {when}")
}

/// What happens to a fault at the end of its hold: `revert` (and how), or `keep`.
fn revert_detail(f: &ValidFault) -> (&'static str, String) {
    if f.irreversible {
        return (
            "keep",
            "irreversible: changed for good, reported in the run".to_string(),
        );
    }
    let how = match &f.kind {
        Kind::Exec(e) => e.revert.as_ref().map(command),
        Kind::Process {
            target,
            action: ProcessAction::Stop | ProcessAction::Kill,
        } => target
            .restart
            .as_ref()
            .map(|r| format!("restart: {}", command(r))),
        // The others' undo is the action's own inverse, said by its name.
        Kind::Process { .. }
        | Kind::Docker { .. }
        | Kind::Kubernetes { .. }
        | Kind::Redis { .. }
        | Kind::Sql { .. }
        | Kind::Http(_) => None,
    };
    let action = f.action().name();
    (
        "revert",
        match how {
            Some(h) => format!("undo {action}: {h}"),
            None => format!("undo {action}"),
        },
    )
}

/// A distributed traffic's shards: where, and each one's share.
fn shards_view(d: &drill_spec::model::Distributed, t: &TrafficPlan) -> ShardsView {
    use drill_spec::model::ShardsOn;
    let n = d.shards.max(1);
    let total = t.expected_requests.round() as u64;
    ShardsView {
        count: d.shards,
        on: match d.run_on {
            ShardsOn::Local => "local",
            ShardsOn::Kubernetes => "kubernetes",
        },
        place: match (&d.run_on, &d.kubernetes) {
            (ShardsOn::Kubernetes, Some(k)) => format!(
                "an Indexed Job in namespace {} running {}",
                k.namespace, k.image
            ),
            (ShardsOn::Kubernetes, None) | (ShardsOn::Local, _) => "processes on this host".into(),
        },
        expected_requests_each: total.div_ceil(u64::from(n)),
        peak_rate_per_s_each: (t.peak.per_second() / f64::from(n) * 100.0).round() / 100.0,
        lead_s: drill_engine::shards::lead(d).as_secs_f64(),
    }
}

fn guard_event(
    g: &drill_spec::model::Guard,
    i: usize,
    drill: Option<String>,
    start: f64,
    end: f64,
) -> Event {
    let mut detail = format!("abort and revert all when {}", g.when);
    if let Some(f) = g.for_ {
        detail.push_str(&format!(" for {f}"));
    }
    if g.when.subject == Subject::Value {
        detail = detail.replace("when value", "when the probe's value");
    }
    Event {
        kind: "guard",
        drill,
        name: g.name.clone().unwrap_or_else(|| format!("guard {}", i + 1)),
        start_s: start,
        end_s: Some(end),
        start_latest_s: None,
        detail,
        target: g.probe.as_ref().map(probe_target),
    }
}

fn docker(d: &DockerTarget) -> String {
    let sel = match d.selector() {
        Some(Containers::Name(n) | Containers::Id(n)) => format!("container {n}"),
        Some(Containers::ComposeService(s)) => format!("compose service {s}"),
        Some(Containers::Labels(l)) => format!("containers labelled {}", l.join(",")),
        // Validation refuses a target without exactly one selector.
        None => "containers (no selector)".into(),
    };
    match d.max_targets {
        Some(m) => format!("docker {sel} (at most {m})"),
        None => format!("docker {sel}"),
    }
}

fn kube(k: &KubernetesTarget) -> String {
    let ctx = k
        .context
        .as_deref()
        .map(|c| format!("{c}:"))
        .unwrap_or_default();
    match k.workload() {
        Some(Workload::Deployment(d)) => format!("kubernetes {ctx}deployment {}/{d}", k.namespace),
        Some(Workload::StatefulSet(s)) => {
            format!("kubernetes {ctx}statefulset {}/{s}", k.namespace)
        }
        Some(Workload::Pods(p)) => format!("kubernetes {ctx}pods {p} in {}", k.namespace),
        // Validation refuses a target without exactly one workload.
        None => format!("kubernetes {ctx}{} (no workload)", k.namespace),
    }
}

fn fault_target(f: &ValidFault) -> Option<String> {
    Some(match &f.kind {
        Kind::Docker { target, .. } => docker(target),
        Kind::Kubernetes { target, .. } => kube(target),
        Kind::Process { target, .. } => {
            format!("process {}", target.by().map_or("", |b| b.id()))
        }
        Kind::Redis { endpoint, .. } => format!("redis {}", endpoint.url),
        Kind::Sql { endpoint, .. } => format!("sql {}", endpoint.url),
        Kind::Exec(e) => command(&e.inject),
        Kind::Http(h) => format!("http {}", h.inject.url),
    })
}

fn fault_detail(f: &ValidFault) -> String {
    match &f.kind {
        Kind::Kubernetes {
            action: KubernetesAction::Scale { replicas },
            ..
        } => format!("scale to {replicas}"),
        Kind::Docker {
            action: DockerAction::Disconnect { network },
            ..
        } => format!("disconnect from {network}"),
        Kind::Redis {
            action: RedisAction::DeleteKeys { pattern },
            ..
        } => format!("delete keys {pattern}"),
        Kind::Redis {
            action: RedisAction::Flush(scope),
            ..
        } => format!(
            "flush {}",
            match scope {
                drill_spec::model::FlushScope::Db => "db",
                drill_spec::model::FlushScope::All => "all",
            }
        ),
        Kind::Sql {
            action: SqlAction::Promote {
                route_switch: Some(r),
            },
            ..
        } => format!("promote, then switch the route ({})", step_detail(r)),
        _ => f.action().name().to_string(),
    }
}

fn probe_target(p: &Probe) -> String {
    match p {
        Probe::Redis(r) => format!("redis {}", r.url),
        Probe::Sql(s) => format!("sql {}", s.url),
        Probe::Http(h) => format!("http {}", h.url),
        Probe::Prometheus(q) => format!("prometheus {}", q.url),
        Probe::Docker(d) => docker(d),
        Probe::Kubernetes(k) => kube(k),
    }
}

/// What a check compares; a probe's window is shown time-scaled, as `drill apply` waits it.
fn check_detail(c: &ValidCheck, phase: drill_spec::model::Phase, scale: f64) -> String {
    match &c.rule {
        Rule::Slo(l) => {
            let mut parts: Vec<String> = l
                .latencies()
                .iter()
                .filter_map(|(n, v)| v.map(|v| format!("{n} ≤ {v}")))
                .collect();
            if let Some(e) = l.error_rate {
                parts.push(format!("error_rate < {e}"));
            }
            format!("{} during {phase}", parts.join(", "))
        }
        Rule::Count(k) => format!("at most {} {} errors during {phase}", k.max, k.of),
        Rule::Delta(d) => format!(
            "{} rises at most {} over baseline during {phase}",
            d.metric.name(),
            d.max
        ),
        Rule::Probe(p) => format!(
            "{} {} within {} (recovery time measured)",
            probe_reading(&p.probe),
            p.until.to_string().replace("value ", ""),
            p.within.scaled(scale)
        ),
    }
}

/// What a probe reads, as the plan shows it.
fn probe_reading(p: &Probe) -> String {
    match p {
        Probe::Redis(r) => {
            use drill_spec::probe::RedisReading as R;
            match r.reading() {
                Some(R::Pending(q)) => {
                    format!("redis pending {} ({})", q.key(), q.format.name())
                }
                Some(R::Dbsize) => "redis dbsize".into(),
                Some(
                    x @ (R::Llen(k)
                    | R::Xlen(k)
                    | R::Zcard(k)
                    | R::Get(k)
                    | R::Exists(k)
                    | R::Info(k)),
                ) => format!("redis {} {k}", x.name()),
                // Validation refuses a probe without exactly one reading.
                None => "redis (no reading)".into(),
            }
        }
        Probe::Sql(s) => format!("sql {}", s.query),
        Probe::Http(h) => format!("http {}", h.url),
        Probe::Prometheus(q) => format!("prometheus {}", q.query),
        Probe::Docker(_) => "running containers".into(),
        Probe::Kubernetes(_) => "ready replicas".into(),
    }
}
