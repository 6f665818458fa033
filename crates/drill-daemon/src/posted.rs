//! A playbook posted to the API (`POST /api/v1/runs {"yaml": …}`): interpolated from the
//! request's `params` only, validated as a playbook (400), then as a posted playbook inside
//! the operator's policy (403).

use std::collections::BTreeMap;
use std::path::PathBuf;

use drill_spec::ValidPlaybook;

use crate::state::Shared;

/// Why a posted playbook does not run.
#[derive(Debug)]
pub enum Refused {
    /// It is not a valid playbook (400).
    Invalid(Vec<String>),
    /// It is valid, but outside the daemon's policy (403).
    Policy(Vec<String>),
}

/// The variables a posted playbook's `${NAME}` may read: the request's own `params`, and the
/// names the policy exposes (`posted.env`) from the daemon's environment — nothing else, so
/// a poster learns nothing of the daemon's secrets, not even whether one is set.
struct PostedEnv<'a> {
    params: &'a BTreeMap<String, String>,
    exposed: &'a [String],
}

impl drill_spec::interp::Env for PostedEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.params.get(name).cloned().or_else(|| {
            self.exposed
                .iter()
                .any(|e| e == name)
                .then(|| std::env::var(name).ok())
                .flatten()
        })
    }

    fn unset_hint(&self, name: &str) -> Option<String> {
        Some(format!(
            "a posted playbook reads variables from the request's params only (and the names the daemon's policy exposes, posted.env): send {{\"params\": {{\"{name}\": …}}}}, or give a default: ${{{name}:-value}}"
        ))
    }
}

/// A playbook posted to the API, validated with the daemon's drills, interpolated from the
/// request's `params` (see [`PostedEnv`]), then checked against the daemon's policy as a
/// posted playbook. Returns it with a name for its file (relative paths start in the
/// playbook directory), or why it does not run, every error located.
pub fn posted(
    shared: &Shared,
    text: &str,
    params: &BTreeMap<String, String>,
) -> Result<(PathBuf, ValidPlaybook), Refused> {
    let name = shared.playbooks_dir.join("posted.yaml");
    let env = PostedEnv {
        params,
        exposed: &shared.policy.posted.env,
    };
    let validate = |scope: Option<drill_spec::policy::Scope<'_>>| {
        let mut loader = drill_spec::Loader::new(&env);
        if let Some(s) = scope {
            loader = loader.with_scope(s);
        }
        loader.add(&name.display().to_string(), text, true);
        let library =
            drill_engine::files::library_dirs(std::slice::from_ref(&name), &shared.drills);
        if let Err(e) = drill_engine::files::load(&mut loader, &[], &library) {
            return Err(vec![format!("{e:#}")]);
        }
        let outcome = loader.finish();
        if outcome.has_errors() || outcome.playbooks.len() != 1 {
            let mut errs: Vec<String> = outcome
                .diags
                .iter()
                .filter(|d| d.severity == drill_spec::Severity::Error)
                .map(|d| outcome.sources.render(d))
                .collect();
            if errs.is_empty() {
                errs.push("the text holds no playbook (kind: Playbook)".into());
            }
            return Err(errs);
        }
        Ok(outcome.playbooks.into_iter().next().expect("one playbook"))
    };
    // First as a playbook (400 when it is not one), then inside the policy (403).
    validate(None).map_err(Refused::Invalid)?;
    let vp = validate(Some(drill_spec::policy::Scope {
        policy: &shared.policy,
        origin: drill_spec::policy::Origin::Posted,
        host: Some(&drill_engine::files::HOST),
    }))
    .map_err(Refused::Policy)?;
    Ok((name, vp))
}
