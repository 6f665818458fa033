//! `${VAR}` / `${VAR:-default}` interpolation from the environment, and `{{ param }}`
//! substitution of drill parameters. Both work on node trees, so every value keeps the
//! location it was written at, and every failure names the variable and where it is used.

use std::collections::{BTreeMap, BTreeSet};

use crate::de::{Seg, path_string};
use crate::diag::{Diag, did_you_mean};
use crate::node::{Kind, Node};

/// Where variables come from. The CLI passes the process environment; tests pass a map.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    /// How to fix an unset variable, when the usual "set it, or give a default" is wrong
    /// (a posted playbook cannot set the daemon's environment).
    fn unset_hint(&self, _name: &str) -> Option<String> {
        None
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string value (not in keys). `$${` writes a
/// literal `${`. Returns one diagnostic per unset variable or malformed reference, and the
/// paths of those values, which decoding then skips (so that no error follows from them).
///
/// Every value taken from `env` is added to `seen`, so that messages, logs and reports can
/// print `${NAME}` in its place.
pub fn interpolate_env(
    root: &mut Node,
    env: &dyn Env,
    seen: &mut crate::redact::Redactor,
) -> (Vec<Diag>, Vec<Vec<Seg>>) {
    let mut diags = Vec::new();
    let mut failed = Vec::new();
    let mut path = Vec::new();
    walk_strings(
        root,
        &mut path,
        &mut |s, node_path, loc| match expand(s, env, seen) {
            Ok(v) => Some(v),
            Err(Expand::Unset(name)) => {
                let mut d =
                    Diag::error(
                        loc,
                        format!(
                            "environment variable {name} is not set (used in {})",
                            display_path(node_path)
                        ),
                    )
                    .with_hint(env.unset_hint(&name).unwrap_or_else(|| {
                        format!("set it, or give a default: ${{{name}:-value}}")
                    }));
                if name.is_empty() {
                    d = Diag::error(loc, "empty variable name in ${}").with_hint("write ${NAME}");
                }
                diags.push(d);
                failed.push(node_path.to_vec());
                None
            }
            Err(Expand::Malformed(msg)) => {
                diags.push(
                    Diag::error(loc, msg)
                        .with_hint("write ${NAME} or ${NAME:-default}; $${ writes a literal ${"),
                );
                failed.push(node_path.to_vec());
                None
            }
        },
    );
    (diags, failed)
}

fn display_path(p: &[Seg]) -> String {
    let s = path_string(p);
    if s.is_empty() {
        "the document".into()
    } else {
        s
    }
}

enum Expand {
    Unset(String),
    Malformed(String),
}

fn expand(s: &str, env: &dyn Env, seen: &mut crate::redact::Redactor) -> Result<String, Expand> {
    if !s.contains('$') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = t;
        } else if let Some(t) = tail.strip_prefix("${") {
            let Some(end) = t.find('}') else {
                return Err(Expand::Malformed(format!("unterminated ${{ in \"{s}\"")));
            };
            let body = &t[..end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            if name.is_empty() {
                return Err(Expand::Unset(String::new()));
            }
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(Expand::Malformed(format!(
                    "invalid variable name \"{name}\" in \"{s}\""
                )));
            }
            match env
                .var(name)
                .filter(|v| !(v.is_empty() && default.is_some()))
            {
                Some(v) => {
                    seen.add(name, &v);
                    out.push_str(&v);
                }
                None => match default {
                    Some(d) => out.push_str(d),
                    None => return Err(Expand::Unset(name.to_owned())),
                },
            }
            rest = &t[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable names a text refers to with `${NAME}` or `${NAME:-default}` (`$${` is a
/// literal). `drill apply --server` sends the caller's values of exactly these as the run's
/// `params`, since the daemon reads no environment for a posted playbook.
pub fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest[..i].ends_with('$') {
            rest = &rest[i + 2..];
            continue;
        }
        let t = &rest[i + 2..];
        let end = t.find(['}', ':']).unwrap_or(t.len());
        let name = &t[..end];
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
        {
            out.insert(name.to_owned());
        }
        rest = t;
    }
    out
}

/// Sees a string value with its path and location; returns its replacement, if any.
type StringVisitor<'a> = dyn FnMut(&str, &[Seg], crate::diag::Loc) -> Option<String> + 'a;

/// Calls `f` on every string value with its path and location; replaces it when `f` returns
/// a new string.
fn walk_strings(node: &mut Node, path: &mut Vec<Seg>, f: &mut StringVisitor<'_>) {
    let loc = node.loc;
    match &mut node.kind {
        Kind::Str(s) => {
            if let Some(new) = f(s, path, loc) {
                *s = new;
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                walk_strings(item, path, f);
                path.pop();
            }
        }
        Kind::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                path.push(Seg::Key(k.scalar_text().unwrap_or_default()));
                walk_strings(v, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The parameter names a tree refers to with `{{ name }}`, with where each is used.
pub fn param_refs(root: &Node) -> Vec<(String, crate::diag::Loc)> {
    let mut out = Vec::new();
    fn go(n: &Node, out: &mut Vec<(String, crate::diag::Loc)>) {
        match &n.kind {
            Kind::Str(s) => {
                for name in refs_in(s) {
                    out.push((name, n.loc));
                }
            }
            Kind::Seq(items) => items.iter().for_each(|i| go(i, out)),
            Kind::Map(entries) => entries.iter().for_each(|(_, v)| go(v, out)),
            _ => {}
        }
    }
    go(root, &mut out);
    out
}

fn refs_in(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        let t = &rest[i + 2..];
        let Some(end) = t.find("}}") else { break };
        names.push(t[..end].trim().to_owned());
        rest = &t[end + 2..];
    }
    names
}

/// Replaces `{{ name }}` with parameter values. A string that is exactly one reference takes
/// the value node whole (a mapping, a number, a duration…), keeping the value's location; a
/// reference inside text is replaced by the value's text. Returns the paths of nodes that
/// referred to a parameter with no value (`missing`), so that decoding can skip them.
pub fn substitute_params(
    root: &mut Node,
    values: &BTreeMap<String, Node>,
    missing: &BTreeSet<String>,
    diags: &mut Vec<Diag>,
) -> Vec<Vec<Seg>> {
    let mut skipped = Vec::new();
    let mut path = Vec::new();
    subst(root, values, missing, diags, &mut path, &mut skipped);
    skipped
}

fn subst(
    node: &mut Node,
    values: &BTreeMap<String, Node>,
    missing: &BTreeSet<String>,
    diags: &mut Vec<Diag>,
    path: &mut Vec<Seg>,
    skipped: &mut Vec<Vec<Seg>>,
) {
    match &mut node.kind {
        Kind::Str(s) => {
            let refs = refs_in(s);
            if refs.is_empty() {
                return;
            }
            if refs.iter().any(|r| missing.contains(r)) {
                skipped.push(path.clone());
                return;
            }
            let whole = s.trim();
            if refs.len() == 1
                && whole.starts_with("{{")
                && whole.ends_with("}}")
                && whole.matches("{{").count() == 1
            {
                if let Some(v) = values.get(&refs[0]) {
                    *node = v.clone();
                }
                return;
            }
            let mut out = s.clone();
            for r in &refs {
                let Some(v) = values.get(r) else { continue };
                match v.scalar_text() {
                    Some(text) => {
                        out = replace_ref(&out, r, &text);
                    }
                    None => diags.push(
                        Diag::error(
                            node.loc,
                            format!(
                                "parameter \"{r}\" is {} and cannot be placed inside text",
                                v.kind.describe()
                            ),
                        )
                        .with_hint(format!("make the whole value \"{{{{ {r} }}}}\"")),
                    ),
                }
            }
            if let Kind::Str(s) = &mut node.kind {
                *s = out;
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                subst(item, values, missing, diags, path, skipped);
                path.pop();
            }
        }
        Kind::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                path.push(Seg::Key(k.scalar_text().unwrap_or_default()));
                subst(v, values, missing, diags, path, skipped);
                path.pop();
            }
        }
        _ => {}
    }
}

fn replace_ref(s: &str, name: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        let t = &rest[i + 2..];
        let Some(end) = t.find("}}") else { break };
        out.push_str(&rest[..i]);
        if t[..end].trim() == name {
            out.push_str(value);
        } else {
            out.push_str(&rest[i..i + 2 + end + 2]);
        }
        rest = &t[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Diagnostics for `{{ name }}` references to parameters a drill does not declare.
pub fn check_param_refs(spec: &Node, declared: &BTreeSet<String>) -> Vec<Diag> {
    param_refs(spec)
        .into_iter()
        .filter(|(name, _)| !declared.contains(name))
        .map(|(name, loc)| {
            let hint = did_you_mean(&name, declared.iter().map(String::as_str)).map_or_else(
                || "declare it under `params:`".to_string(),
                |s| format!("did you mean \"{s}\"?"),
            );
            Diag::error(loc, format!("unknown parameter \"{name}\"")).with_hint(hint)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse_yaml;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("HOST".into(), "example.com".into()),
            ("EMPTY".into(), String::new()),
        ])
    }

    #[test]
    fn references_are_found_and_literals_skipped() {
        let names: Vec<String> = referenced("a: ${A}\nb: ${B_2:-x}\nc: $${C}\nd: ${}\n")
            .into_iter()
            .collect();
        assert_eq!(names, ["A", "B_2"]);
    }

    #[test]
    fn variables_and_defaults_expand() {
        let e = env();
        assert_eq!(
            expand("https://${HOST}/x", &e, &mut Default::default()).ok(),
            Some("https://example.com/x".into())
        );
        assert_eq!(
            expand("${NOPE:-fallback}", &e, &mut Default::default()).ok(),
            Some("fallback".into())
        );
        assert_eq!(
            expand("${EMPTY:-fallback}", &e, &mut Default::default()).ok(),
            Some("fallback".into())
        );
        assert_eq!(
            expand("cost $5 $${HOST}", &e, &mut Default::default()).ok(),
            Some("cost $5 ${HOST}".into())
        );
    }

    #[test]
    fn a_missing_variable_names_itself_and_where_it_is_used() {
        let mut root = parse_yaml("target:\n  base_url: https://${API_HOST}/\n", 0)
            .expect("yaml")
            .remove(0);
        let (d, failed) = interpolate_env(&mut root, &env(), &mut Default::default());
        assert_eq!(d.len(), 1);
        assert_eq!(crate::de::path_string(&failed[0]), "target.base_url");
        assert_eq!(
            d[0].to_string(),
            "2:13: environment variable API_HOST is not set (used in target.base_url), set it, or give a default: ${API_HOST:-value}"
        );
    }

    #[test]
    fn whole_references_take_the_value_node() {
        let mut spec = parse_yaml("hold: '{{ hold }}'\nkey: 'queues:{{ queue }}'\n", 0)
            .expect("yaml")
            .remove(0);
        let values = BTreeMap::from([
            (
                "hold".to_string(),
                parse_yaml("3m", 1).expect("y").remove(0),
            ),
            (
                "queue".to_string(),
                parse_yaml("notifications", 1).expect("y").remove(0),
            ),
        ]);
        let mut diags = Vec::new();
        substitute_params(&mut spec, &values, &BTreeSet::new(), &mut diags);
        assert!(diags.is_empty());
        assert_eq!(spec.get("hold").and_then(Node::as_str), Some("3m"));
        assert_eq!(
            spec.get("key").and_then(Node::as_str),
            Some("queues:notifications")
        );
    }
}
