//! One role, one file on purpose (over 800 lines): the raw YAML documents, the language's reference.
//! `kind: Playbook` and `kind: Drill`, every field with the doc comment that is its user
//! documentation (what `drill schema` emits), in the order the schema shows them. Types only,
//! no logic; leaves are typed ([`Dur`], [`Rate`], [`Percent`], [`Condition`]) so a value that
//! parsed is a valid value; rules that span several fields live in [`crate::validate`], and
//! the typed view of a fault in [`crate::fault`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cond::Condition;
use crate::units::{Dur, Percent, Rate, Statuses};

/// The only `apiVersion` this drill understands.
pub const API_VERSION: &str = "drill/v1";

/// Name, description and labels of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Lowercase letters, digits and dashes; unique among playbooks (or drills).
    pub name: String,
    /// What this document is for, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form labels, copied onto runs and metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One environment's drill session: the target, the traffic, the SLOs, the drills and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Always `drill/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always `Playbook`.
    pub kind: String,
    pub metadata: Metadata,
    /// When the daemon runs this playbook; ignored by `drill apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// What the run talks to, and the allow-list of everything it may touch.
    pub target: Target,
    /// Steps run before the baseline (enable a feature flag, warm caches, reindex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<Step>,
    /// Steps run after the last drill, even when the run failed or was aborted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teardown: Vec<Step>,
    /// The load held throughout the run.
    pub traffic: Traffic,
    /// Limits on the traffic's latency and errors, overall and per phase.
    #[serde(default)]
    pub slo: Slo,
    /// Conditions watched all run long; when one trips, the run aborts and reverts every fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<Guard>,
    /// The drills, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<DrillRef>,
}

/// When the daemon runs the playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A crontab line (`0 3 * * 1-5`: minute hour day-of-month month day-of-week, UTC) or the
    /// 6/7-field form with seconds first (`0 0 3 * * Mon-Fri`), or `@daily`/`@hourly`/….
    pub cron: String,
    /// What to do when the previous run is still going: `forbid` (skip this one),
    /// `allow` (run both) or `replace` (abort the old one, revert it, start the new one).
    #[serde(default)]
    pub concurrency: Concurrency,
    /// Keep the schedule but do not start runs (each nominal time is recorded as missed,
    /// reason `suspended`).
    #[serde(default)]
    pub suspend: bool,
    /// How late a run may still start after its nominal time (Kubernetes'
    /// `startingDeadlineSeconds`). After downtime the daemon starts at most one catch-up run,
    /// for the most recent missed time, and only within this deadline; every other missed
    /// time is recorded as missed. Unset: the most recent missed time is always caught up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline: Option<Dur>,
    /// Start each run up to this long after its nominal time, at random, so that many
    /// schedules on one minute do not start together. Runs stay keyed by the nominal time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
}

/// What to do when a scheduled run is due while the previous one still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Concurrency {
    #[default]
    Forbid,
    Allow,
    Replace,
}

/// What the run talks to and what it may touch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Where request paths are sent, e.g. `https://staging.api.example.com`.
    pub base_url: String,
    /// Everything the run may touch. Nothing outside it is ever touched, and a playbook
    /// without one is refused (fail closed).
    pub allow: Allow,
}

/// The allow-list. Each fault, action, probe and step names a target; validation refuses any
/// target that no entry here covers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// HTTP hosts, `host` or `host:port`; `*.example.com` covers subdomains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// Docker containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerAllow>,
    /// Kubernetes context, namespaces and workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesAllow>,
    /// Redis endpoints, `redis://host:port` (credentials and database are not compared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redis: Vec<String>,
    /// SQL endpoints, `postgres://host:port` or `mysql://host:port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sql: Vec<String>,
    /// Local processes, by name or pid-file path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    /// Programs that exec steps and hooks may run: a name (`psql`, found along drill's own
    /// `PATH`) or a path (`./scripts/failover.sh`, from drill's working directory;
    /// `/usr/bin/psql`). The command's program is resolved first and that file must be the
    /// one listed; drill then runs it by its absolute path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    /// The operator's policy this list is narrowed by, when one is in force: set by the
    /// loader, never by YAML. Every check consults both lists.
    #[serde(skip)]
    #[schemars(skip)]
    pub envelope: Option<std::sync::Arc<Envelope>>,
}

/// A program an operator's policy allows (`kind: Policy`, see [`crate::policy`]).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ExecRule {
    /// An absolute path; `*` matches any run of characters.
    pub program: String,
    /// The arguments every command of this program starts with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

impl<'de> Deserialize<'de> for ExecRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            program: String,
            #[serde(default)]
            args: Vec<String>,
        }
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "an absolute program path, or {program: PATH, args: [ARG, …]}"
        )]
        enum Either {
            Path(String),
            Full(Full),
        }
        Ok(match Either::deserialize(d)? {
            Either::Path(program) => ExecRule {
                program,
                args: Vec::new(),
            },
            Either::Full(f) => ExecRule {
                program: f.program,
                args: f.args,
            },
        })
    }
}

/// An operator's policy list, as carried inside a playbook's [`Allow`] (`Allow::envelope`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    /// The targets, in the allow-list's own shape (`exec` holds the rules' programs).
    pub allow: Allow,
    pub exec: Vec<ExecRule>,
    pub exec_env: Vec<String>,
}

/// Docker containers the run may touch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerAllow {
    /// Container names or ids; `*` matches any run of characters (`horizon-*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    /// Labels `key=value`; a container carrying one of them is allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// The Kubernetes scope the run may touch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAllow {
    /// The kubeconfig context; a target naming another context is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Namespaces; `*` allows all (not recommended).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Workloads `deployment/NAME`, `statefulset/NAME`, `pods/SELECTOR`; empty allows every
    /// workload in the namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<String>,
}

/// A setup or teardown step: exactly one of `exec` or `http`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A label for logs and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Run a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
    /// Call an HTTP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCall>,
}

/// A command run without a shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// Program and arguments, e.g. `[php, artisan, horizon:pause]`.
    pub command: Vec<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory; the playbook's directory when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Kill the command after this long and count it as failed.
    #[serde(default = "default_exec_timeout")]
    pub timeout: Dur,
}

fn default_exec_timeout() -> Dur {
    Dur::from_secs(60)
}

/// An HTTP call (a webhook, a cache warm-up, a feature-flag switch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    /// Absolute URL, or a path resolved against `target.base_url`.
    pub url: String,
    /// `GET`, `POST`, … (default `POST`).
    #[serde(default = "default_post")]
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Status codes that count as success: `200` or `[200, 204]` (default: any 2xx).
    #[serde(default, skip_serializing_if = "Statuses::is_empty")]
    pub expect_status: Statuses,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
}

fn default_post() -> String {
    "POST".into()
}
fn default_get() -> String {
    "GET".into()
}
fn default_http_timeout() -> Dur {
    Dur::from_secs(10)
}

/// The load held during the run: what to request, how fast, and what counts as an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// A JSON file (path relative to the playbook) whose records fill `{placeholders}` in
    /// requests: an array of objects, or an object with such an array under `tokens`,
    /// `credentials` or `records` (the seed's `load_credentials.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The requests; arrivals are spread over them by weight (smooth weighted round-robin).
    pub requests: Vec<RequestSpec>,
    /// The arrival-rate profile (open model): stages run one after the other.
    pub profile: Vec<Stage>,
    /// Most requests in flight at once; arrivals beyond it are counted as dropped. Default:
    /// the profile's peak rate × `timeout` (every arrival may wait its whole timeout), at
    /// least 64, at most 100,000. In-flight requests share at most 1,024 connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Per-request timeout.
    #[serde(default = "default_request_timeout")]
    pub timeout: Dur,
    /// What counts as a failed request: `5xx`, `4xx`, `429` (or any status code), `timeout`,
    /// `connect`, `reset`. A request's failed `expect` counts too, always, unless that
    /// `expect` says `error: false` (`check` may be listed; it changes nothing).
    #[serde(default = "default_errors")]
    pub errors: Vec<ErrorClass>,
    /// HTTP version: `auto` (ALPN), `http1` or `http2`.
    #[serde(default)]
    pub http: HttpVersion,
    /// TLS options for staging endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Spread the traffic over several processes (shards) that split the one schedule; the
    /// engine adds up their measurements and judges the run once. Absent: one process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<Distributed>,
}

/// Shards of the traffic: `shards` processes, shard `k` sending arrivals `k, k+N, …` of the
/// one schedule, each reporting its HdrHistograms per second to the history store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Distributed {
    /// How many shards (2 to 256).
    pub shards: u32,
    /// Where they run: `local` (processes on this host, also the way to use every core) or
    /// `kubernetes` (one Indexed Job; needs a PostgreSQL store the pods can reach). (Not
    /// `on`: YAML reads a bare `on` as `true`.)
    #[serde(default)]
    pub run_on: ShardsOn,
    /// The Job of `run_on: kubernetes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<ShardJob>,
}

/// Where shards run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShardsOn {
    #[default]
    Local,
    Kubernetes,
}

/// How the shards' Kubernetes Job is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardJob {
    /// The namespace the Job is created in.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The drill image the pods run (`drill load --store … --run … --shards N`).
    pub image: String,
    /// The service account of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The Secret key holding the store's URL (`DRILL_STORE` of the pods); without it the
    /// pods get the URL the engine uses, in plain text in the Job's spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_secret: Option<SecretKey>,
    /// How long the pods have to be scheduled and started before the traffic's first
    /// arrival (the shared zero is this far after the Job is created).
    #[serde(default = "default_shard_start")]
    pub start_within: Dur,
}

/// A key of a Kubernetes Secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKey {
    pub name: String,
    pub key: String,
}

fn default_namespace() -> String {
    "default".into()
}
fn default_shard_start() -> Dur {
    Dur::from_secs(60)
}

fn default_request_timeout() -> Dur {
    Dur::from_secs(10)
}
fn default_errors() -> Vec<ErrorClass> {
    vec![
        ErrorClass::Status5xx,
        ErrorClass::Status(429),
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::Reset,
    ]
}

/// HTTP protocol version used by the traffic generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HttpVersion {
    #[default]
    Auto,
    Http1,
    Http2,
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM file of extra CA certificates to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Skip certificate verification (staging only; never for production).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// One kind of request in the traffic mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Names the request in reports (`profile_activity`).
    pub name: String,
    #[serde(default = "default_get")]
    pub method: String,
    /// Path (or absolute URL) template; `{field}` is filled from a dataset record,
    /// e.g. `/api/v1/communities/{community_id}/members/{member_id}/activity?per_page=50`.
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A bearer token template, `{token}`: rotates through the dataset with the records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<String>,
    /// A JSON body (templates in strings are filled too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Relative share of arrivals (at least 1); 1 by default.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1))]
    pub weight: u32,
    /// Cursor pagination: follow-up requests use the cursor found in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<Follow>,
    /// A check on the JSON response; a failure counts as an error of class `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<BodyCheck>,
}

fn default_weight() -> u32 {
    1
}

/// Cursor pagination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    /// JSON pointer to the next cursor in the response, e.g. `/meta/next_cursor`.
    pub cursor: String,
    /// Query parameter that carries it on the next request.
    #[serde(default = "default_cursor_param")]
    pub param: String,
    /// Most pages followed per arrival.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
}

fn default_cursor_param() -> String {
    "cursor".into()
}
fn default_max_pages() -> u32 {
    5
}

/// A check on a JSON response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BodyCheck {
    /// JSON pointer into the body, e.g. `/data`.
    pub pointer: String,
    /// The value must exist (default) or, with `false`, must not.
    #[serde(default = "default_true")]
    pub exists: bool,
    /// The value must equal this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    /// A failed expectation counts as a failed request (the default: a `200` whose body says
    /// `{"error": …}` is an application error, as the seed plan counts them), whatever
    /// `traffic.errors` lists; `false` only reports it among the checks.
    #[serde(default = "default_true")]
    pub error: bool,
}

fn default_true() -> bool {
    true
}

/// One stage of the arrival-rate profile. Write one of:
/// `{rate: 20/s}` (start at 20/s), `{rate: 120/s, hold: 5m}` (constant),
/// `{ramp_to: 50/s, over: 2m}` (linear ramp from the current rate), `{hold: 1m}` (keep the
/// current rate).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Set the rate (held for `hold`, or the start of the next ramp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// Ramp linearly from the current rate to this one, over `over`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_to: Option<Rate>,
    /// How long a ramp takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<Dur>,
    /// How long the rate is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Dur>,
}

/// A class of failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    Status4xx,
    Status5xx,
    Status(u16),
    Timeout,
    Connect,
    Reset,
    Check,
}

impl std::str::FromStr for ErrorClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "5xx" => ErrorClass::Status5xx,
            "4xx" => ErrorClass::Status4xx,
            "timeout" => ErrorClass::Timeout,
            "connect" => ErrorClass::Connect,
            "reset" => ErrorClass::Reset,
            "check" => ErrorClass::Check,
            other => match other.parse::<u16>() {
                Ok(code) if (100..600).contains(&code) => ErrorClass::Status(code),
                _ => {
                    return Err(format!(
                        "unknown error class \"{s}\": use 5xx, 4xx, a status code like 429, timeout, connect, reset or check"
                    ));
                }
            },
        })
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorClass::Status4xx => f.write_str("4xx"),
            ErrorClass::Status5xx => f.write_str("5xx"),
            ErrorClass::Status(c) => write!(f, "{c}"),
            ErrorClass::Timeout => f.write_str("timeout"),
            ErrorClass::Connect => f.write_str("connect"),
            ErrorClass::Reset => f.write_str("reset"),
            ErrorClass::Check => f.write_str("check"),
        }
    }
}

crate::string_serde!(
    ErrorClass,
    "an error class: 5xx, 4xx, a status code like 429, timeout, connect, reset or check"
);

/// Latency and error limits. Latencies are measured from the intended send time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Dur>,
    /// Share of failed requests (see `traffic.errors`), strictly below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<Percent>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The latency limits in order of percentile, with their names.
    pub fn latencies(&self) -> [(&'static str, Option<Dur>); 6] {
        [
            ("avg", self.avg),
            ("p50", self.p50),
            ("p90", self.p90),
            ("p95", self.p95),
            ("p99", self.p99),
            ("max", self.max),
        ]
    }
}

/// SLOs on the traffic: limits over the whole run, and per phase.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<Percent>,
    /// Overrides for one phase of every drill (`baseline`, `fault`, `recovery`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<Phase, Limits>,
}

impl Slo {
    /// The run-wide limits.
    pub fn overall(&self) -> Limits {
        Limits {
            avg: self.avg,
            p50: self.p50,
            p90: self.p90,
            p95: self.p95,
            p99: self.p99,
            max: self.max,
            error_rate: self.error_rate,
        }
    }
}

/// A phase of a drill.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The window before the first fault, used as the reference for deltas.
    Baseline,
    /// From injection to revert (or to the end of the hold for irreversible faults).
    Fault,
    /// From revert until the recovery checks pass or their window ends.
    Recovery,
    /// Fault and recovery together.
    Drill,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Baseline => "baseline",
            Phase::Fault => "fault",
            Phase::Recovery => "recovery",
            Phase::Drill => "drill",
        })
    }
}

/// A condition watched continuously; when it holds (for `for`), the run aborts and every
/// fault is reverted at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// A label for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `p95 > 900ms`, `error_rate > 5%` (traffic over a sliding window: `for` kept between
    /// 1 s and 10 s, or 10 s without `for`), or with a `probe`, `value > 2000`.
    pub when: Condition,
    /// Trip only when the condition has held this long, evaluation after evaluation (like an
    /// alert rule's `for`); scaled by `--time-scale`.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Dur>,
    /// Observe this instead of the traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    /// How often to evaluate (at most 1s).
    #[serde(default = "default_every")]
    pub every: Dur,
}

fn default_every() -> Dur {
    Dur::from_secs(1)
}

/// A drill in a playbook: a shipped one by name (`uses` + `with`), or written inline (`drill`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRef {
    /// Names this drill in reports; defaults to the drill's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The name of a drill document (the shipped ones are in `drills/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// Parameters for the drill named by `uses`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub with: BTreeMap<String, serde_json::Value>,
    /// An inline drill instead of `uses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillSpec>,
    /// Start at this offset from the start of the traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Dur>,
    /// `recovered`: start once the previous drill has recovered — and be skipped if its
    /// recovery checks failed; `previous`: start once the previous drill has ended, whatever
    /// its checks said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<After>,
    /// Extra wait after `after` is met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
}

/// What a drill waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum After {
    /// The previous drill's recovery checks passed; when they failed (or it did not run to
    /// its end), this drill is skipped: its faults are never applied.
    Recovered,
    /// The previous drill ended, whether or not its recovery checks passed.
    Previous,
}

/// A reusable fault scenario (`kind: Drill`), with parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillDoc {
    /// Always `drill/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always `Drill`.
    pub kind: String,
    pub metadata: Metadata,
    /// Parameters a playbook sets with `with:`; `{{ name }}` in `spec` is replaced by the value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Param>,
    pub spec: DrillSpec,
}

/// A drill parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value used when the playbook does not set one; a parameter without a default is
    /// required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

/// What a drill breaks, what it does meanwhile, and what must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillSpec {
    /// The window before injection that serves as the baseline phase.
    #[serde(default = "default_baseline")]
    pub baseline: Dur,
    /// How long the faults are held before they are reverted (for irreversible faults: how
    /// long the fault phase is observed).
    #[serde(default = "default_hold")]
    pub hold: Dur,
    /// The faults, all injected at the drill's start.
    pub faults: Vec<Fault>,
    /// Mutations that are not faults (enqueue jobs, call a webhook), at a moment of the drill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// What must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Guards active while this drill runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<Guard>,
    /// The recovery phase length when no recovery check sets one with `within`.
    #[serde(default = "default_recovery")]
    pub recovery: Dur,
}

fn default_baseline() -> Dur {
    Dur::from_secs(60)
}
fn default_hold() -> Dur {
    Dur::from_secs(60)
}
fn default_recovery() -> Dur {
    Dur::from_secs(60)
}

/// One fault: an action on a target, with its inverse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub name: String,
    /// What to do to the target.
    pub action: FaultAction,
    /// What to do it to (not needed for `exec`, `sql`, `http` faults, which carry their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetRef>,
    /// `scale`: the replica count during the fault (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// `disconnect`: the Docker network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `delete-keys`: the key pattern (`cache:*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// `client-kill`: the client type (`normal`, `pubsub`, `replica`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_type: Option<String>,
    /// `flush`: `all` (FLUSHALL, default) or `db` (FLUSHDB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<FlushScope>,
    /// `promote`: a step that switches the route to the new primary (the ProxySQL script).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_switch: Option<Step>,
    /// `exec`: commands to inject and revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecFault>,
    /// `sql`: statements to inject and revert, on `target`'s database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlFault>,
    /// `http`: calls to inject and revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFault>,
    /// Set to true for a fault that cannot be undone (FLUSHALL, promoting a replica): the
    /// report lists what was changed for good.
    #[serde(default)]
    pub irreversible: bool,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    /// Docker stop (restart after), Kubernetes scale to 0 (restore the count), process SIGTERM
    /// (restart command after).
    Stop,
    /// Docker pause, process SIGSTOP; undone by unpause / SIGCONT.
    Pause,
    /// Docker kill / process SIGKILL; started again afterwards if it was running.
    Kill,
    /// Docker restart.
    Restart,
    /// Kubernetes: scale to `replicas`.
    Scale,
    /// Kubernetes: delete pods matching the target's selector (count/percent limited).
    DeletePods,
    /// Docker: disconnect from `network`, reconnect after.
    Disconnect,
    /// Redis FLUSHALL / FLUSHDB (irreversible).
    Flush,
    /// Redis CLIENT PAUSE WRITE for the hold: writes wait, reads go on (Redis ends it by
    /// itself when the hold is over, even if drill is gone; revert lifts it at once).
    ClientPause,
    /// Redis CLIENT KILL TYPE `client_type`.
    ClientKill,
    /// Redis: delete keys matching `pattern` with SCAN + UNLINK (irreversible).
    DeleteKeys,
    /// SQL: promote the replica at `target` to primary (irreversible), then `route_switch`.
    Promote,
    /// SQL statements with their revert statements.
    Sql,
    /// Commands with their revert commands.
    Exec,
    /// HTTP calls with their revert calls.
    Http,
}

impl FaultAction {
    pub fn name(self) -> &'static str {
        match self {
            FaultAction::Stop => "stop",
            FaultAction::Pause => "pause",
            FaultAction::Kill => "kill",
            FaultAction::Restart => "restart",
            FaultAction::Scale => "scale",
            FaultAction::DeletePods => "delete-pods",
            FaultAction::Disconnect => "disconnect",
            FaultAction::Flush => "flush",
            FaultAction::ClientPause => "client-pause",
            FaultAction::ClientKill => "client-kill",
            FaultAction::DeleteKeys => "delete-keys",
            FaultAction::Promote => "promote",
            FaultAction::Sql => "sql",
            FaultAction::Exec => "exec",
            FaultAction::Http => "http",
        }
    }
}

/// FLUSHALL or FLUSHDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlushScope {
    All,
    Db,
}

/// An exec fault: a command to inject, and one to revert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecFault {
    pub inject: Exec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<Exec>,
}

/// A SQL fault on the target database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlFault {
    pub inject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<String>,
}

/// An HTTP fault: a call to inject and one to revert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpFault {
    pub inject: HttpCall,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<HttpCall>,
}

/// What a fault, action or probe touches. Exactly one backend key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetRef {
    Docker(DockerTarget),
    Kubernetes(KubernetesTarget),
    Process(ProcessTarget),
    Redis(Endpoint),
    Sql(Endpoint),
    Http(Endpoint),
}

impl TargetRef {
    /// The backend's name ([`crate::fault::Backend::name`]).
    pub fn backend(&self) -> &'static str {
        self.backend_kind().name()
    }
}

/// Docker containers, by name, id, labels or compose service. Set one selector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// All of these `key=value` labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The `com.docker.compose.service` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_service: Option<String>,
    /// Touch at most this many of the matching containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_targets: Option<u32>,
    /// Touch at most this share of the matching containers (rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
}

/// A Kubernetes workload or set of pods.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statefulset: Option<String>,
    /// A label selector for `delete-pods`, e.g. `app=horizon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
}

/// A local process, by name or pid file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    /// The command that starts it again after `stop`/`kill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Exec>,
}

/// A network endpoint: write the URL, or `{url: …}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Endpoint {
    /// `redis://host:6379/0`, `postgres://user@host:5432/db`, `https://host/path`.
    pub url: String,
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            url: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a URL, or a mapping with `url`")]
        enum Either {
            Url(String),
            Full(Full),
        }
        Ok(match Either::deserialize(d)? {
            Either::Url(url) => Endpoint { url },
            Either::Full(f) => Endpoint { url: f.url },
        })
    }
}

/// A mutation that is not a fault: it has no inverse and needs none (enqueue jobs, call a
/// webhook, run a command). Exactly one of `enqueue`, `exec`, `http`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The moment: `inject` (with the faults, default), `revert` (when they are reverted).
    #[serde(default)]
    pub at: Moment,
    /// Extra wait after the moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueue: Option<Enqueue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCall>,
}

/// A moment in a drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Moment {
    #[default]
    Inject,
    Revert,
}

/// Push jobs into a queue on Redis, written the way the queue's own library writes them, so
/// its workers run them: `laravel` (default), `rq`, `celery`, `sidekiq`, or `raw` (your
/// payload into the key as is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Enqueue {
    /// The Redis endpoint.
    pub redis: String,
    /// The job format.
    #[serde(default)]
    pub format: JobFormat,
    /// The queue's name; the Redis keys follow from the format (see [`JobFormat`]). Default:
    /// the format's default queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The Redis key itself: required for `raw`; for `laravel`, when the application sets a
    /// Redis prefix (e.g. `laravel_database_queues:default`); it then wins over `queue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// How many jobs.
    pub jobs: u32,
    /// What the job runs: RQ's function (`app.tasks.notify`), Celery's task name, Sidekiq's
    /// worker class (all three required), Laravel's `displayName` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The job's positional arguments; in strings, `{n}` is the job number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<serde_json::Value>,
    /// `raw` only: `list` (RPUSH, default), `stream` (XADD) or `zset` (ZADD with the current
    /// time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<QueueKind>,
    /// `raw` only: the payload template; `{n}` is the job number, `{uuid}` a fresh id and
    /// `{now}` the Unix time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

impl Enqueue {
    /// The queue this writes to.
    pub fn queue_ref(&self) -> QueueRef {
        QueueRef {
            format: self.format,
            queue: self.queue.clone(),
            key: self.key.clone(),
        }
    }
}

/// A job system's format on Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobFormat {
    /// Laravel's Redis queue: JSON payloads RPUSHed to `queues:NAME` (default queue
    /// `default`); pending = the list + `:delayed` + `:reserved`, as Laravel's `size()`.
    #[default]
    Laravel,
    /// RQ: a hash `rq:job:ID` per job (pickled call, zlib) and its id RPUSHed to
    /// `rq:queue:NAME` (default `default`); pending = the list's length, as `Queue.count`.
    Rq,
    /// Celery (kombu's Redis transport, message protocol 2, JSON): LPUSHed to the list NAME
    /// (default `celery`); pending = the list and its priority lists, as kombu's `_size`.
    Celery,
    /// Sidekiq: JSON jobs LPUSHed to `queue:NAME` (default `default`), the name added to
    /// `queues`; pending = the list's length, as `Sidekiq::Queue#size`.
    Sidekiq,
    /// Your payload, into `key` as is; pending = the key's length for its type.
    Raw,
}

impl JobFormat {
    pub fn name(self) -> &'static str {
        match self {
            JobFormat::Laravel => "laravel",
            JobFormat::Rq => "rq",
            JobFormat::Celery => "celery",
            JobFormat::Sidekiq => "sidekiq",
            JobFormat::Raw => "raw",
        }
    }

    /// The queue a job goes to when none is named.
    pub fn default_queue(self) -> &'static str {
        match self {
            JobFormat::Celery => "celery",
            _ => "default",
        }
    }
}

/// A queue on Redis: its format and its name (or, for `laravel` with a prefix and `raw`, its
/// key).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRef {
    #[serde(default)]
    pub format: JobFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl QueueRef {
    /// The queue's name (the format's default when none is set).
    pub fn name(&self) -> &str {
        self.queue
            .as_deref()
            .unwrap_or_else(|| self.format.default_queue())
    }

    /// The Redis key that holds the queue's pending jobs (ids, for RQ).
    pub fn key(&self) -> String {
        if let Some(k) = &self.key {
            return k.clone();
        }
        let name = self.name();
        match self.format {
            JobFormat::Laravel => format!("queues:{name}"),
            JobFormat::Rq => format!("rq:queue:{name}"),
            JobFormat::Celery | JobFormat::Raw => name.to_owned(),
            JobFormat::Sidekiq => format!("queue:{name}"),
        }
    }
}

/// The Redis structure a queue lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    #[default]
    List,
    Stream,
    Zset,
}

/// What must hold. Exactly one of `slo`, `count`, `delta`, `probe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    /// The phase the traffic is measured over (default `fault`); probe checks start at the
    /// revert (`recovery`) unless set to `fault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// SLO limits on the traffic in the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Limits>,
    /// At most `max` failed requests of class `of` in the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountCheck>,
    /// A metric may rise at most this much over the baseline phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaCheck>,
    /// A probe that must satisfy `until` within `within`; reports the recovery time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    /// The condition on the probe's value, e.g. `< 1` or `value == 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Condition>,
    /// The recovery window for a probe check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Dur>,
    /// How often the probe is read.
    #[serde(default = "default_every")]
    pub every: Dur,
}

/// Count failed requests of a class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountCheck {
    /// The error class counted (`5xx`, `429`, `timeout`, …).
    pub of: ErrorClass,
    /// The most allowed.
    pub max: u64,
}

/// A limit on a metric's rise over the baseline phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeltaCheck {
    /// `p50`, `p90`, `p95`, `p99`, `max`, `avg` or `error_rate`.
    pub metric: crate::cond::Metric,
    /// The most it may rise: a duration for latencies, a percentage for `error_rate`.
    pub max: crate::cond::Quantity,
}

/// A read-only observation. Exactly one backend key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    Redis(RedisProbe),
    Sql(SqlProbe),
    Http(HttpProbe),
    Prometheus(PrometheusProbe),
    Docker(DockerTarget),
    Kubernetes(KubernetesTarget),
}

impl Probe {
    pub fn backend(&self) -> &'static str {
        match self {
            Probe::Redis(_) => "redis",
            Probe::Sql(_) => "sql",
            Probe::Http(_) => "http",
            Probe::Prometheus(_) => "prometheus",
            Probe::Docker(_) => "docker",
            Probe::Kubernetes(_) => "kubernetes",
        }
    }
}

/// A Redis reading: set `url` and exactly one of the others.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisProbe {
    pub url: String,
    /// Length of a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llen: Option<String>,
    /// Length of a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xlen: Option<String>,
    /// Size of a sorted set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zcard: Option<String>,
    /// A key's value, as a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get: Option<String>,
    /// 1 when the key exists, else 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<String>,
    /// Number of keys.
    #[serde(default)]
    pub dbsize: bool,
    /// An INFO field, e.g. `connected_clients`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// The jobs pending in a queue, counted the way its job system counts them, e.g.
    /// `{format: rq, queue: default}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<QueueRef>,
}

/// A SQL scalar query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlProbe {
    pub url: String,
    /// Returns one row with one numeric (or boolean) column.
    pub query: String,
}

/// An HTTP reading: the value is the JSON field at `pointer`, else the latency in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    pub url: String,
    /// The status the response must have, else the probe reads as failed: `200` or
    /// `[200, 204]` (default: any status).
    #[serde(default, skip_serializing_if = "Statuses::is_empty")]
    pub expect_status: Statuses,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// A Prometheus instant query, reduced to a scalar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusProbe {
    pub url: String,
    pub query: String,
}
