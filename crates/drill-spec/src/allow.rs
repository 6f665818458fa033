//! Does the allow-list cover a target? Pure functions; the engine checks again at run time
//! against what the target resolves to (containers found by label, pods by selector).
//!
//! Each check consults the playbook's own list and then, when a policy is in force, the
//! policy's (`Allow::envelope`): a target must be inside both. The refusal says which list
//! left it out, since only one of them is the playbook author's to change.

use crate::model::{Allow, DockerTarget, Envelope, ExecRule, KubernetesTarget, ProcessTarget};
use crate::program::{Host, Resolved};
use crate::target::{COMPOSE_SERVICE, Containers};

/// Which list refused: the fix differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Own,
    Policy,
}

impl List {
    fn outside(self) -> &'static str {
        match self {
            List::Own => "outside the allow-list",
            List::Policy => "outside the daemon's policy",
        }
    }

    /// How to fix a refusal: add `entry` to `field` of the playbook's list (`why` ends the
    /// sentence), or ask.
    fn hint(self, entry: &str, field: &str, why: &str) -> String {
        match self {
            List::Own => format!("add \"{entry}\" to target.allow.{field}{why}"),
            List::Policy => format!(
                "the operator's policy does not list it under allow.{field}; ask whoever runs the daemon, or choose a target it lists"
            ),
        }
    }
}

/// Runs `check` on the playbook's list, then on the policy's when there is one.
fn both(allow: &Allow, check: impl Fn(&Allow, List) -> Result<(), Refusal>) -> Result<(), Refusal> {
    check(allow, List::Own)?;
    match &allow.envelope {
        Some(e) => check(&e.allow, List::Policy),
        None => Ok(()),
    }
}

/// Why a target is not covered, and which allow-list entry would cover it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub hint: String,
}

fn refuse(message: String, hint: String) -> Result<(), Refusal> {
    Err(Refusal { message, hint })
}

/// `*` matches any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// `scheme://host:port`, lowercased, with the scheme's default port; credentials, path and
/// query are ignored.
pub fn endpoint_key(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let scheme = match u.scheme() {
        "postgresql" => "postgres",
        "rediss" => "redis",
        "mariadb" => "mysql",
        s => s,
    };
    let host = u.host_str()?.to_ascii_lowercase();
    let port = u.port().or(match scheme {
        "redis" => Some(6379),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    });
    Some(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The database a Redis URL selects (`redis://host/3`), 0 when it names none.
pub fn redis_db(url: &str) -> u32 {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.path().trim_start_matches('/').parse().ok())
        .unwrap_or(0)
}

/// Checks a Redis URL against `allow.redis` (and the policy's).
pub fn redis(allow: &Allow, url: &str) -> Result<(), Refusal> {
    both(allow, |a, l| {
        endpoint_in(&a.redis, url, "redis", "redis", l)
    })
}

/// Checks a SQL URL against `allow.sql` (and the policy's).
pub fn sql(allow: &Allow, url: &str) -> Result<(), Refusal> {
    both(allow, |a, l| endpoint_in(&a.sql, url, "sql", "sql", l))
}

/// Checks a Redis or SQL URL against a list of allowed endpoints.
pub fn endpoint(list: &[String], url: &str, what: &str, field: &str) -> Result<(), Refusal> {
    endpoint_in(list, url, what, field, List::Own)
}

fn endpoint_in(
    list: &[String],
    url: &str,
    what: &str,
    field: &str,
    l: List,
) -> Result<(), Refusal> {
    let Some(key) = endpoint_key(url) else {
        return refuse(
            format!("\"{}\" is not a valid {what} URL", crate::redact::url(url)),
            format!("write it like {}", example(what)),
        );
    };
    if list
        .iter()
        .any(|a| endpoint_key(a).as_deref() == Some(&key))
    {
        return Ok(());
    }
    refuse(
        format!("{what} endpoint {key} is {}", l.outside()),
        l.hint(&key, field, " if this run may touch it"),
    )
}

fn example(what: &str) -> &'static str {
    match what {
        "redis" => "redis://host:6379",
        "sql" => "postgres://user@host:5432/db",
        _ => "https://host/path",
    }
}

/// Checks an HTTP URL's host against `allow.http` (and the policy's).
pub fn http(allow: &Allow, url: &str) -> Result<(), Refusal> {
    both(allow, |a, l| http_in(a, url, l))
}

fn http_in(allow: &Allow, url: &str, l: List) -> Result<(), Refusal> {
    let Ok(u) = url::Url::parse(url) else {
        return refuse(
            format!("\"{}\" is not a valid URL", crate::redact::url(url)),
            "write it like https://host/path".into(),
        );
    };
    let Some(host) = u.host_str().map(str::to_ascii_lowercase) else {
        return refuse(
            format!("\"{}\" has no host", crate::redact::url(url)),
            "write it like https://host/path".into(),
        );
    };
    let with_port = u.port().map(|p| format!("{host}:{p}"));
    let covered = allow.http.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        glob(&a, &host) || with_port.as_deref().is_some_and(|hp| glob(&a, hp))
    });
    if covered {
        return Ok(());
    }
    let name = with_port.unwrap_or(host);
    refuse(
        format!("HTTP host {name} is {}", l.outside()),
        l.hint(&name, "http", " if this run may touch it"),
    )
}

/// Checks a command's program against `allow.exec` by what is written (no filesystem): the
/// program must be listed, and under a policy it must be able to match one of the policy's
/// rules. `drill-faults` checks the resolved file again before it runs anything
/// ([`exec_resolved`]).
pub fn exec(allow: &Allow, command: &[String]) -> Result<(), Refusal> {
    let Some(program) = command.first() else {
        return refuse(
            "the command is empty".into(),
            "write the program and its arguments, like [php, artisan, horizon:pause]".into(),
        );
    };
    if !allow.exec.iter().any(|a| a == program || glob(a, program)) {
        return refuse(
            format!("program \"{program}\" is {}", List::Own.outside()),
            List::Own.hint(program, "exec", " if this run may run it"),
        );
    }
    let Some(e) = &allow.envelope else {
        return Ok(());
    };
    // The policy names absolute paths; by what is written, a name can match a rule's file
    // name, a path the rule's path.
    let name = program.rsplit('/').next().unwrap_or(program);
    let args = &command[1..];
    let could = e.exec.iter().any(|r| {
        let by_path = if program.starts_with('/') {
            glob(&r.program, program)
        } else {
            glob(r.program.rsplit('/').next().unwrap_or(&r.program), name)
        };
        by_path && args.len() >= r.args.len() && r.args.iter().zip(args).all(|(a, b)| a == b)
    });
    if could {
        return Ok(());
    }
    refuse(
        format!("program \"{program}\" is {}", List::Policy.outside()),
        policy_exec_hint(e),
    )
}

fn policy_exec_hint(e: &Envelope) -> String {
    if e.exec.is_empty() {
        return "the operator's policy allows no program (allow.exec is empty)".into();
    }
    let rules: Vec<String> = e.exec.iter().map(describe).collect();
    format!("the operator's policy allows {}", rules.join(", "))
}

/// Checks the file a command will run (its program resolved on the host, see
/// [`crate::program`]) against `allow.exec` and the policy's rules. This is the check that
/// decides; [`exec`] is the early, textual one.
pub fn exec_resolved(
    allow: &Allow,
    command: &[String],
    resolved: &Resolved,
    host: &dyn Host,
) -> Result<(), Refusal> {
    let program = command.first().map_or("", String::as_str);
    if !allow
        .exec
        .iter()
        .any(|a| entry_covers(a, program, resolved, host))
    {
        return refuse(
            format!(
                "program \"{program}\" resolves to {}, which is {}",
                resolved.path,
                List::Own.outside()
            ),
            format!(
                "target.allow.exec must name this file (a name is found along drill's own PATH, a relative path from drill's working directory {}); add \"{}\" if this run may run it",
                host.cwd(),
                resolved.path
            ),
        );
    }
    let Some(e) = &allow.envelope else {
        return Ok(());
    };
    if e.exec
        .iter()
        .any(|r| rule_covers(r, resolved, &command[1..]))
    {
        return Ok(());
    }
    refuse(
        format!(
            "program \"{program}\" resolves to {}, which is {}",
            resolved.path,
            List::Policy.outside()
        ),
        policy_exec_hint(e),
    )
}

/// Does an allow-list entry (`psql`, `./scripts/failover.sh`, `/usr/bin/psql`, `/opt/hooks/*`)
/// cover the program `resolved` from `program`? An entry with a `/` names a file (from the
/// working directory when relative); a bare entry (a glob allowed) covers a bare program
/// found along the process's own `PATH` — the same file a `PATH` set by the command would
/// have to find.
pub fn entry_covers(entry: &str, program: &str, resolved: &Resolved, host: &dyn Host) -> bool {
    if entry.contains('/') {
        let abs = crate::program::absolute(&host.cwd(), entry);
        return glob(&abs, &resolved.path)
            || glob(&abs, &resolved.canonical)
            || host.executable(&abs).as_deref() == Some(resolved.canonical.as_str());
    }
    !program.contains('/')
        && glob(entry, program)
        && crate::program::resolve(program, None, None, host)
            .is_ok_and(|r| r.canonical == resolved.canonical)
}

/// Does a policy's rule cover a command, its program resolved ([`crate::program`])?
pub fn rule_covers(rule: &ExecRule, resolved: &Resolved, args: &[String]) -> bool {
    (glob(&rule.program, &resolved.path) || glob(&rule.program, &resolved.canonical))
        && args.len() >= rule.args.len()
        && rule.args.iter().zip(args).all(|(a, b)| a == b)
}

/// A policy's rule as a reader would write it.
pub fn describe(rule: &ExecRule) -> String {
    if rule.args.is_empty() {
        rule.program.clone()
    } else {
        format!("{} {} …", rule.program, rule.args.join(" "))
    }
}

/// Checks a Docker target: by name or id against `containers`, by labels against `labels`
/// (the playbook's list, then the policy's).
pub fn docker(allow: &Allow, t: &DockerTarget) -> Result<(), Refusal> {
    both(allow, |a, l| docker_in(a, t, l))
}

fn docker_in(allow: &Allow, t: &DockerTarget, l: List) -> Result<(), Refusal> {
    let Some(d) = &allow.docker else {
        return refuse(
            match l {
                List::Own => "no Docker containers are allowed".into(),
                List::Policy => "the daemon's policy allows no Docker container".into(),
            },
            match l {
                List::Own => {
                    "add target.allow.docker with the containers or labels this run may touch"
                        .into()
                }
                List::Policy => l.hint("", "docker", ""),
            },
        );
    };
    let by_name = |n: &str| d.containers.iter().any(|p| glob(p, n));
    let by_label = |lb: &str| d.labels.iter().any(|a| a == lb);
    match t.selector() {
        Some(Containers::Name(n)) if by_name(n) => Ok(()),
        Some(Containers::Name(n)) => refuse(
            format!("container \"{n}\" is {}", l.outside()),
            l.hint(n, "docker.containers", ""),
        ),
        Some(Containers::Id(id)) if by_name(id) => Ok(()),
        Some(Containers::Id(id)) => refuse(
            format!("container {id} is {}", l.outside()),
            l.hint(id, "docker.containers", ""),
        ),
        Some(Containers::ComposeService(s)) => {
            let label = format!("{COMPOSE_SERVICE}={s}");
            if by_label(&label) {
                return Ok(());
            }
            refuse(
                format!("compose service \"{s}\" is {}", l.outside()),
                l.hint(&label, "docker.labels", ""),
            )
        }
        Some(Containers::Labels(labels)) if labels.iter().any(|lb| by_label(lb)) => Ok(()),
        Some(Containers::Labels(labels)) => refuse(
            format!(
                "containers labelled {} are {}",
                labels.join(","),
                l.outside()
            ),
            match l {
                List::Own => "add one of these labels to target.allow.docker.labels".into(),
                List::Policy => l.hint("", "docker.labels", ""),
            },
        ),
        None => refuse(
            "a docker target that selects no one set of containers is never allowed".into(),
            "set exactly one of name, id, labels, compose_service".into(),
        ),
    }
}

/// Checks a Kubernetes target's context, namespace and workload (the playbook's list, then
/// the policy's).
pub fn kubernetes(allow: &Allow, t: &KubernetesTarget) -> Result<(), Refusal> {
    both(allow, |a, l| kubernetes_in(a, t, l))
}

fn kubernetes_in(allow: &Allow, t: &KubernetesTarget, l: List) -> Result<(), Refusal> {
    let Some(k) = &allow.kubernetes else {
        return refuse(
            match l {
                List::Own => "no Kubernetes namespace is allowed".into(),
                List::Policy => "the daemon's policy allows no Kubernetes namespace".into(),
            },
            match l {
                List::Own => {
                    "add target.allow.kubernetes with the context and namespaces this run may touch"
                        .into()
                }
                List::Policy => l.hint("", "kubernetes", ""),
            },
        );
    };
    if let (Some(want), Some(got)) = (&k.context, &t.context)
        && want != got
    {
        return refuse(
            format!("Kubernetes context \"{got}\" is {}", l.outside()),
            format!("the list names context \"{want}\""),
        );
    }
    if !k.namespaces.iter().any(|n| n == "*" || *n == t.namespace) {
        return refuse(
            format!(
                "Kubernetes namespace \"{}\" is {}",
                t.namespace,
                l.outside()
            ),
            l.hint(&t.namespace, "kubernetes.namespaces", ""),
        );
    }
    let Some(workload) = t.workload().map(|w| w.listed()) else {
        return refuse(
            "a kubernetes target that selects no one workload is never allowed".into(),
            "set exactly one of deployment, statefulset, pods".into(),
        );
    };
    if k.workloads.is_empty() {
        return Ok(());
    }
    if k.workloads.iter().any(|w| w == "*" || glob(w, &workload)) {
        return Ok(());
    }
    refuse(
        format!("workload {workload} is {}", l.outside()),
        l.hint(&workload, "kubernetes.workloads", ""),
    )
}

/// Checks a local process by name or pid file (the playbook's list, then the policy's).
pub fn process(allow: &Allow, t: &ProcessTarget) -> Result<(), Refusal> {
    both(allow, |a, l| {
        let Some(by) = t.by() else {
            return refuse(
                "a process target that names no one process is never allowed".into(),
                "set exactly one of name, pid_file".into(),
            );
        };
        let id = by.id();
        if a.processes.iter().any(|p| p == id || glob(p, id)) {
            return Ok(());
        }
        refuse(
            format!("process \"{id}\" is {}", l.outside()),
            l.hint(id, "processes", ""),
        )
    })
}

/// Is every entry of a playbook's own list inside the policy's? An entry the policy does not
/// cover could never be used, and says the playbook was written for another daemon. Returns
/// `(field path, entry)` of each one outside. Globs compare soundly: a policy pattern that
/// matches an entry's text (its `*` taken literally) covers every name the entry matches.
pub fn outside_policy(allow: &Allow) -> Vec<(String, String)> {
    let Some(e) = &allow.envelope else {
        return Vec::new();
    };
    let p = &e.allow;
    let mut out = Vec::new();
    let lower = |s: &str| s.to_ascii_lowercase();
    for (i, h) in allow.http.iter().enumerate() {
        if !p.http.iter().any(|ph| glob(&lower(ph), &lower(h))) {
            out.push((format!("target.allow.http[{i}]"), h.clone()));
        }
    }
    for (field, own, theirs) in [
        ("redis", &allow.redis, &p.redis),
        ("sql", &allow.sql, &p.sql),
    ] {
        for (i, u) in own.iter().enumerate() {
            let key = endpoint_key(u);
            if key.is_some() && !theirs.iter().any(|t| endpoint_key(t) == key) {
                out.push((format!("target.allow.{field}[{i}]"), crate::redact::url(u)));
            }
        }
    }
    for (i, pr) in allow.processes.iter().enumerate() {
        if !p.processes.iter().any(|pp| glob(pp, pr)) {
            out.push((format!("target.allow.processes[{i}]"), pr.clone()));
        }
    }
    if let Some(d) = &allow.docker {
        let pd = p.docker.clone().unwrap_or_default();
        for (i, c) in d.containers.iter().enumerate() {
            if !pd.containers.iter().any(|pc| glob(pc, c)) {
                out.push((format!("target.allow.docker.containers[{i}]"), c.clone()));
            }
        }
        for (i, lb) in d.labels.iter().enumerate() {
            if !pd.labels.contains(lb) {
                out.push((format!("target.allow.docker.labels[{i}]"), lb.clone()));
            }
        }
    }
    if let Some(k) = &allow.kubernetes {
        let pk = p.kubernetes.clone().unwrap_or_default();
        if let (Some(want), Some(got)) = (&pk.context, &k.context)
            && want != got
        {
            out.push(("target.allow.kubernetes.context".into(), got.clone()));
        }
        for (i, n) in k.namespaces.iter().enumerate() {
            if !pk.namespaces.iter().any(|pn| pn == "*" || pn == n) {
                out.push((
                    format!("target.allow.kubernetes.namespaces[{i}]"),
                    n.clone(),
                ));
            }
        }
        if !pk.workloads.is_empty() {
            for (i, w) in k.workloads.iter().enumerate() {
                if !pk.workloads.iter().any(|pw| pw == "*" || glob(pw, w)) {
                    out.push((format!("target.allow.kubernetes.workloads[{i}]"), w.clone()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_compare_by_scheme_host_and_port() {
        let list = vec!["redis://redis.staging:6379".to_string()];
        assert!(endpoint(&list, "redis://:secret@redis.staging/0", "redis", "redis").is_ok());
        assert!(endpoint(&list, "redis://redis.prod:6379", "redis", "redis").is_err());
        // A different port, or another engine on the same host and port, is another endpoint.
        assert!(endpoint(&list, "redis://redis.staging:6380", "redis", "redis").is_err());
        assert!(endpoint(&list, "postgres://redis.staging:6379/x", "redis", "redis").is_err());
        // Spellings of one scheme (postgresql/postgres, rediss/redis) and the default port
        // compare equal; host names compare without case.
        let sql = vec!["postgres://replica.staging:5432".to_string()];
        assert!(endpoint(&sql, "postgresql://app@replica.staging/app", "sql", "sql").is_ok());
        assert!(
            endpoint(
                &sql,
                "postgres://app@REPLICA.staging:5432/app",
                "sql",
                "sql"
            )
            .is_ok()
        );
        assert!(endpoint(&sql, "mysql://replica.staging:5432/app", "sql", "sql").is_err());
        assert!(endpoint(&list, "rediss://redis.staging:6379", "redis", "redis").is_ok());
        let refused = endpoint(&sql, "postgres://primary.staging/app", "sql", "sql")
            .expect_err("another host");
        assert!(
            refused.hint.contains("postgres://primary.staging:5432"),
            "the hint names what to add: {}",
            refused.hint
        );
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("horizon-*", "horizon-1"));
        assert!(glob("*.example.com", "api.example.com"));
        assert!(!glob("*.example.com", "example.org"));
        assert!(glob("a*b*c", "axxbyyc"));
    }
}
