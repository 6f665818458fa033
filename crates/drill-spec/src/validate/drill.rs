//! A drill's rules: its faults (the applicability table, reversibility, targets inside the
//! lists), actions, checks, probes and guards.

use std::collections::BTreeSet;

use super::traffic::limits;
use super::{Ctx, exactly_one, exec, http_call, name, positive, resolve_url, step};
use crate::allow;
use crate::cond::Subject;
use crate::model::*;
use crate::probe::RedisReading;
use crate::units::Dur;

pub(crate) fn guard(cx: &mut Ctx<'_>, path: &str, g: &Guard, t: &Target) {
    if let Some(n) = &g.name {
        name(cx, &format!("{path}.name"), "guard", n);
    }
    match g.kind(1.0) {
        Err(e @ crate::guard::GuardShapeError::ValueWithoutProbe) => cx.error_hint(
            &format!("{path}.when"),
            e.to_string(),
            "write it like \"error_rate > 5%\" or \"p95 > 900ms\", or add a probe",
        ),
        Err(e @ crate::guard::GuardShapeError::MetricWithProbe(_)) => cx.error_hint(
            &format!("{path}.when"),
            e.to_string(),
            "write it like \"value > 2000\"",
        ),
        Ok(_) => {}
    }
    if g.every.is_zero() || g.every > Dur::from_secs(1) {
        cx.error_hint(
            &format!("{path}.every"),
            format!(
                "guards are evaluated at least every second; every is {}",
                g.every
            ),
            "use a value from 100ms to 1s",
        );
    }
    if let Some(p) = &g.probe {
        probe(cx, &format!("{path}.probe"), p, t);
    }
}

/// A queue's name or key, as its format has them.
fn queue_ref(cx: &mut Ctx<'_>, p: &str, q: &QueueRef) {
    let f = q.format.name();
    match (q.format, &q.queue, &q.key) {
        (JobFormat::Raw, Some(_), _) => cx.error_hint(
            &format!("{p}.queue"),
            "the raw format has no queue names",
            "set key: the Redis key the jobs go into",
        ),
        (JobFormat::Raw, None, None) => cx.error_hint(
            p,
            "the raw format needs key",
            "set key: the Redis key the jobs go into",
        ),
        (JobFormat::Rq | JobFormat::Celery | JobFormat::Sidekiq, _, Some(k)) => {
            let example = QueueRef {
                format: q.format,
                queue: Some("NAME".into()),
                key: None,
            };
            cx.error_hint(
                &format!("{p}.key"),
                format!("{f} keeps its queues under keys of its own, not \"{k}\""),
                format!(
                    "set queue: NAME ({f} keeps queue NAME in the key {})",
                    example.key()
                ),
            );
        }
        (_, Some(n), _) if n.trim().is_empty() => {
            cx.error(&format!("{p}.queue"), "the queue name is empty");
        }
        _ => {}
    }
}

fn enqueue(cx: &mut Ctx<'_>, p: &str, e: &Enqueue) {
    queue_ref(cx, p, &e.queue_ref());
    let f = e.format.name();
    if e.format == JobFormat::Raw {
        if e.payload.is_none() {
            cx.error_hint(
                p,
                "the raw format needs payload",
                "set payload: the job as its workers read it ({n} is the job number, {uuid} a fresh id)",
            );
        }
        if !e.args.is_empty() {
            cx.error_hint(
                &format!("{p}.args"),
                "args are for a job format; raw writes payload as is",
                "put the arguments in payload, or set format",
            );
        }
        return;
    }
    for (field, set) in [("into", e.into.is_some()), ("payload", e.payload.is_some())] {
        if set {
            cx.error_hint(
                &format!("{p}.{field}"),
                format!("{field} is for the raw format; {f} writes its jobs its own way"),
                format!("set format: raw to write your own payload, or leave {field} out"),
            );
        }
    }
    if e.format == JobFormat::Laravel && !e.args.is_empty() {
        cx.error_hint(
            &format!("{p}.args"),
            "a Laravel job carries a serialized PHP command, not arguments",
            "leave args out (task sets the job's displayName), or use format: raw with your payload",
        );
    }
    let what = match e.format {
        JobFormat::Rq => Some("the function its workers import and call, like app.tasks.notify"),
        JobFormat::Celery => Some("the registered task name, like app.tasks.notify"),
        JobFormat::Sidekiq => Some("the worker class, like NotifyWorker"),
        _ => None,
    };
    match (&e.task, what) {
        (None, Some(what)) => cx.error_hint(
            p,
            format!("the {f} format needs task"),
            format!("set task: {what}"),
        ),
        (Some(t), _) if e.format == JobFormat::Rq && !t.contains('.') => cx.error_hint(
            &format!("{p}.task"),
            format!("RQ imports the function by its dotted path; \"{t}\" has no module"),
            "write module.function, like app.tasks.notify",
        ),
        _ => {}
    }
}

pub(crate) fn probe(cx: &mut Ctx<'_>, path: &str, p: &Probe, t: &Target) {
    match p {
        Probe::Redis(r) => {
            let p = format!("{path}.redis");
            let set: Vec<&str> = r.readings().iter().map(|x| x.name()).collect();
            let pairs = RedisReading::NAMES.map(|n| (n, set.contains(&n)));
            exactly_one(cx, &p, "a redis probe", &pairs);
            if let Some(q) = &r.pending {
                queue_ref(cx, &format!("{p}.pending"), q);
            }
            cx.refused(&format!("{p}.url"), allow::redis(&t.allow, &r.url));
        }
        Probe::Sql(s) => cx.refused(&format!("{path}.sql.url"), allow::sql(&t.allow, &s.url)),
        Probe::Http(h) => cx.refused(
            &format!("{path}.http.url"),
            allow::http(&t.allow, &resolve_url(&t.base_url, &h.url)),
        ),
        Probe::Prometheus(q) => cx.refused(
            &format!("{path}.prometheus.url"),
            allow::http(&t.allow, &q.url),
        ),
        Probe::Docker(d) => {
            if docker_target(cx, &format!("{path}.docker"), d) {
                cx.refused(&format!("{path}.docker"), allow::docker(&t.allow, d));
            }
        }
        Probe::Kubernetes(k) => {
            if kube_target(cx, &format!("{path}.kubernetes"), k) {
                cx.refused(
                    &format!("{path}.kubernetes"),
                    allow::kubernetes(&t.allow, k),
                );
            }
        }
    }
}

fn docker_target(cx: &mut Ctx<'_>, path: &str, d: &DockerTarget) -> bool {
    let ok = exactly_one(
        cx,
        path,
        "a docker target",
        &[
            ("name", d.name.is_some()),
            ("id", d.id.is_some()),
            ("labels", !d.labels.is_empty()),
            ("compose_service", d.compose_service.is_some()),
        ],
    );
    if d.max_targets == Some(0) {
        cx.error(
            &format!("{path}.max_targets"),
            "max_targets must be at least 1",
        );
    }
    for (i, l) in d.labels.iter().enumerate() {
        if !l.contains('=') {
            cx.error_hint(
                &format!("{path}.labels[{i}]"),
                format!("label \"{l}\" has no value"),
                "write key=value",
            );
        }
    }
    ok
}

fn kube_target(cx: &mut Ctx<'_>, path: &str, k: &KubernetesTarget) -> bool {
    if k.namespace.is_empty() {
        cx.error(&format!("{path}.namespace"), "namespace is empty");
    }
    exactly_one(
        cx,
        path,
        "a kubernetes target",
        &[
            ("deployment", k.deployment.is_some()),
            ("statefulset", k.statefulset.is_some()),
            ("pods", k.pods.is_some()),
        ],
    )
}

/// Checks one drill's spec. `cx` locates paths inside the spec.
pub(crate) fn drill_spec(cx: &mut Ctx<'_>, s: &DrillSpec, t: &Target) {
    if s.faults.is_empty() {
        cx.error_hint(
            "faults",
            "a drill needs at least one fault",
            "add a fault: what to break and how",
        );
    }
    positive(cx, "hold", "hold", s.hold);
    if let Some(max) = cx.policy().and_then(|p| p.limits.faults_per_drill)
        && s.faults.len() > max as usize
    {
        cx.error_hint(
            "faults",
            format!(
                "{} faults: the daemon's policy allows at most {max} per drill",
                s.faults.len()
            ),
            "split the drill in two",
        );
    }
    let mut names = BTreeSet::new();
    for (i, f) in s.faults.iter().enumerate() {
        let p = format!("faults[{i}]");
        if !names.insert(f.name.as_str()) {
            cx.error(
                &format!("{p}.name"),
                format!("fault name \"{}\" is used twice", f.name),
            );
        }
        name(cx, &format!("{p}.name"), "fault", &f.name);
        fault(cx, &p, f, t);
    }
    for (i, a) in s.actions.iter().enumerate() {
        let p = format!("actions[{i}]");
        if !exactly_one(
            cx,
            &p,
            "an action",
            &[
                ("enqueue", a.enqueue.is_some()),
                ("exec", a.exec.is_some()),
                ("http", a.http.is_some()),
            ],
        ) {
            continue;
        }
        if let Some(e) = &a.enqueue {
            if e.jobs == 0 {
                cx.error(&format!("{p}.enqueue.jobs"), "jobs must be at least 1");
            }
            enqueue(cx, &format!("{p}.enqueue"), e);
            cx.refused(
                &format!("{p}.enqueue.redis"),
                allow::redis(&t.allow, &e.redis),
            );
        }
        if let Some(e) = &a.exec {
            exec(cx, &format!("{p}.exec"), e, &t.allow);
        }
        if let Some(h) = &a.http {
            http_call(cx, &format!("{p}.http"), h, t);
        }
    }
    let mut names = BTreeSet::new();
    for (i, c) in s.checks.iter().enumerate() {
        let p = format!("checks[{i}]");
        if !names.insert(c.name.as_str()) {
            cx.error(
                &format!("{p}.name"),
                format!("check name \"{}\" is used twice", c.name),
            );
        }
        name(cx, &format!("{p}.name"), "check", &c.name);
        check(cx, &p, c, t);
    }
    for (i, g) in s.guards.iter().enumerate() {
        guard(cx, &format!("guards[{i}]"), g, t);
    }
}

fn check(cx: &mut Ctx<'_>, p: &str, c: &Check, t: &Target) {
    if !exactly_one(
        cx,
        p,
        "a check",
        &[
            ("slo", c.slo.is_some()),
            ("count", c.count.is_some()),
            ("delta", c.delta.is_some()),
            ("probe", c.probe.is_some()),
        ],
    ) {
        return;
    }
    if let Some(l) = &c.slo {
        limits(cx, &format!("{p}.slo"), l);
        if l.is_empty() {
            cx.error_hint(
                &format!("{p}.slo"),
                "the slo check sets no limit",
                "set p95, max, error_rate, …",
            );
        }
    }
    if let Some(d) = &c.delta {
        if !d.metric.accepts(&d.max) {
            cx.error_hint(
                &format!("{p}.delta.max"),
                format!(
                    "{} rises by {}, not \"{}\"",
                    d.metric.name(),
                    d.metric.example(),
                    d.max
                ),
                "match the unit to the metric",
            );
        }
        if c.phase == Some(Phase::Baseline) {
            cx.error(&format!("{p}.phase"), "a delta check compares a phase with the baseline; it cannot measure the baseline itself");
        }
    }
    if let Some(pr) = &c.probe {
        probe(cx, &format!("{p}.probe"), pr, t);
        match &c.until {
            None => cx.error_hint(
                p,
                "a probe check needs `until`",
                "say what the value must become, like until: \"< 1\"",
            ),
            Some(u) if u.subject != Subject::Value => cx.error_hint(
                &format!("{p}.until"),
                "until compares the probe's value",
                "write it like \"< 1\" or \"value == 0\"",
            ),
            _ => {}
        }
        match c.within {
            None => cx.error_hint(
                p,
                "a probe check needs `within`",
                "say how long recovery may take, like within: 5m",
            ),
            Some(w) => positive(cx, &format!("{p}.within"), "within", w),
        }
        positive(cx, &format!("{p}.every"), "every", c.every);
    } else {
        if c.until.is_some() {
            cx.error(&format!("{p}.until"), "until applies to probe checks only");
        }
        if c.within.is_some() {
            cx.error(
                &format!("{p}.within"),
                "within applies to probe checks only",
            );
        }
    }
}

fn fault(cx: &mut Ctx<'_>, p: &str, f: &Fault, t: &Target) {
    applicability(cx, p, f);
    options(cx, p, f);
    reversibility(cx, p, f);
    fault_target(cx, p, f, t);
    fault_calls(cx, p, f, t);
}

/// The policy's actions, and the (action, target) pair against the one table.
fn applicability(cx: &mut Ctx<'_>, p: &str, f: &Fault) {
    let a = f.action;
    if let Some(allowed) = cx.policy().and_then(|p| p.actions.clone())
        && !allowed.contains(&a)
    {
        let names: Vec<&str> = allowed.iter().map(|a| a.name()).collect();
        cx.error_hint(
            &format!("{p}.action"),
            format!("the daemon's policy does not allow {} faults", a.name()),
            format!("it allows {}", crate::diag::one_of(&names)),
        );
    }
    let backend = f.target.as_ref().map(TargetRef::backend);
    // The one applicability table; `Fault::kind` decodes through the same.
    let allowed: Vec<&str> = crate::fault::backends_for(a)
        .iter()
        .map(|b| b.name())
        .collect();
    match (backend, allowed.is_empty()) {
        (None, false) => cx.error_hint(
            p,
            format!("fault \"{}\" ({}) needs a target", f.name, a.name()),
            format!("add target: {{{}: …}}", allowed[0]),
        ),
        (Some(_), true) => cx.error_hint(
            &format!("{p}.target"),
            format!("a {} fault takes no target", a.name()),
            format!("put what it touches under `{}:`", a.name()),
        ),
        (Some(b), false) if !allowed.contains(&b) => cx.error_hint(
            &format!("{p}.target"),
            format!("{} does not apply to a {b} target", a.name()),
            format!("{} works on {}", a.name(), crate::diag::one_of(&allowed)),
        ),
        _ => {}
    }
}

/// Options that belong to other actions are mistakes, not no-ops; and the ones an action
/// needs.
fn options(cx: &mut Ctx<'_>, p: &str, f: &Fault) {
    use FaultAction as A;
    let a = f.action;
    let opts: [(&str, bool, &[FaultAction]); 8] = [
        ("replicas", f.replicas.is_some(), &[A::Scale]),
        ("network", f.network.is_some(), &[A::Disconnect]),
        ("pattern", f.pattern.is_some(), &[A::DeleteKeys]),
        ("client_type", f.client_type.is_some(), &[A::ClientKill]),
        ("scope", f.scope.is_some(), &[A::Flush]),
        ("route_switch", f.route_switch.is_some(), &[A::Promote]),
        ("exec", f.exec.is_some(), &[A::Exec]),
        ("sql", f.sql.is_some(), &[A::Sql]),
    ];
    for (name, set, for_actions) in opts {
        if set && !for_actions.contains(&a) {
            cx.error(
                &format!("{p}.{name}"),
                format!("{name} does not apply to a {} fault", a.name()),
            );
        }
    }
    if f.http.is_some() && a != A::Http {
        cx.error(
            &format!("{p}.http"),
            format!("http does not apply to a {} fault", a.name()),
        );
    }
    let need = |cx: &mut Ctx<'_>, set: bool, name: &str, example: &str| {
        if !set {
            cx.error_hint(
                p,
                format!("a {} fault needs `{name}`", a.name()),
                format!("add {name}: {example}"),
            );
        }
    };
    match a {
        A::Disconnect => need(cx, f.network.is_some(), "network", "my-network"),
        A::DeleteKeys => need(cx, f.pattern.is_some(), "pattern", "\"cache:*\""),
        A::Exec => need(
            cx,
            f.exec.is_some(),
            "exec",
            "{inject: {command: [...]}, revert: {command: [...]}}",
        ),
        A::Sql => need(cx, f.sql.is_some(), "sql", "{inject: \"…\", revert: \"…\"}"),
        A::Http => need(
            cx,
            f.http.is_some(),
            "http",
            "{inject: {url: …}, revert: {url: …}}",
        ),
        // What the others need is their target, checked with the table.
        A::Stop
        | A::Pause
        | A::Kill
        | A::Restart
        | A::Scale
        | A::DeletePods
        | A::Flush
        | A::ClientPause
        | A::ClientKill
        | A::Promote => {}
    }
}

/// Built-in inverses, or a revert the user wrote, or an explicit acknowledgement.
fn reversibility(cx: &mut Ctx<'_>, p: &str, f: &Fault) {
    use FaultAction as A;
    let a = f.action;
    let inherently_irreversible =
        matches!(a, A::Flush | A::DeleteKeys | A::Promote | A::ClientKill);
    let missing_revert = match a {
        A::Exec => f.exec.as_ref().is_some_and(|e| e.revert.is_none()),
        A::Sql => f.sql.as_ref().is_some_and(|s| s.revert.is_none()),
        A::Http => f.http.as_ref().is_some_and(|h| h.revert.is_none()),
        A::Stop | A::Kill => {
            matches!(&f.target, Some(TargetRef::Process(pt)) if pt.restart.is_none())
        }
        A::Pause
        | A::Restart
        | A::Scale
        | A::DeletePods
        | A::Disconnect
        | A::Flush
        | A::ClientPause
        | A::ClientKill
        | A::DeleteKeys
        | A::Promote => false,
    };
    if inherently_irreversible && !f.irreversible {
        cx.error_hint(
            p,
            format!("fault \"{}\" ({}) cannot be undone", f.name, a.name()),
            "set `irreversible: true` to acknowledge that the run changes it for good",
        );
    } else if missing_revert && !f.irreversible {
        let what = if matches!(a, A::Stop | A::Kill) {
            "a `restart` command on its process target"
        } else {
            "a `revert`"
        };
        cx.error_hint(
            p,
            format!("fault \"{}\" has no revert", f.name),
            format!("add {what}, or set `irreversible: true`"),
        );
    }
}

/// The target: well formed, then inside the allow-list.
fn fault_target(cx: &mut Ctx<'_>, p: &str, f: &Fault, t: &Target) {
    use FaultAction as A;
    let a = f.action;
    match &f.target {
        Some(TargetRef::Docker(d)) if docker_target(cx, &format!("{p}.target.docker"), d) => {
            cx.refused(&format!("{p}.target.docker"), allow::docker(&t.allow, d));
        }
        Some(TargetRef::Kubernetes(k)) if kube_target(cx, &format!("{p}.target.kubernetes"), k) => {
            if a == A::DeletePods && k.pods.is_none() {
                cx.error_hint(
                    &format!("{p}.target.kubernetes"),
                    "delete-pods needs a pods selector",
                    "write pods: app=horizon",
                );
            }
            if matches!(a, A::Scale | A::Stop) && k.pods.is_some() {
                cx.error_hint(
                    &format!("{p}.target.kubernetes"),
                    format!("{} needs a deployment or statefulset", a.name()),
                    "name the workload, or use delete-pods for pods",
                );
            }
            cx.refused(
                &format!("{p}.target.kubernetes"),
                allow::kubernetes(&t.allow, k),
            );
        }
        Some(TargetRef::Process(pt)) => {
            if exactly_one(
                cx,
                &format!("{p}.target.process"),
                "a process target",
                &[
                    ("name", pt.name.is_some()),
                    ("pid_file", pt.pid_file.is_some()),
                ],
            ) {
                cx.refused(&format!("{p}.target.process"), allow::process(&t.allow, pt));
            }
            if let Some(r) = &pt.restart {
                exec(cx, &format!("{p}.target.process.restart"), r, &t.allow);
            }
        }
        Some(TargetRef::Redis(e)) => {
            cx.refused(&format!("{p}.target.redis"), allow::redis(&t.allow, &e.url))
        }
        Some(TargetRef::Sql(e)) => {
            cx.refused(&format!("{p}.target.sql"), allow::sql(&t.allow, &e.url))
        }
        Some(TargetRef::Http(e)) => cx.refused(
            &format!("{p}.target.http"),
            allow::http(&t.allow, &resolve_url(&t.base_url, &e.url)),
        ),
        // Malformed docker or kubernetes targets were reported by the guards above.
        Some(TargetRef::Docker(_) | TargetRef::Kubernetes(_)) | None => {}
    }
}

/// The commands and calls a fault carries.
fn fault_calls(cx: &mut Ctx<'_>, p: &str, f: &Fault, t: &Target) {
    if let Some(e) = &f.exec {
        exec(cx, &format!("{p}.exec.inject"), &e.inject, &t.allow);
        if let Some(r) = &e.revert {
            exec(cx, &format!("{p}.exec.revert"), r, &t.allow);
        }
    }
    if let Some(h) = &f.http {
        http_call(cx, &format!("{p}.http.inject"), &h.inject, t);
        if let Some(r) = &h.revert {
            http_call(cx, &format!("{p}.http.revert"), r, t);
        }
    }
    if let Some(s) = &f.route_switch {
        step(cx, &format!("{p}.route_switch"), s, t);
    }
}
