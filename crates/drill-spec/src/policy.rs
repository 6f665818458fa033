//! The operator's policy (`kind: Policy`): the envelope of what any playbook a daemon runs
//! may touch, owned by whoever runs the daemon and never by a playbook.
//!
//! A playbook's own allow-list can only narrow it: every target is checked against both
//! (`Allow::envelope` carries the policy's list into every check, at validation and again
//! in `drill-faults` at run time). The policy also says which fault actions exist at all,
//! upper bounds (rate, duration, shards, faults, drills), which environment variables an
//! exec may set, and what a playbook *posted* to the API may do. `drill daemon` without
//! `--policy` runs [`Policy::safe_default`]; `drill validate --policy` and `drill apply
//! --policy` check the same locally.
//!
//! What it is not: authentication (tokens say who may call the API; the policy says what
//! any call can make the daemon do).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diag, Loc, Sources};
use crate::model::{Allow, DockerAllow, FaultAction, KubernetesAllow};
pub use crate::model::{Envelope, ExecRule};
use crate::units::{Dur, Rate};

/// The most requests per second one process (one shard) may be asked for, policy or not.
/// Above it a process drops arrivals anyway (see docs/PERFORMANCE.md); a larger rate is a
/// typo or an attack (`1e18/s`).
pub const MAX_RATE_PER_PROCESS: f64 = 200_000.0;
/// The longest traffic profile, policy or not.
pub const MAX_TRAFFIC: Dur = Dur(std::time::Duration::from_secs(24 * 3600));

/// A policy file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Always `drill/v1`.
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    /// Always `Policy`.
    #[serde(default)]
    pub kind: String,
    /// The envelope: everything any playbook on this daemon may touch. Absent: a loaded
    /// playbook keeps its own allow-list (the files under `--playbooks` are the operator's),
    /// and posted playbooks are refused, having nothing to fit in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<PolicyAllow>,
    /// The fault actions a playbook may use (`[stop, pause, latency]`); absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<FaultAction>>,
    /// Upper bounds on every playbook.
    #[serde(default)]
    pub limits: Limits,
    /// What a playbook posted to the API (`POST /api/v1/runs {"yaml": …}`) may do, beyond
    /// fitting in `allow`.
    #[serde(default)]
    pub posted: Posted,
}

/// The policy's allow-list: the playbook allow-list's shape, with programs as absolute
/// paths and the environment variables an exec may set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyAllow {
    /// HTTP hosts, `host` or `host:port`; `*.example.com` covers subdomains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerAllow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesAllow>,
    /// Redis endpoints, `redis://host:port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redis: Vec<String>,
    /// SQL endpoints, `postgres://host:port` or `mysql://host:port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sql: Vec<String>,
    /// Local processes, by name or pid-file path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    /// Programs, as absolute paths (`/usr/bin/psql`, `/opt/hooks/*`), each with an optional
    /// fixed argument prefix: `{program: /usr/bin/php, args: [artisan]}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<ExecRule>,
    /// Environment variables an exec may set that are refused otherwise: `PATH`, `LD_*`,
    /// `PYTHONPATH` and the others that change which program runs or what it loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

/// Upper bounds. Each is also capped by drill's own maxima ([`MAX_RATE_PER_PROCESS`],
/// [`MAX_TRAFFIC`], 256 shards), which apply with no policy at all.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The highest arrival rate one process (one shard) may be asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// The highest arrival rate of a whole run (all shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rate: Option<Rate>,
    /// The longest traffic profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Dur>,
    /// The most shards (`traffic.distributed.shards`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// The most faults one drill may inject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults_per_drill: Option<u32>,
    /// The most drills one playbook may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills: Option<u32>,
}

/// What a posted playbook may do. Every field defaults to the safe value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Posted {
    /// Inline drills (`drill:`); default `false`: only `uses:` of the daemon's own drills.
    #[serde(default)]
    pub inline_drills: bool,
    /// Commands anywhere (exec faults, actions, steps, route switches, restart commands);
    /// default `false`.
    #[serde(default)]
    pub exec: bool,
    /// `setup` and `teardown` steps; default `false`.
    #[serde(default)]
    pub steps: bool,
    /// Variables of the daemon's environment a posted playbook's `${NAME}` may read, beside
    /// the request's own `params`; default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Directories (absolute) a posted playbook may read its files from (`traffic.dataset`,
    /// `traffic.tls.ca_file`) besides the playbook directory; default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

impl Posted {
    /// May a posted playbook read `file`? A relative path inside the playbook directory, or
    /// an absolute one inside a directory of `files`; never with `..`.
    pub fn may_read(&self, file: &str) -> bool {
        if file.split('/').any(|c| c == "..") {
            return false;
        }
        if !file.starts_with('/') {
            return true;
        }
        self.files.iter().any(|d| {
            let d = d.trim_end_matches('/');
            d.starts_with('/')
                && file
                    .strip_prefix(d)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// Where a playbook came from: the operator's files, or the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A file under `--playbooks`, or named on the command line.
    Loaded,
    /// `POST /api/v1/runs {"yaml": …}` (or `drill apply --server`).
    Posted,
}

/// A policy in force for one load: the policy, where the playbooks come from, and how
/// programs are found on this host (for the policy's exec rules).
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub policy: &'a Policy,
    pub origin: Origin,
    pub host: Option<&'a dyn crate::program::Host>,
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// What `drill daemon` runs without `--policy`: no envelope (loaded playbooks keep their
    /// own allow-lists; posted playbooks are refused), every action, drill's own maxima, and
    /// no dangerous exec environment.
    pub fn safe_default() -> Self {
        Policy {
            api_version: crate::model::API_VERSION.into(),
            kind: "Policy".into(),
            ..Policy::default()
        }
    }

    /// The envelope a playbook's allow-list carries, when the policy has one.
    pub fn envelope(&self) -> Option<Arc<Envelope>> {
        let a = self.allow.as_ref()?;
        Some(Arc::new(Envelope {
            allow: Allow {
                http: a.http.clone(),
                docker: a.docker.clone(),
                kubernetes: a.kubernetes.clone(),
                redis: a.redis.clone(),
                sql: a.sql.clone(),
                processes: a.processes.clone(),
                exec: a.exec.iter().map(|r| r.program.clone()).collect(),
                envelope: None,
            },
            exec: a.exec.clone(),
            exec_env: a.exec_env.clone(),
        }))
    }

    /// May an exec set this environment variable?
    pub fn allows_env(&self, name: &str) -> bool {
        !crate::program::dangerous_env(name)
            || self
                .allow
                .as_ref()
                .is_some_and(|a| a.exec_env.iter().any(|e| e.eq_ignore_ascii_case(name)))
    }

    /// One line for the daemon's start-up log: what the policy allows, in words.
    pub fn summary(&self) -> String {
        let envelope = match &self.allow {
            None => "no envelope (loaded playbooks keep their own allow-lists; posted playbooks are refused)".to_owned(),
            Some(a) => format!(
                "envelope of {} HTTP host(s), {} Redis, {} SQL, {} program(s){}{}",
                a.http.len(),
                a.redis.len(),
                a.sql.len(),
                a.exec.len(),
                if a.docker.is_some() { ", Docker" } else { "" },
                if a.kubernetes.is_some() { ", Kubernetes" } else { "" },
            ),
        };
        let actions = match &self.actions {
            None => "every fault action".to_owned(),
            Some(a) => format!(
                "actions {}",
                a.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
            ),
        };
        let p = &self.posted;
        let yes = |b: bool| if b { "yes" } else { "no" };
        format!(
            "{envelope}; {actions}; rate ≤ {}/s per process; posted playbooks: inline drills {}, exec {}, steps {}, {} variable(s) of the environment",
            self.max_rate_per_process(),
            yes(p.inline_drills),
            yes(p.exec),
            yes(p.steps),
            p.env.len()
        )
    }

    /// The highest rate per process: the policy's, within drill's own maximum.
    pub fn max_rate_per_process(&self) -> f64 {
        self.limits
            .rate
            .map_or(MAX_RATE_PER_PROCESS, |r| r.per_second())
            .min(MAX_RATE_PER_PROCESS)
    }

    /// The longest traffic: the policy's, within drill's own maximum.
    pub fn max_traffic(&self) -> Dur {
        self.limits
            .duration
            .map_or(MAX_TRAFFIC, |d| d.min(MAX_TRAFFIC))
    }
}

/// A policy file, read: the policy, or every error with its location.
pub fn parse(file: &str, text: &str) -> Result<Policy, (Vec<Diag>, Sources)> {
    let mut sources = Sources::default();
    let src = sources.add(file);
    let fail = |d: Vec<Diag>, s: Sources| Err((d, s));
    let docs = match crate::node::parse_yaml(text, src) {
        Ok(d) => d,
        Err(d) => return fail(vec![d], sources),
    };
    if docs.len() != 1 {
        let d = Diag::error(
            Loc::new(src, 1, 1),
            format!("a policy file holds one document, found {}", docs.len()),
        )
        .with_hint("start it with apiVersion: drill/v1 and kind: Policy");
        return fail(vec![d], sources);
    }
    let Some(mut node) = docs.into_iter().next() else {
        return fail(Vec::new(), sources);
    };
    node.set_src(src);
    let d = crate::de::decode::<Policy>(&node);
    let mut diags = d.diags;
    let Some(p) = d.value else {
        return fail(diags, sources);
    };
    if p.api_version != crate::model::API_VERSION {
        diags.push(
            Diag::error(
                d.locs.at("apiVersion"),
                format!("unsupported apiVersion \"{}\"", p.api_version),
            )
            .with_hint(format!("write apiVersion: {}", crate::model::API_VERSION)),
        );
    }
    if p.kind != "Policy" {
        diags.push(
            Diag::error(
                d.locs.at("kind"),
                format!("kind \"{}\" is not a policy", p.kind),
            )
            .with_hint("write kind: Policy"),
        );
    }
    if let Some(a) = &p.allow {
        for (i, r) in a.exec.iter().enumerate() {
            if !r.program.starts_with('/') {
                diags.push(
                    Diag::error(
                        d.locs.at(&format!("allow.exec[{i}]")),
                        format!("program \"{}\" is not an absolute path", r.program),
                    )
                    .with_hint("a policy names the file that runs, like /usr/bin/psql (`command -v NAME` prints it)"),
                );
            }
        }
        for (field, list) in [("redis", &a.redis), ("sql", &a.sql)] {
            for (i, e) in list.iter().enumerate() {
                if crate::allow::endpoint_key(e).is_none() {
                    diags.push(Diag::error(
                        d.locs.at(&format!("allow.{field}[{i}]")),
                        format!("\"{e}\" is not a valid URL"),
                    ));
                }
            }
        }
    }
    let l = &p.limits;
    if l.rate.is_some_and(|r| r.per_second() <= 0.0)
        || l.total_rate.is_some_and(|r| r.per_second() <= 0.0)
    {
        diags.push(Diag::error(
            d.locs.at("limits"),
            "a rate limit must be above 0/s",
        ));
    }
    if diags.is_empty() {
        Ok(p)
    } else {
        fail(diags, sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_reads_with_its_rules_and_refuses_a_relative_program() {
        let p = parse(
            "p.yaml",
            "apiVersion: drill/v1\nkind: Policy\nallow:\n  http: [127.0.0.1]\n  exec:\n    - /usr/bin/psql\n    - {program: /usr/bin/php, args: [artisan]}\nactions: [stop, pause]\nlimits: {rate: 500/s}\nposted: {env: [BASE_URL]}\n",
        )
        .expect("valid");
        assert_eq!(p.allow.as_ref().map(|a| a.exec.len()), Some(2));
        assert_eq!(p.max_rate_per_process(), 500.0);
        assert!(!p.posted.exec && !p.posted.steps && !p.posted.inline_drills);
        let errors = |text: &str| {
            let (errs, sources) = parse("p.yaml", text).expect_err("invalid");
            errs.iter().map(|d| sources.render(d)).collect::<Vec<_>>()
        };
        let text = errors("apiVersion: drill/v1\nkind: Policy\nallow:\n  exec: [sh]\n");
        assert!(
            text.iter()
                .any(|t| t.starts_with("p.yaml:4:10:") && t.contains("not an absolute path")),
            "{text:?}"
        );
        let text = errors("apiVersion: drill/v1\nkind: Policy\nposted: {exce: true}\n");
        assert!(
            text.iter()
                .any(|t| t.starts_with("p.yaml:3:10:") && t.contains("did you mean \"exec\"")),
            "{text:?}"
        );
    }

    #[test]
    fn dangerous_variables_need_the_policy_to_name_them() {
        let mut p = Policy::safe_default();
        assert!(!p.allows_env("LD_PRELOAD") && p.allows_env("API_KEY"));
        p.allow = Some(PolicyAllow {
            exec_env: vec!["ld_preload".into()],
            ..PolicyAllow::default()
        });
        assert!(p.allows_env("LD_PRELOAD"));
    }
}
