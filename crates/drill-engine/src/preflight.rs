//! Before anything changes: every URL resolved against the base URL, every fault prepared
//! (allow-list, resolution, current state; no mutation), every probe read once, the traffic
//! target reached; and the lock keys that keep two runs off one target. Fail closed: any
//! error here aborts the run before its first mutation.

use std::time::Duration;

use drill_spec::ValidPlaybook;
use drill_spec::call::{ActionKind, Call, ValidStep};
use drill_spec::check::Rule;
use drill_spec::fault::{Kind, RedisAction, SqlAction, ValidFault};
use drill_spec::model::{
    FlushScope, Guard, HttpCall, JobFormat, Probe, QueueRef, RedisProbe, TargetRef,
};
use drill_spec::url::BaseUrl;

use crate::checks;

/// One thing preflight could not confirm.
#[derive(Debug, thiserror::Error)]
#[error("{label}")]
pub struct PreflightError {
    /// `drill/fault`, `guard NAME`, `traffic` …
    pub label: String,
    #[source]
    pub cause: Cause,
}

#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Fault(#[from] drill_faults::FaultError),
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}: no answer in 5 s")]
    NoAnswer { addr: String },
}

/// The lock key of each fault's target: runs that would touch the same target exclude each
/// other.
pub fn lock_keys(vp: &ValidPlaybook) -> Vec<String> {
    let mut keys: Vec<String> = vp
        .drills
        .iter()
        .flat_map(|d| d.faults.iter())
        .map(lock_key)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

pub(crate) fn lock_key(f: &ValidFault) -> String {
    let endpoint = |u: &str| drill_spec::allow::endpoint_key(u).unwrap_or_else(|| u.to_owned());
    let target = |t: TargetRef| {
        format!(
            "{}:{}",
            t.backend(),
            serde_json::to_string(&t).unwrap_or_default()
        )
    };
    match &f.kind {
        Kind::Redis { endpoint: e, .. } => format!("redis:{}", endpoint(&e.url)),
        Kind::Sql { endpoint: e, .. } => format!("sql:{}", endpoint(&e.url)),
        Kind::Docker { target: t, .. } => target(TargetRef::Docker(t.clone())),
        Kind::Kubernetes { target: t, .. } => target(TargetRef::Kubernetes(t.clone())),
        Kind::Process { target: t, .. } => target(TargetRef::Process(t.clone())),
        Kind::Exec(e) => format!("exec:{}", e.inject.command.join(" ")),
        Kind::Http(h) => format!("http:{}", endpoint(&h.inject.url)),
    }
}

fn resolve_call(base: &BaseUrl, c: &mut HttpCall) {
    c.url = base.resolve_str(&c.url);
}

fn resolve_probe(base: &BaseUrl, p: &mut Probe) {
    if let Probe::Http(h) = p {
        h.url = base.resolve_str(&h.url);
    }
}

fn resolve_step(base: &BaseUrl, s: &mut ValidStep) {
    match &mut s.call {
        Call::Http(h) => resolve_call(base, h),
        Call::Exec(_) => {}
    }
}

/// Relative URLs in calls and HTTP probes, resolved against `target.base_url` by the same
/// rule validation checked them with ([`BaseUrl::resolve`]).
pub(crate) fn resolve_urls(vp: &mut ValidPlaybook) {
    let base = vp.base.clone();
    vp.setup.iter_mut().for_each(|s| resolve_step(&base, s));
    vp.teardown.iter_mut().for_each(|s| resolve_step(&base, s));
    for g in &mut vp.playbook.guards {
        if let Some(p) = &mut g.probe {
            resolve_probe(&base, p);
        }
    }
    for d in &mut vp.drills {
        for f in &mut d.faults {
            match &mut f.kind {
                Kind::Http(h) => {
                    resolve_call(&base, &mut h.inject);
                    if let Some(r) = &mut h.revert {
                        resolve_call(&base, r);
                    }
                }
                Kind::Sql {
                    action:
                        SqlAction::Promote {
                            route_switch: Some(s),
                        },
                    ..
                } => resolve_step(&base, s),
                // No URL in them to resolve.
                Kind::Sql { .. }
                | Kind::Docker { .. }
                | Kind::Kubernetes { .. }
                | Kind::Process { .. }
                | Kind::Redis { .. }
                | Kind::Exec(_) => {}
            }
        }
        for a in &mut d.actions {
            match &mut a.kind {
                ActionKind::Http(h) => resolve_call(&base, h),
                ActionKind::Enqueue(_) | ActionKind::Exec(_) => {}
            }
        }
        for c in &mut d.checks {
            match &mut c.rule {
                Rule::Probe(p) => resolve_probe(&base, &mut p.probe),
                Rule::Slo(_) | Rule::Count(_) | Rule::Delta(_) => {}
            }
        }
        for g in &mut d.spec.guards {
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
        for c in &d.checks {
            if let Some(p) = c.probe() {
                out.push((format!("{}: check {}", d.name, c.name), p.probe.clone()));
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

pub(crate) fn guard_name(g: &Guard, i: usize) -> String {
    g.name.clone().unwrap_or_else(|| format!("guard {}", i + 1))
}

/// What preflight found: what would change, what deserves a warning, what failed.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub preview: Vec<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<PreflightError>,
}

/// A job queue the playbook names (an enqueue, or a probe that reads it): where it lives.
struct NamedQueue {
    by: String,
    url: String,
    queue: QueueRef,
}

/// The queues the playbook's enqueues and probes name.
fn named_queues(vp: &ValidPlaybook) -> Vec<NamedQueue> {
    let raw = |key: &str| QueueRef {
        format: JobFormat::Raw,
        queue: None,
        key: Some(key.to_owned()),
    };
    let mut out = Vec::new();
    for d in &vp.drills {
        for (i, a) in d.actions.iter().enumerate() {
            if let ActionKind::Enqueue(e) = &a.kind {
                let name = a
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("action {}", i + 1));
                out.push(NamedQueue {
                    by: format!("{}/{name}", d.name),
                    url: e.redis.clone(),
                    queue: e.queue_ref(),
                });
            }
        }
    }
    for (label, p) in all_probes(vp) {
        if let Probe::Redis(r) = p {
            use drill_spec::probe::RedisReading as R;
            let q = match r.reading() {
                Some(R::Pending(q)) => q.clone(),
                Some(R::Llen(k) | R::Xlen(k) | R::Zcard(k)) => raw(k),
                Some(R::Get(_) | R::Exists(_) | R::Dbsize | R::Info(_)) | None => continue,
            };
            out.push(NamedQueue {
                by: label,
                url: r.url.clone(),
                queue: q,
            });
        }
    }
    out
}

/// A flush that would erase a queue the playbook names: the warning, with the queue's
/// pending jobs read now.
async fn flush_warnings(vp: &ValidPlaybook, found: &mut Found) {
    let allow = &vp.playbook.target.allow;
    let queues = named_queues(vp);
    for d in &vp.drills {
        for f in &d.faults {
            let Kind::Redis {
                endpoint: ep,
                action: RedisAction::Flush(scope),
            } = &f.kind
            else {
                continue;
            };
            let scope = *scope;
            let server = drill_spec::allow::endpoint_key(&ep.url);
            let mut seen = std::collections::BTreeSet::new();
            for q in &queues {
                let same_server = drill_spec::allow::endpoint_key(&q.url) == server;
                let erased = same_server
                    && (scope == FlushScope::All
                        || drill_spec::allow::redis_db(&q.url)
                            == drill_spec::allow::redis_db(&ep.url));
                let key = q.queue.key();
                if !erased || !seen.insert((drill_spec::allow::redis_db(&q.url), key.clone())) {
                    continue;
                }
                let probe = Probe::Redis(RedisProbe {
                    url: q.url.clone(),
                    pending: Some(q.queue.clone()),
                    ..RedisProbe::default()
                });
                let now = match drill_faults::probe(&probe, allow).await {
                    Ok(n) => format!("{} pending now", checks::fmt_num(n)),
                    Err(e) => format!("its length unread: {}", drill_faults::chain(&e)),
                };
                let what = match scope {
                    FlushScope::All => "FLUSHALL",
                    FlushScope::Db => "FLUSHDB",
                };
                found.warnings.push(format!(
                    "{}/{}: {} also holds the queue {key} that {} names ({now}); the {what} erases \
                     whatever it holds then. Put the cache and the queue in different databases \
                     and flush with scope: db, or order the drills so the queue has drained",
                    d.name, f.name, q.url, q.by
                ));
            }
        }
    }
}

/// Preflight: every fault prepared (allow-list, resolution, current state; no mutation),
/// every probe read once, the traffic target reachable. Returns what would change, the
/// warnings, and the failures.
pub(crate) async fn check(vp: &ValidPlaybook, scale: f64) -> Found {
    let allow = &vp.playbook.target.allow;
    let mut found = Found::default();
    flush_warnings(vp, &mut found).await;
    let preview = &mut found.preview;
    let errors = &mut found.errors;
    for d in &vp.drills {
        let hold = d.spec.hold.scaled(scale).0;
        for f in &d.faults {
            match drill_faults::prepare(f, allow, hold).await {
                Ok(p) => {
                    for c in &p.changes {
                        preview.push(format!("{}/{}: would {c}", d.name, f.name));
                    }
                    if let Some(perm) = p.record.permanent() {
                        preview.push(format!("{}/{}: cannot be undone: {perm}", d.name, f.name));
                    }
                }
                Err(e) => errors.push(PreflightError {
                    label: format!("{}/{}", d.name, f.name),
                    cause: e.into(),
                }),
            }
        }
    }
    // Every command the run would run, resolved and checked now: a step refused later would
    // stop a run that has already changed things.
    for (label, e) in commands(vp) {
        match drill_faults::exec::resolve(e, allow) {
            Ok(r) => preview.push(format!(
                "{label}: would run {}",
                drill_faults::exec::shown(&r)
            )),
            Err(e) => errors.push(PreflightError {
                label,
                cause: e.into(),
            }),
        }
    }
    for (label, p) in all_probes(vp) {
        match drill_faults::probe(&p, allow).await {
            Ok(v) => preview.push(format!("{label}: reads {}", checks::fmt_num(v))),
            Err(e) => errors.push(PreflightError {
                label,
                cause: e.into(),
            }),
        }
    }
    match reachable(&vp.base).await {
        Ok(addr) => preview.push(format!("traffic: {addr} accepts connections")),
        Err(cause) => errors.push(PreflightError {
            label: "traffic".into(),
            cause,
        }),
    }
    found
}

/// The commands of the setup and teardown steps and of the drills' actions, labelled. (A
/// fault's own commands are resolved by its `prepare`.)
fn commands(vp: &ValidPlaybook) -> Vec<(String, &drill_spec::model::Exec)> {
    fn step<'a>(
        kind: &str,
        i: usize,
        s: &'a ValidStep,
    ) -> Option<(String, &'a drill_spec::model::Exec)> {
        let name = s.name.clone().unwrap_or_else(|| format!("step {}", i + 1));
        match &s.call {
            Call::Exec(e) => Some((format!("{kind} {name}"), e)),
            Call::Http(_) => None,
        }
    }
    let mut out: Vec<(String, &drill_spec::model::Exec)> = Vec::new();
    out.extend(
        vp.setup
            .iter()
            .enumerate()
            .filter_map(|(i, s)| step("setup", i, s)),
    );
    out.extend(
        vp.teardown
            .iter()
            .enumerate()
            .filter_map(|(i, s)| step("teardown", i, s)),
    );
    for d in &vp.drills {
        for (i, a) in d.actions.iter().enumerate() {
            if let ActionKind::Exec(e) = &a.kind {
                let name = a
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("action {}", i + 1));
                out.push((format!("{}/{name}", d.name), e));
            }
        }
    }
    out
}

/// Whether the traffic target accepts TCP connections.
async fn reachable(base: &BaseUrl) -> Result<String, Cause> {
    let addr = base.socket_addr();
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => Ok(addr),
        Ok(Err(source)) => Err(Cause::Connect { addr, source }),
        Err(_) => Err(Cause::NoAnswer { addr }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_under_a_base_path_is_called_where_validation_checked_it() {
        let yaml = "apiVersion: drill/v1\nkind: Playbook\nmetadata: {name: t}\ntarget:\n  base_url: http://127.0.0.1:9/api\n  allow: {http: [127.0.0.1]}\ntraffic:\n  requests: [{name: home, path: /}]\n  profile: [{rate: 1/s, hold: 1s}]\nguards:\n  - {when: value > 1, probe: {http: {url: health}}}\n  - {when: value > 1, probe: {http: {url: /ready}}}\n";
        let env = |_: &str| None;
        let mut loader = drill_spec::Loader::new(&env);
        loader.add("t.yaml", yaml, true);
        let out = loader.finish();
        assert!(!out.has_errors(), "{:?}", out.diags);
        let mut vp = out.playbooks[0].clone();
        resolve_urls(&mut vp);
        let urls: Vec<String> = vp
            .playbook
            .guards
            .iter()
            .filter_map(|g| match &g.probe {
                Some(Probe::Http(h)) => Some(h.url.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:9/api/health",
                "http://127.0.0.1:9/api/ready"
            ]
        );
        assert_eq!(vp.base.resolve_str("health"), urls[0]);
    }

    #[test]
    fn lock_keys_name_what_a_fault_touches_so_two_spellings_share_one() {
        let key = |v: serde_json::Value| {
            lock_key(&serde_json::from_value::<ValidFault>(v).expect("a fault"))
        };
        let flush = |url: &str| {
            key(serde_json::json!({"name": "a", "action": "flush", "target": {"redis": url}}))
        };
        assert_eq!(flush("redis://cache:6379"), "redis:redis://cache:6379");
        assert_eq!(
            flush("rediss://:pw@CACHE/2"),
            flush("redis://cache:6379"),
            "one server, one lock, however its URL is written"
        );
        assert_ne!(flush("redis://cache:6380"), flush("redis://cache:6379"));
        assert_eq!(
            key(serde_json::json!({"name": "e", "action": "exec",
                "exec": {"inject": {"command": ["touch", "x"]}}})),
            "exec:touch x"
        );
        assert_eq!(
            key(serde_json::json!({"name": "h", "action": "http",
                "http": {"inject": {"method": "POST", "url": "http://ctl:8080/chaos"}}})),
            "http:http://ctl:8080"
        );
        // Neither a target nor a command: no such fault can be typed, so none is locked.
        assert!(
            serde_json::from_value::<ValidFault>(
                serde_json::json!({"name": "x", "action": "exec"})
            )
            .is_err()
        );
    }
}
