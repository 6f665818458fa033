//! The traffic's rules: requests, the profile, drill's and the policy's bounds, shards, and
//! the SLO limits.

use std::collections::BTreeSet;

use super::{Ctx, is_method, name, placeholders, positive};
use crate::allow;
use crate::model::*;
use crate::policy::Policy;
use crate::units::Dur;

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
