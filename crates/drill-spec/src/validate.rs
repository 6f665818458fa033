//! Semantic validation: rules that span fields, documents and the timeline. Every rule points
//! at the node it is about and, where the fix is clear, says it.
//!
//! Why one long file: the rules are small functions over one `Ctx` that collects located
//! diagnostics, grouped by the document section they check (target, traffic, SLOs, guards,
//! drills, faults) in that order; which targets an action takes is not here but in
//! [`crate::fault::backends_for`].

use std::collections::BTreeSet;

use crate::allow::{self, Refusal};
use crate::cond::Subject;
use crate::de::LocMap;
use crate::diag::{Diag, Loc};
use crate::model::*;
use crate::policy::{Origin, Policy, Scope};
use crate::units::Dur;

/// Where diagnostics for one document (or one drill instance) go, and how to locate paths.
pub(crate) struct Ctx<'a> {
    pub diags: &'a mut Vec<Diag>,
    pub locs: &'a LocMap,
    pub prefix: String,
    /// The operator's policy and where the playbook came from, when one is in force.
    pub scope: Option<Scope<'a>>,
}

impl Ctx<'_> {
    pub fn loc(&self, path: &str) -> Loc {
        self.locs.at(&self.full(path))
    }

    fn full(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_owned(),
            (false, true) => self.prefix.trim_end_matches('.').to_owned(),
            (false, false) if path.starts_with('[') => {
                format!("{}{path}", self.prefix.trim_end_matches('.'))
            }
            (false, false) => format!("{}{path}", self.prefix),
        }
    }

    pub fn error(&mut self, path: &str, msg: impl Into<String>) -> &mut Diag {
        let d = Diag::error(self.loc(path), msg);
        self.diags.push(d);
        self.diags.last_mut().expect("just pushed")
    }

    pub fn error_hint(&mut self, path: &str, msg: impl Into<String>, hint: impl Into<String>) {
        let d = Diag::error(self.loc(path), msg).with_hint(hint);
        self.diags.push(d);
    }

    pub fn warning(&mut self, path: &str, msg: impl Into<String>) {
        let d = Diag::warning(self.loc(path), msg);
        self.diags.push(d);
    }

    fn refused(&mut self, path: &str, r: Result<(), Refusal>) {
        if let Err(r) = r {
            self.error_hint(path, r.message, r.hint);
        }
    }

    /// The policy in force, if any.
    fn policy(&self) -> Option<&Policy> {
        self.scope.map(|s| s.policy)
    }

    /// True for a playbook posted to the API.
    fn posted(&self) -> bool {
        self.scope.is_some_and(|s| s.origin == Origin::Posted)
    }
}

/// The characters names may hold (drills, faults, checks, guards, steps, requests): they end
/// up in metric labels, report tables, JUnit and log lines.
pub const NAME_CHARS: &str = "letters, digits, '.', '_' and '-', at most 63 characters";

/// Checks a name against [`NAME_CHARS`].
pub(crate) fn name(cx: &mut Ctx<'_>, path: &str, what: &str, n: &str) {
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        let shown: String = n.chars().take(40).flat_map(char::escape_default).collect();
        cx.error_hint(
            path,
            format!("invalid {what} name \"{shown}\""),
            format!("use {NAME_CHARS}"),
        );
    }
}

/// Names present among `(name, is_set)` pairs.
fn set_keys(pairs: &[(&'static str, bool)]) -> Vec<&'static str> {
    pairs
        .iter()
        .filter(|(_, set)| *set)
        .map(|(n, _)| *n)
        .collect()
}

/// Exactly one of the keys must be set.
fn exactly_one(cx: &mut Ctx<'_>, path: &str, what: &str, pairs: &[(&'static str, bool)]) -> bool {
    let set = set_keys(pairs);
    let all: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
    match set.len() {
        1 => true,
        0 => {
            cx.error_hint(
                path,
                format!("{what} needs one of {}", crate::diag::one_of(&all)),
                "set exactly one",
            );
            false
        }
        _ => {
            cx.error_hint(
                path,
                format!(
                    "{what} sets {} together",
                    crate::diag::one_of(&set).replace(" or ", " and ")
                ),
                "set exactly one",
            );
            false
        }
    }
}

pub(crate) fn metadata_name(cx: &mut Ctx<'_>, m: &Metadata) {
    let n = &m.name;
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !n.starts_with('-')
        && !n.ends_with('-');
    if !ok {
        cx.error_hint(
            "metadata.name",
            format!("invalid name \"{n}\""),
            "use lowercase letters, digits and dashes, at most 63 characters (like community-staging)",
        );
    }
}

/// Parses a cron line: 5-field crontab (days of week 0-7, Sunday = 0 or 7), or the cron
/// crate's 6/7-field form with seconds first, or `@daily`-style shorthands.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    use std::str::FromStr;
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let normalized = if fields.len() == 5 {
        let dow = crontab_dow(fields[4]);
        format!(
            "0 {} {} {} {} {}",
            fields[0], fields[1], fields[2], fields[3], dow
        )
    } else if expr.trim().starts_with('@') || fields.len() == 6 || fields.len() == 7 {
        expr.trim().to_owned()
    } else {
        return Err(format!(
            "invalid cron \"{expr}\": expected 5 fields (minute hour day month weekday) or 6-7 with seconds first, found {}",
            fields.len()
        ));
    };
    cron::Schedule::from_str(&normalized).map_err(|e| {
        // The cron crate's message repeats the expression with a caret; its last line says why.
        let why = e
            .to_string()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
            .to_string();
        format!("invalid cron \"{expr}\": {why}")
    })
}

/// Crontab numbers weekdays 0-7 from Sunday; the cron crate 1-7. Numbers become names.
fn crontab_dow(field: &str) -> String {
    const NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let mut out = String::new();
    let mut after_slash = false;
    let mut num = String::new();
    let flush = |num: &mut String, out: &mut String, after_slash: bool| {
        if num.is_empty() {
            return;
        }
        match num.parse::<usize>() {
            Ok(n) if !after_slash && n < 8 => out.push_str(NAMES[n]),
            _ => out.push_str(num),
        }
        num.clear();
    };
    for c in field.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            flush(&mut num, &mut out, after_slash);
            after_slash = c == '/';
            out.push(c);
        }
    }
    flush(&mut num, &mut out, after_slash);
    out
}

pub(crate) fn schedule(cx: &mut Ctx<'_>, s: &Schedule) -> Option<cron::Schedule> {
    if let (Some(j), Some(d)) = (s.jitter, s.starting_deadline)
        && j >= d
    {
        cx.error_hint(
            "schedule.jitter",
            format!("jitter {j} is not shorter than starting_deadline {d}: a jittered start would miss its deadline"),
            "make jitter shorter than starting_deadline",
        );
    }
    match parse_cron(&s.cron) {
        Ok(sched) => {
            let epoch = chrono::DateTime::<chrono::Utc>::from_timestamp(1_767_225_600, 0)
                .unwrap_or_default();
            if sched.after(&epoch).next().is_none() {
                cx.error_hint(
                    "schedule.cron",
                    format!("cron \"{}\" never fires", s.cron),
                    "check the day-of-month and month (there is no February 30)",
                );
                return None;
            }
            Some(sched)
        }
        Err(e) => {
            cx.error_hint(
                "schedule.cron",
                e,
                "write it like \"0 3 * * 1-5\" (weekdays at 03:00 UTC)",
            );
            None
        }
    }
}

pub(crate) fn target(cx: &mut Ctx<'_>, t: &Target) {
    match crate::url::BaseUrl::parse(&t.base_url) {
        Ok(_) => {
            cx.refused("target.base_url", allow::http(&t.allow, &t.base_url));
        }
        Err(_) => cx.error_hint(
            "target.base_url",
            format!("invalid base URL \"{}\"", t.base_url),
            "write it like https://staging.api.example.com",
        ),
    }
    for (field, list) in [("redis", &t.allow.redis), ("sql", &t.allow.sql)] {
        for (i, e) in list.iter().enumerate() {
            if allow::endpoint_key(e).is_none() {
                cx.error_hint(
                    &format!("target.allow.{field}[{i}]"),
                    format!("\"{e}\" is not a valid URL"),
                    format!(
                        "write it like {}",
                        if field == "redis" {
                            "redis://host:6379"
                        } else {
                            "postgres://host:5432"
                        }
                    ),
                );
            }
        }
    }
}

/// `url` resolved the way every call resolves it ([`crate::url::BaseUrl::resolve`]); an
/// invalid base was reported by [`target`].
fn resolve_url(base: &str, url: &str) -> String {
    crate::url::BaseUrl::parse(base).map_or_else(|_| url.to_owned(), |b| b.resolve_str(url))
}

pub(crate) fn step(cx: &mut Ctx<'_>, path: &str, s: &Step, t: &Target) {
    if let Some(n) = &s.name {
        name(cx, &format!("{path}.name"), "step", n);
    }
    if !exactly_one(
        cx,
        path,
        "a step",
        &[("exec", s.exec.is_some()), ("http", s.http.is_some())],
    ) {
        return;
    }
    if let Some(e) = &s.exec {
        exec(cx, &format!("{path}.exec"), e, &t.allow);
    }
    if let Some(h) = &s.http {
        http_call(cx, &format!("{path}.http"), h, t);
    }
}

fn exec(cx: &mut Ctx<'_>, path: &str, e: &Exec, allow: &Allow) {
    if e.command.is_empty() || e.command[0].trim().is_empty() {
        cx.error_hint(
            &format!("{path}.command"),
            "the command is empty",
            "write the program and its arguments, like [php, artisan, horizon:pause]",
        );
        return;
    }
    if e.timeout.is_zero() {
        cx.error(&format!("{path}.timeout"), "timeout must be longer than 0s");
    }
    if cx.posted() && cx.policy().is_some_and(|p| !p.posted.exec) {
        cx.error_hint(
            &format!("{path}.command"),
            "a posted playbook may not run commands",
            "the daemon's policy refuses commands in posted playbooks (posted.exec); run a loaded playbook by name instead",
        );
        return;
    }
    if let Some(p) = cx.policy() {
        let refused: Vec<String> = e.env.keys().filter(|k| !p.allows_env(k)).cloned().collect();
        for k in refused {
            cx.error_hint(
                &format!("{path}.env.{k}"),
                format!("{k} may not be set for a command under the daemon's policy: it changes which program runs or what it loads"),
                "remove it, or ask the operator to list it under the policy's allow.exec_env",
            );
        }
    }
    cx.refused(&format!("{path}.command"), allow::exec(allow, &e.command));
    // Under a policy, on the host that runs it: the file the command will run.
    if let Some(host) = cx.scope.and_then(|s| s.host)
        && allow.envelope.is_some()
        && allow::exec(allow, &e.command).is_ok()
    {
        let r = crate::program::resolve(
            &e.command[0],
            e.dir.as_deref(),
            e.env.get("PATH").map(String::as_str),
            host,
        )
        .map_err(|why| Refusal {
            message: format!("program \"{}\" cannot run here: {why}", e.command[0]),
            hint: "name a program installed on the daemon's host".into(),
        })
        .and_then(|r| allow::exec_resolved(allow, &e.command, &r, host));
        cx.refused(&format!("{path}.command"), r);
    }
}

fn http_call(cx: &mut Ctx<'_>, path: &str, h: &HttpCall, t: &Target) {
    if !is_method(&h.method) {
        cx.error_hint(
            &format!("{path}.method"),
            format!("invalid HTTP method \"{}\"", h.method),
            "use GET, POST, PUT, PATCH or DELETE",
        );
    }
    let url = resolve_url(&t.base_url, &h.url);
    cx.refused(&format!("{path}.url"), allow::http(&t.allow, &url));
}

fn is_method(m: &str) -> bool {
    matches!(
        m,
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
    )
}

pub(crate) fn traffic(cx: &mut Ctx<'_>, tr: &Traffic, t: &Target) {
    // A combination that makes a body check inert, or an error class that counts nothing.
    let counted = tr
        .requests
        .iter()
        .any(|r| r.expect.as_ref().is_some_and(|e| e.error));
    if let Some(i) = tr.errors.iter().position(|c| *c == ErrorClass::Check)
        && !counted
    {
        cx.warning(
            &format!("traffic.errors[{i}]"),
            "`check` counts nothing here: no request has an `expect` that counts as an error",
        );
    }
    for (i, r) in tr.requests.iter().enumerate() {
        if r.expect.as_ref().is_some_and(|e| !e.error) {
            cx.warning(
                &format!("traffic.requests[{i}].expect.error"),
                format!(
                    "request \"{}\": a failed expectation is only reported, never counted as an error (`error: false`); no SLO, guard or check judges it",
                    r.name
                ),
            );
        }
    }
    if tr.requests.is_empty() {
        cx.error_hint(
            "traffic.requests",
            "traffic has no requests",
            "add at least one request with a name and a path",
        );
    }
    let mut names = BTreeSet::new();
    for (i, r) in tr.requests.iter().enumerate() {
        let p = format!("traffic.requests[{i}]");
        if !names.insert(r.name.as_str()) {
            cx.error(
                &format!("{p}.name"),
                format!("request name \"{}\" is used twice", r.name),
            );
        }
        name(cx, &format!("{p}.name"), "request", &r.name);
        if r.weight == 0 {
            cx.error_hint(
                &format!("{p}.weight"),
                "weight must be at least 1",
                "remove the request instead of giving it weight 0",
            );
        }
        if !is_method(&r.method) {
            cx.error_hint(
                &format!("{p}.method"),
                format!("invalid HTTP method \"{}\"", r.method),
                "use GET, POST, PUT, PATCH or DELETE",
            );
        }
        if r.path.contains("://") {
            cx.refused(&format!("{p}.path"), allow::http(&t.allow, &r.path));
        } else if !r.path.starts_with('/') {
            cx.error_hint(
                &format!("{p}.path"),
                format!("path \"{}\" must start with /", r.path),
                format!("write /{}", r.path),
            );
        }
        let uses_placeholders = placeholders(&r.path).next().is_some()
            || r.bearer
                .as_deref()
                .is_some_and(|b| placeholders(b).next().is_some());
        if uses_placeholders && tr.dataset.is_none() {
            let name = placeholders(&r.path)
                .chain(r.bearer.as_deref().map(placeholders).into_iter().flatten())
                .next()
                .unwrap_or_default();
            cx.error_hint(
                &format!("{p}.path"),
                format!("request uses {{{name}}} but traffic has no dataset to fill it from"),
                "set traffic.dataset to a JSON file of records",
            );
        }
        if let Some(f) = &r.follow {
            if !f.cursor.starts_with('/') {
                cx.error_hint(
                    &format!("{p}.follow.cursor"),
                    format!("\"{}\" is not a JSON pointer", f.cursor),
                    format!("write /{}", f.cursor.replace('.', "/")),
                );
            }
            if f.max_pages == 0 {
                cx.error(
                    &format!("{p}.follow.max_pages"),
                    "max_pages must be at least 1",
                );
            }
        }
        if let Some(c) = &r.expect
            && !c.pointer.is_empty()
            && !c.pointer.starts_with('/')
        {
            cx.error_hint(
                &format!("{p}.expect.pointer"),
                format!("\"{}\" is not a JSON pointer", c.pointer),
                format!("write /{}", c.pointer.replace('.', "/")),
            );
        }
    }
    if tr.profile.is_empty() {
        cx.error_hint(
            "traffic.profile",
            "the traffic profile is empty",
            "add a stage, like {rate: 20/s, hold: 1m}",
        );
    }
    let mut total = Dur::ZERO;
    for (i, s) in tr.profile.iter().enumerate() {
        let p = format!("traffic.profile[{i}]");
        match (s.rate, s.ramp_to, s.over, s.hold) {
            (Some(r), None, None, h) => {
                if r.per_second() <= 0.0 {
                    cx.error_hint(&format!("{p}.rate"), format!("rate must be above 0/s, found {r}"), "to pause traffic, ramp_to: 0/s; to stop, end the profile");
                }
                if let Some(h) = h {
                    positive(cx, &format!("{p}.hold"), "hold", h);
                    total = total + h;
                }
            }
            (None, Some(_), Some(o), None) => {
                positive(cx, &format!("{p}.over"), "over", o);
                total = total + o;
            }
            (None, Some(_), None, _) => cx.error_hint(&p, "ramp_to needs over", "write {ramp_to: 50/s, over: 2m}"),
            (None, None, Some(_), _) => cx.error_hint(&p, "over needs ramp_to", "write {ramp_to: 50/s, over: 2m}"),
            (None, None, None, Some(h)) => {
                positive(cx, &format!("{p}.hold"), "hold", h);
                total = total + h;
            }
            (None, None, None, None) => cx.error_hint(&p, "empty stage", "write {rate: 20/s}, {rate: 120/s, hold: 5m}, {ramp_to: 50/s, over: 2m} or {hold: 1m}"),
            (Some(_), Some(_), ..) => cx.error_hint(&p, "a stage sets both rate and ramp_to", "split it: {rate: 20/s} then {ramp_to: 50/s, over: 2m}"),
            (_, Some(_), Some(_), Some(_)) => cx.error_hint(&p, "a ramp cannot also hold", "add a separate {hold: …} stage after the ramp"),
            (Some(_), None, Some(_), _) => cx.error_hint(&p, "over goes with ramp_to, not rate", "write {ramp_to: 50/s, over: 2m}"),
        }
    }
    if !tr.profile.is_empty() && total.is_zero() {
        cx.error_hint(
            "traffic.profile",
            "the traffic profile lasts 0s",
            "give a stage a hold or an over",
        );
    }
    bounds(cx, tr, total);
    if tr.max_in_flight == Some(0) {
        cx.error("traffic.max_in_flight", "max_in_flight must be at least 1");
    }
    positive(cx, "traffic.timeout", "timeout", tr.timeout);
    if let Some(d) = &tr.distributed {
        distributed(cx, d);
    }
}

/// Rates and the traffic's length within drill's maxima and the policy's limits, per process
/// (shard) and in total. A rate of `1e18/s` parses; it must not run.
fn bounds(cx: &mut Ctx<'_>, tr: &Traffic, total: Dur) {
    let default = Policy::safe_default();
    let policy = cx.policy().cloned().unwrap_or(default);
    let shards = tr.distributed.as_ref().map_or(1, |d| d.shards.max(1));
    let per_process = policy.max_rate_per_process();
    let total_max = policy
        .limits
        .total_rate
        .map_or(f64::INFINITY, |r| r.per_second());
    let by_policy = |own: bool| {
        if own {
            "drill's maximum"
        } else {
            "the daemon's policy"
        }
    };
    for (i, s) in tr.profile.iter().enumerate() {
        for (field, r) in [("rate", s.rate), ("ramp_to", s.ramp_to)] {
            let Some(r) = r else { continue };
            let rate = r.per_second();
            let path = format!("traffic.profile[{i}].{field}");
            if !rate.is_finite() || rate / f64::from(shards) > per_process {
                let own = policy
                    .limits
                    .rate
                    .is_none_or(|l| l.per_second() >= crate::policy::MAX_RATE_PER_PROCESS);
                cx.error_hint(
                    &path,
                    format!(
                        "{r} is above {} of {per_process}/s per process{}",
                        by_policy(own),
                        if shards > 1 {
                            format!(" ({shards} shards: {:.0}/s each)", rate / f64::from(shards))
                        } else {
                            String::new()
                        }
                    ),
                    "lower the rate, or spread it over more shards (traffic.distributed)",
                );
            } else if rate > total_max {
                cx.error_hint(
                    &path,
                    format!("{r} is above the daemon's policy of {total_max}/s for a whole run"),
                    "lower the rate",
                );
            }
        }
    }
    let longest = policy.max_traffic();
    if total > longest {
        let own = policy
            .limits
            .duration
            .is_none_or(|d| d >= crate::policy::MAX_TRAFFIC);
        cx.error_hint(
            "traffic.profile",
            format!(
                "the traffic lasts {total}, longer than {} of {longest}",
                by_policy(own)
            ),
            "shorten the profile, or split the drills into several playbooks",
        );
    }
    if let (Some(d), Some(max)) = (&tr.distributed, policy.limits.shards)
        && d.shards > max
    {
        cx.error_hint(
            "traffic.distributed.shards",
            format!(
                "{} shards: the daemon's policy allows at most {max}",
                d.shards
            ),
            format!("use at most {max} shards"),
        );
    }
}

/// The most shards a run may have.
pub const MAX_SHARDS: u32 = 256;

fn distributed(cx: &mut Ctx<'_>, d: &crate::model::Distributed) {
    use crate::model::ShardsOn;
    if !(2..=MAX_SHARDS).contains(&d.shards) {
        cx.error_hint(
            "traffic.distributed.shards",
            format!(
                "{} shards: a distributed run has 2 to {MAX_SHARDS}",
                d.shards
            ),
            "remove traffic.distributed to run the traffic in this process",
        );
    }
    match (d.run_on, &d.kubernetes) {
        (ShardsOn::Kubernetes, None) => cx.error_hint(
            "traffic.distributed.kubernetes",
            "shards on kubernetes need the Job's image",
            "add kubernetes: {image: registry.example/drill:0.1, namespace: drill}",
        ),
        (ShardsOn::Local, Some(_)) => cx.warning(
            "traffic.distributed.kubernetes",
            "ignored: the shards run on this host (run_on: local)",
        ),
        (ShardsOn::Kubernetes, Some(j)) => {
            if j.image.trim().is_empty() {
                cx.error("traffic.distributed.kubernetes.image", "the image is empty");
            }
            positive(
                cx,
                "traffic.distributed.kubernetes.start_within",
                "start_within",
                j.start_within,
            );
        }
        (ShardsOn::Local, None) => {}
    }
}

/// `{name}` placeholders in a template (not `{{` parameter references).
pub fn placeholders(s: &str) -> impl Iterator<Item = &str> {
    s.split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(n, _)| n))
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

fn positive(cx: &mut Ctx<'_>, path: &str, what: &str, d: Dur) {
    if d.is_zero() {
        cx.error(path, format!("{what} must be longer than 0s"));
    }
}

pub(crate) fn limits(cx: &mut Ctx<'_>, path: &str, l: &Limits) {
    let lat = l.latencies();
    let join = |p: &str, f: &str| {
        if p.is_empty() {
            f.to_owned()
        } else {
            format!("{p}.{f}")
        }
    };
    for (name, v) in lat {
        if v.is_some_and(Dur::is_zero) {
            cx.error_hint(
                &join(path, name),
                format!("{name} limit 0s can never be met"),
                "latency is always above 0s; give a real limit",
            );
        }
    }
    // p50 <= p90 <= p95 <= p99 <= max: a lower percentile can never exceed a higher one.
    let ordered: Vec<(&str, Dur)> = lat
        .iter()
        .skip(1)
        .filter_map(|(n, v)| v.map(|v| (*n, v)))
        .collect();
    for (i, (lo_name, lo)) in ordered.iter().enumerate() {
        for (hi_name, hi) in &ordered[i + 1..] {
            if lo > hi {
                cx.error_hint(
                    &join(path, lo_name),
                    format!("{lo_name} limit ({lo}) is above the {hi_name} limit ({hi})"),
                    format!(
                        "{lo_name} can never exceed {hi_name}; lower {lo_name} or raise {hi_name}"
                    ),
                );
            }
        }
    }
    if let (Some(avg), Some(max)) = (l.avg, l.max)
        && avg > max
    {
        cx.error(
            &join(path, "avg"),
            format!("avg limit ({avg}) is above the max limit ({max})"),
        );
    }
    if l.error_rate.is_some_and(|p| p.fraction() <= 0.0) {
        cx.error_hint(
            &join(path, "error_rate"),
            "error_rate 0% can never be met (the limit is strict: below it)",
            "use a small positive limit like 0.1%",
        );
    }
}

pub(crate) fn slo(cx: &mut Ctx<'_>, s: &Slo) {
    limits(cx, "slo", &s.overall());
    for (phase, l) in &s.phases {
        limits(cx, &format!("slo.phases.{phase}"), l);
    }
}

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
            exactly_one(
                cx,
                &p,
                "a redis probe",
                &[
                    ("llen", r.llen.is_some()),
                    ("xlen", r.xlen.is_some()),
                    ("zcard", r.zcard.is_some()),
                    ("get", r.get.is_some()),
                    ("exists", r.exists.is_some()),
                    ("dbsize", r.dbsize),
                    ("info", r.info.is_some()),
                    ("pending", r.pending.is_some()),
                ],
            );
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
    use FaultAction as A;
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
    // Options that belong to other actions are mistakes, not no-ops.
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
        _ => {}
    }
    // Reversibility: built-in inverses, or a revert the user wrote, or an explicit acknowledgement.
    let inherently_irreversible =
        matches!(a, A::Flush | A::DeleteKeys | A::Promote | A::ClientKill);
    let missing_revert = match a {
        A::Exec => f.exec.as_ref().is_some_and(|e| e.revert.is_none()),
        A::Sql => f.sql.as_ref().is_some_and(|s| s.revert.is_none()),
        A::Http => f.http.as_ref().is_some_and(|h| h.revert.is_none()),
        A::Stop | A::Kill => {
            matches!(&f.target, Some(TargetRef::Process(pt)) if pt.restart.is_none())
        }
        _ => false,
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
    // Targets: well-formed, then inside the allow-list.
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
