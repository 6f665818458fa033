//! What an operator's policy says of a playbook as a whole: its allow-list inside the
//! policy's, the number of drills, and what a posted playbook may not have.

use super::Ctx;
use crate::model::Playbook;
use crate::policy::{Origin, Scope};

/// What the operator's policy says of a playbook as a whole: its allow-list inside the
/// policy's, the number of drills, and what a posted playbook may not have.
pub(crate) fn policy_rules(cx: &mut Ctx<'_>, p: &Playbook, scope: Scope<'_>) {
    let policy = scope.policy;
    let mut outside = crate::allow::outside_policy(&p.target.allow);
    if let Some(e) = &p.target.allow.envelope {
        // A program the playbook lists must be one the policy lists: the file it names on
        // this host when the loader can look (`sh` is /usr/bin/sh), else by its name.
        for (i, entry) in p.target.allow.exec.iter().enumerate() {
            let name = entry.rsplit('/').next().unwrap_or(entry);
            let covered = match scope.host {
                Some(host) if !entry.contains('*') => {
                    crate::program::resolve(entry, None, None, host).is_ok_and(|r| {
                        e.exec.iter().any(|rule| {
                            crate::allow::glob(&rule.program, &r.path)
                                || crate::allow::glob(&rule.program, &r.canonical)
                        })
                    })
                }
                _ => e.exec.iter().any(|rule| {
                    crate::allow::glob(
                        rule.program.rsplit('/').next().unwrap_or(&rule.program),
                        name,
                    )
                }),
            };
            if !covered {
                outside.push((format!("target.allow.exec[{i}]"), entry.clone()));
            }
        }
    }
    for (path, entry) in outside {
        cx.error_hint(
            &path,
            format!("\"{entry}\" is outside the daemon's policy"),
            "a playbook's allow-list can only narrow the operator's policy; remove it, or ask whoever runs the daemon",
        );
    }
    if let Some(max) = policy.limits.drills
        && p.drills.len() > max as usize
    {
        cx.error_hint(
            "drills",
            format!(
                "{} drills: the daemon's policy allows at most {max}",
                p.drills.len()
            ),
            "split the playbook",
        );
    }
    if scope.origin == Origin::Posted {
        if policy.allow.is_none() {
            cx.error_hint(
                "target.allow",
                "this daemon's policy has no envelope, so it runs no posted playbook",
                "run a loaded playbook by name ({\"playbook\": NAME}), or ask the operator for a policy with `allow:` (drill daemon --policy FILE)",
            );
        }
        // Files a posted playbook names are read on the daemon's host: only from the
        // playbook directory, so a poster cannot have `/etc/…` read and sent to a target.
        let files = [
            ("traffic.dataset", p.traffic.dataset.as_deref()),
            (
                "traffic.tls.ca_file",
                p.traffic.tls.as_ref().and_then(|t| t.ca_file.as_deref()),
            ),
        ];
        for (field, file) in files {
            if let Some(f) = file
                && !policy.posted.may_read(f)
            {
                cx.error_hint(
                    field,
                    format!("a posted playbook may not read \"{f}\""),
                    "name a file of the daemon's playbook directory by a relative path without .., or one under a directory the policy lists in posted.files",
                );
            }
        }
        if !policy.posted.steps {
            for (field, steps) in [("setup", &p.setup), ("teardown", &p.teardown)] {
                if !steps.is_empty() {
                    cx.error_hint(
                        field,
                        format!("a posted playbook may not have {field} steps"),
                        "the daemon's policy refuses them (posted.steps); run a loaded playbook by name instead",
                    );
                }
            }
        }
    }
}
