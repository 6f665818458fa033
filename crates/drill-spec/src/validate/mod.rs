//! Semantic validation: rules that span fields, documents and the timeline. Every rule points
//! at the node it is about and, where the fix is clear, says it.
//!
//! The rules are small functions over one `Ctx` that collects located diagnostics: here the
//! document's head, steps and commands; `traffic.rs` the traffic, its bounds and the SLOs;
//! `drill.rs` a drill's faults, actions, checks, probes and guards; `timeline.rs` the
//! windows in time; `policy.rs` what an operator's policy says of a playbook as a whole.
//! Which targets an action takes is not here but in [`crate::fault::backends_for`].

use crate::allow::{self, Refusal};
use crate::de::LocMap;
use crate::diag::{Diag, Loc};
use crate::model::*;
use crate::policy::{Origin, Policy, Scope};
use crate::units::Dur;

mod drill;
mod policy;
mod timeline;
mod traffic;

pub(crate) use drill::{drill_spec, guard};
pub(crate) use policy::policy_rules;
pub(crate) use timeline::timeline;
pub(crate) use traffic::{slo, traffic};

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

    pub(crate) fn refused(&mut self, path: &str, r: Result<(), Refusal>) {
        if let Err(r) = r {
            self.error_hint(path, r.message, r.hint);
        }
    }

    /// The policy in force, if any.
    pub(crate) fn policy(&self) -> Option<&Policy> {
        self.scope.map(|s| s.policy)
    }

    /// True for a playbook posted to the API.
    pub(crate) fn posted(&self) -> bool {
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
pub(crate) fn set_keys(pairs: &[(&'static str, bool)]) -> Vec<&'static str> {
    pairs
        .iter()
        .filter(|(_, set)| *set)
        .map(|(n, _)| *n)
        .collect()
}

/// Exactly one of the keys must be set.
pub(crate) fn exactly_one(
    cx: &mut Ctx<'_>,
    path: &str,
    what: &str,
    pairs: &[(&'static str, bool)],
) -> bool {
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
pub(crate) fn resolve_url(base: &str, url: &str) -> String {
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

pub(crate) fn exec(cx: &mut Ctx<'_>, path: &str, e: &Exec, allow: &Allow) {
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

pub(crate) fn http_call(cx: &mut Ctx<'_>, path: &str, h: &HttpCall, t: &Target) {
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

pub(crate) fn is_method(m: &str) -> bool {
    matches!(
        m,
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
    )
}

/// `{name}` placeholders in a template (not `{{` parameter references).
pub fn placeholders(s: &str) -> impl Iterator<Item = &str> {
    s.split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(n, _)| n))
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

pub(crate) fn positive(cx: &mut Ctx<'_>, path: &str, what: &str, d: Dur) {
    if d.is_zero() {
        cx.error(path, format!("{what} must be longer than 0s"));
    }
}
