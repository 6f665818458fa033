//! Does the allow-list cover a target? Pure functions; the engine checks again at run time
//! against what the target resolves to (containers found by label, pods by selector).

use crate::model::{Allow, DockerTarget, KubernetesTarget, ProcessTarget};

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

/// Checks a Redis or SQL URL against a list of allowed endpoints.
pub fn endpoint(list: &[String], url: &str, what: &str, field: &str) -> Result<(), Refusal> {
    let Some(key) = endpoint_key(url) else {
        return refuse(
            format!("\"{url}\" is not a valid {what} URL"),
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
        format!("{what} endpoint {key} is outside the allow-list"),
        format!("add \"{key}\" to target.allow.{field} if this run may touch it"),
    )
}

fn example(what: &str) -> &'static str {
    match what {
        "redis" => "redis://host:6379",
        "sql" => "postgres://user@host:5432/db",
        _ => "https://host/path",
    }
}

/// Checks an HTTP URL's host against `allow.http`.
pub fn http(allow: &Allow, url: &str) -> Result<(), Refusal> {
    let Ok(u) = url::Url::parse(url) else {
        return refuse(
            format!("\"{url}\" is not a valid URL"),
            "write it like https://host/path".into(),
        );
    };
    let Some(host) = u.host_str().map(str::to_ascii_lowercase) else {
        return refuse(
            format!("\"{url}\" has no host"),
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
        format!("HTTP host {name} is outside the allow-list"),
        format!("add \"{name}\" to target.allow.http if this run may touch it"),
    )
}

/// Checks a command's program against `allow.exec`.
pub fn exec(allow: &Allow, command: &[String]) -> Result<(), Refusal> {
    let Some(program) = command.first() else {
        return refuse(
            "the command is empty".into(),
            "write the program and its arguments, like [php, artisan, horizon:pause]".into(),
        );
    };
    if allow.exec.iter().any(|a| a == program || glob(a, program)) {
        return Ok(());
    }
    refuse(
        format!("program \"{program}\" is outside the allow-list"),
        format!("add \"{program}\" to target.allow.exec if this run may run it"),
    )
}

/// Checks a Docker target: by name or id against `containers`, by labels against `labels`.
pub fn docker(allow: &Allow, t: &DockerTarget) -> Result<(), Refusal> {
    let Some(d) = &allow.docker else {
        return refuse(
            "no Docker containers are allowed".into(),
            "add target.allow.docker with the containers or labels this run may touch".into(),
        );
    };
    let by_name = |n: &str| d.containers.iter().any(|p| glob(p, n));
    let by_label = |l: &str| d.labels.iter().any(|a| a == l);
    if let Some(n) = &t.name {
        if by_name(n) {
            return Ok(());
        }
        return refuse(
            format!("container \"{n}\" is outside the allow-list"),
            format!("add \"{n}\" to target.allow.docker.containers"),
        );
    }
    if let Some(id) = &t.id {
        if by_name(id) {
            return Ok(());
        }
        return refuse(
            format!("container {id} is outside the allow-list"),
            format!("add \"{id}\" to target.allow.docker.containers"),
        );
    }
    if let Some(s) = &t.compose_service {
        let label = format!("com.docker.compose.service={s}");
        if by_label(&label) {
            return Ok(());
        }
        return refuse(
            format!("compose service \"{s}\" is outside the allow-list"),
            format!("add \"{label}\" to target.allow.docker.labels"),
        );
    }
    if t.labels.iter().any(|l| by_label(l)) {
        return Ok(());
    }
    refuse(
        format!(
            "containers labelled {} are outside the allow-list",
            t.labels.join(",")
        ),
        "add one of these labels to target.allow.docker.labels".into(),
    )
}

/// Checks a Kubernetes target's context, namespace and workload.
pub fn kubernetes(allow: &Allow, t: &KubernetesTarget) -> Result<(), Refusal> {
    let Some(k) = &allow.kubernetes else {
        return refuse(
            "no Kubernetes namespace is allowed".into(),
            "add target.allow.kubernetes with the context and namespaces this run may touch".into(),
        );
    };
    if let (Some(want), Some(got)) = (&k.context, &t.context)
        && want != got
    {
        return refuse(
            format!("Kubernetes context \"{got}\" is outside the allow-list"),
            format!("the allow-list names context \"{want}\""),
        );
    }
    if !k.namespaces.iter().any(|n| n == "*" || *n == t.namespace) {
        return refuse(
            format!(
                "Kubernetes namespace \"{}\" is outside the allow-list",
                t.namespace
            ),
            format!(
                "add \"{}\" to target.allow.kubernetes.namespaces",
                t.namespace
            ),
        );
    }
    if k.workloads.is_empty() {
        return Ok(());
    }
    let workload = if let Some(d) = &t.deployment {
        format!("deployment/{d}")
    } else if let Some(s) = &t.statefulset {
        format!("statefulset/{s}")
    } else if let Some(p) = &t.pods {
        format!("pods/{p}")
    } else {
        return Ok(());
    };
    if k.workloads.iter().any(|w| w == "*" || glob(w, &workload)) {
        return Ok(());
    }
    refuse(
        format!("workload {workload} is outside the allow-list"),
        format!("add \"{workload}\" to target.allow.kubernetes.workloads"),
    )
}

/// Checks a local process by name or pid file.
pub fn process(allow: &Allow, t: &ProcessTarget) -> Result<(), Refusal> {
    let id = t
        .name
        .as_deref()
        .or(t.pid_file.as_deref())
        .unwrap_or_default();
    if allow.processes.iter().any(|p| p == id || glob(p, id)) {
        return Ok(());
    }
    refuse(
        format!("process \"{id}\" is outside the allow-list"),
        format!("add \"{id}\" to target.allow.processes"),
    )
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
