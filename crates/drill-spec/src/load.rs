//! Loading: files → documents → a validated playbook, with every diagnostic collected.
//! (Long because drill instantiation — `{{ param }}` substitution on the node tree with the
//! playbook's locations — belongs with the loading it is part of.)
//!
//! The caller (the CLI, the daemon) reads files and hands their text to a [`Loader`]; this
//! crate does no I/O. Files may hold several documents (`---`). Drill documents from any
//! added file form the library that playbooks' `uses:` resolve against.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::de::{LocMap, decode, decode_skipping};
use crate::diag::{Diag, Loc, Severity, Sources, did_you_mean};
use crate::interp::{Env, check_param_refs, interpolate_env, substitute_params};
use crate::model::{API_VERSION, DrillSpec, Metadata, Param, Playbook};
use crate::node::{Kind, Node, parse_yaml};
use crate::policy::{Origin, Scope};
use crate::redact::Redactor;
use crate::timeline::{self, DrillPlan, Start, TrafficPlan};
use crate::typed::Typed;
use crate::validate::{self, Ctx};

/// A drill document's head: everything but the spec, which needs its parameters first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillHead {
    #[serde(rename = "apiVersion")]
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    params: BTreeMap<String, Param>,
    #[allow(dead_code)]
    spec: IgnoredAny,
}

struct DrillEntry {
    head: DrillHead,
    node: Node,
    locs: LocMap,
    explicit: bool,
}

struct PlaybookEntry {
    file: String,
    value: Playbook,
    node: Node,
    locs: LocMap,
}

/// What a file held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileSummary {
    pub playbooks: usize,
    pub drills: usize,
}

/// Collects documents and validates them.
pub struct Loader<'e> {
    pub sources: Sources,
    env: &'e dyn Env,
    scope: Option<Scope<'e>>,
    /// Every value `${NAME}` took from `env`: diagnostics print `${NAME}` instead.
    redact: Redactor,
    diags: Vec<Diag>,
    playbooks: Vec<PlaybookEntry>,
    drills: BTreeMap<String, DrillEntry>,
    files: BTreeSet<String>,
}

impl std::fmt::Debug for Loader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("playbooks", &self.playbooks.len())
            .field("drills", &self.drills.len())
            .finish()
    }
}

/// A drill of a playbook, resolved: parameters substituted, spec typed and valid.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedDrill {
    pub name: String,
    /// The drill document it came from (`uses:`), or `None` when inline.
    pub uses: Option<String>,
    pub params: BTreeMap<String, serde_json::Value>,
    /// The drill's spec as written, but for its faults, actions and checks (moved out, typed).
    pub spec: DrillSpec,
    /// The faults, typed: what the engine injects and the backends match on.
    pub faults: Vec<crate::fault::ValidFault>,
    /// The actions, typed: each with the one call it makes.
    pub actions: Vec<crate::call::ValidAction>,
    /// The checks, typed: each with the one rule it holds the drill to.
    pub checks: Vec<crate::check::ValidCheck>,
    pub start: Start,
}

/// A playbook that passed validation: it can be planned and run.
#[derive(Debug, Clone)]
pub struct ValidPlaybook {
    /// The file it was read from.
    pub file: String,
    /// The playbook as written, but for its setup and teardown steps (moved out, typed).
    pub playbook: Playbook,
    /// Steps run before the baseline, typed.
    pub setup: Vec<crate::call::ValidStep>,
    /// Steps run after the last drill, typed.
    pub teardown: Vec<crate::call::ValidStep>,
    /// `playbook.target.base_url`, parsed: every relative URL resolves against it.
    pub base: crate::url::BaseUrl,
    pub drills: Vec<ResolvedDrill>,
    pub schedule: Option<cron::Schedule>,
    /// The values interpolated from the environment, to print as `${NAME}` wherever the
    /// playbook's text is shown (plan, logs, reports, API answers).
    pub redact: Redactor,
}

/// The plan of a valid playbook: its traffic and drills placed in time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub traffic: TrafficPlan,
    pub drills: Vec<DrillPlan>,
}

impl ValidPlaybook {
    /// The timeline, every duration multiplied by `scale`.
    pub fn plan(&self, scale: f64) -> Plan {
        let traffic = timeline::traffic(&self.playbook.traffic.profile, scale);
        let mut drills: Vec<DrillPlan> = Vec::new();
        for d in &self.drills {
            let p = timeline::place_drill(d, drills.last(), scale);
            drills.push(p);
        }
        Plan { traffic, drills }
    }
}

/// The result of loading: valid playbooks and every diagnostic.
#[derive(Debug)]
pub struct Outcome {
    pub playbooks: Vec<ValidPlaybook>,
    /// Errors and warnings, sorted by file, line and column.
    pub diags: Vec<Diag>,
    pub sources: Sources,
    /// Drill documents checked on their own (from files added as explicit).
    pub drills_checked: usize,
}

impl Outcome {
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(|d| d.severity == Severity::Error)
    }
}

impl<'e> Loader<'e> {
    pub fn new(env: &'e dyn Env) -> Self {
        Self {
            sources: Sources::default(),
            env,
            scope: None,
            redact: Redactor::default(),
            diags: Vec::new(),
            playbooks: Vec::new(),
            drills: BTreeMap::new(),
            files: BTreeSet::new(),
        }
    }

    /// Validates every playbook against an operator's policy too (`drill daemon`, and
    /// `--policy` on `validate` and `apply`): its targets inside the policy's envelope, its
    /// actions and sizes within the policy's, and, for a posted playbook, only what the
    /// policy lets one do.
    pub fn with_scope(mut self, scope: Scope<'e>) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Adds one file's text. `explicit` files are validated in full (the ones a user named);
    /// the others only lend their drills to the library. A file name added before is skipped.
    pub fn add(&mut self, file: &str, text: &str, explicit: bool) -> FileSummary {
        let mut summary = FileSummary::default();
        if !self.files.insert(file.to_owned()) {
            return summary;
        }
        let src = self.sources.add(file);
        let docs = match parse_yaml(text, src) {
            Ok(d) => d,
            Err(d) => {
                self.diags.push(d);
                return summary;
            }
        };
        if docs.is_empty() && explicit {
            self.diags.push(
                Diag::error(Loc::new(src, 1, 1), "the file holds no document")
                    .with_hint("start it with apiVersion: drill/v1 and kind: Playbook or Drill"),
            );
        }
        for mut node in docs {
            node.set_src(src);
            match document_kind(&node) {
                Err(d) => self.diags.push(d),
                Ok(DocKind::Playbook) => {
                    if !explicit {
                        continue;
                    }
                    summary.playbooks += 1;
                    let (diags, failed) = interpolate_env(&mut node, self.env, &mut self.redact);
                    self.diags.extend(diags);
                    let d = decode_skipping::<Playbook>(&node, &failed);
                    self.diags.extend(d.diags);
                    if let Some(value) = d.value {
                        self.playbooks.push(PlaybookEntry {
                            file: file.to_owned(),
                            value,
                            node,
                            locs: d.locs,
                        });
                    }
                }
                Ok(DocKind::Drill) => {
                    summary.drills += 1;
                    let (diags, failed) = interpolate_env(&mut node, self.env, &mut self.redact);
                    self.diags.extend(diags);
                    let d = decode_skipping::<DrillHead>(&node, &failed);
                    self.diags.extend(d.diags);
                    let Some(head) = d.value else { continue };
                    let name = head.metadata.name.clone();
                    if let Some(prev) = self.drills.get(&name) {
                        let prev_loc = prev.locs.at("metadata.name");
                        let loc = d.locs.at("metadata.name");
                        self.diags.push(
                            Diag::error(loc, format!("drill \"{name}\" is defined twice"))
                                .with_hint(format!(
                                    "the other is at {}:{}:{}; rename one",
                                    self.sources.name(prev_loc.src),
                                    prev_loc.line,
                                    prev_loc.col
                                )),
                        );
                        continue;
                    }
                    self.drills.insert(
                        name,
                        DrillEntry {
                            head,
                            node,
                            locs: d.locs,
                            explicit,
                        },
                    );
                }
            }
        }
        summary
    }

    /// The names of the drills in the library.
    pub fn drill_names(&self) -> Vec<String> {
        self.drills.keys().cloned().collect()
    }

    /// Validates everything added and returns the valid playbooks with all diagnostics.
    pub fn finish(mut self) -> Outcome {
        let mut drills_checked = 0;
        let names: Vec<String> = self.drills.keys().cloned().collect();
        for name in &names {
            if self.drills[name].explicit {
                drills_checked += 1;
                self.check_drill_alone(name);
            }
        }
        let mut playbooks = std::mem::take(&mut self.playbooks);
        if let Some(envelope) = self.scope.and_then(|s| s.policy.envelope()) {
            for pb in &mut playbooks {
                pb.value.target.allow.envelope = Some(envelope.clone());
            }
        }
        let mut valid = Vec::new();
        for mut pb in playbooks {
            let before = self.error_count();
            let resolved = self.check_playbook(&pb);
            // The steps, typed: they leave the raw playbook, so it has one list of each.
            let report = self.error_count() == before;
            let mut typed = Typed {
                diags: &mut self.diags,
                locs: &pb.locs,
                report,
            };
            let setup = typed.list("setup", std::mem::take(&mut pb.value.setup));
            let teardown = typed.list("teardown", std::mem::take(&mut pb.value.teardown));
            // An invalid base URL is a validation error, so a playbook without errors has one.
            if self.error_count() == before
                && let Some((drills, schedule)) = resolved
                && let Ok(base) = crate::url::BaseUrl::parse(&pb.value.target.base_url)
            {
                valid.push(ValidPlaybook {
                    file: pb.file,
                    playbook: pb.value,
                    setup,
                    teardown,
                    base,
                    drills,
                    schedule,
                    redact: self.redact.clone(),
                });
            }
        }
        let mut diags = self.diags;
        // A message never shows what a variable held: `hold: "${DATABASE_URL}"` must not
        // answer with the store's password.
        for d in &mut diags {
            d.message = self.redact.apply(&d.message).into_owned();
            if let Some(h) = &mut d.hint {
                *h = self.redact.apply(h).into_owned();
            }
        }
        diags.sort_by(|a, b| a.loc.cmp(&b.loc).then(a.severity.cmp(&b.severity)));
        diags.dedup();
        Outcome {
            playbooks: valid,
            diags,
            sources: self.sources,
            drills_checked,
        }
    }

    fn error_count(&self) -> usize {
        self.diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// A drill document on its own: parameter references, and the spec typed with defaults.
    fn check_drill_alone(&mut self, name: &str) {
        let entry = &self.drills[name];
        let Some(spec) = entry.node.get("spec") else {
            return;
        };
        let declared: BTreeSet<String> = entry.head.params.keys().cloned().collect();
        let ref_diags = check_param_refs(spec, &declared);
        let had_ref_errors = !ref_diags.is_empty();
        self.diags.extend(ref_diags);
        if had_ref_errors {
            return;
        }
        let (values, missing) = param_values(entry, &BTreeMap::new());
        let mut spec = spec.clone();
        let mut diags = Vec::new();
        let skip = substitute_params(&mut spec, &values, &missing, &mut diags);
        self.diags.extend(diags);
        let d = decode_skipping::<DrillSpec>(&spec, &skip);
        self.diags.extend(d.diags);
    }

    fn check_playbook(
        &mut self,
        pb: &PlaybookEntry,
    ) -> Option<(Vec<ResolvedDrill>, Option<cron::Schedule>)> {
        let schedule = self.check_playbook_fields(pb);
        let mut resolved = Vec::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..pb.value.drills.len() {
            if let Some(r) = self.check_drill(pb, i, &mut names) {
                resolved.push(r);
            }
        }
        let mut diags = Vec::new();
        validate::timeline(&mut diags, &pb.value, &pb.locs, &resolved, self.scope);
        self.diags.append(&mut diags);
        Some((resolved.into_iter().map(|(_, r, _)| r).collect(), schedule))
    }

    /// The playbook's own fields: name, schedule, target, steps, traffic, SLOs, guards, and
    /// the policy's rules.
    fn check_playbook_fields(&mut self, pb: &PlaybookEntry) -> Option<cron::Schedule> {
        let p = &pb.value;
        let mut diags = Vec::new();
        let mut cx = Ctx {
            diags: &mut diags,
            locs: &pb.locs,
            prefix: String::new(),
            scope: self.scope,
        };
        validate::metadata_name(&mut cx, &p.metadata);
        let schedule = p
            .schedule
            .as_ref()
            .and_then(|s| validate::schedule(&mut cx, s));
        validate::target(&mut cx, &p.target);
        for (i, s) in p.setup.iter().enumerate() {
            validate::step(&mut cx, &format!("setup[{i}]"), s, &p.target);
        }
        for (i, s) in p.teardown.iter().enumerate() {
            validate::step(&mut cx, &format!("teardown[{i}]"), s, &p.target);
        }
        validate::traffic(&mut cx, &p.traffic, &p.target);
        validate::slo(&mut cx, &p.slo);
        for (i, g) in p.guards.iter().enumerate() {
            validate::guard(&mut cx, &format!("guards[{i}]"), g, &p.target);
        }
        if let Some(scope) = self.scope {
            validate::policy_rules(&mut cx, p, scope);
        }
        self.diags.append(&mut diags);
        schedule
    }

    /// `drills[i]`: resolved, its placement and spec validated, its faults, actions and
    /// checks typed. `None` when it cannot be resolved or has no start.
    fn check_drill(
        &mut self,
        pb: &PlaybookEntry,
        i: usize,
        names: &mut BTreeMap<String, usize>,
    ) -> Option<(usize, ResolvedDrill, Option<LocMap>)> {
        let p = &pb.value;
        let r = &p.drills[i];
        let path = format!("drills[{i}]");
        let (name, uses, params, mut spec, spec_locs, prefix) = self.resolve_drill(pb, i)?;
        let mut diags = Vec::new();
        {
            let mut cx = Ctx {
                diags: &mut diags,
                locs: &pb.locs,
                prefix: String::new(),
                scope: self.scope,
            };
            placement(&mut cx, &path, r, i, &name, names);
        }
        {
            let mut cx = Ctx {
                diags: &mut diags,
                locs: spec_locs.as_ref().unwrap_or(&pb.locs),
                prefix,
                scope: self.scope,
            };
            validate::drill_spec(&mut cx, &spec, &p.target);
        }
        // The faults, actions and checks, typed: they leave the raw spec, so a drill has one
        // list of each. Validation reports every shape error itself; an error here is its
        // backstop, reported only when validation found none.
        let (faults, actions, checks) = {
            let locs = spec_locs.as_ref().unwrap_or(&pb.locs);
            let at = |key: &str| {
                if spec_locs.is_some() {
                    key.to_owned()
                } else {
                    format!("{path}.drill.{key}")
                }
            };
            let report = diags.is_empty();
            let mut typed = Typed {
                diags: &mut diags,
                locs,
                report,
            };
            (
                typed.list(&at("faults"), std::mem::take(&mut spec.faults)),
                typed.list(&at("actions"), std::mem::take(&mut spec.actions)),
                typed.list(&at("checks"), std::mem::take(&mut spec.checks)),
            )
        };
        self.diags.append(&mut diags);
        let start = match (r.at, r.after) {
            (Some(t), _) => Start::At(t),
            (None, Some(a)) => Start::After(a, r.delay.unwrap_or_default()),
            // Reported by `placement`; without a start there is no timeline to check.
            (None, None) => return None,
        };
        let drill = ResolvedDrill {
            name,
            uses,
            params,
            spec,
            faults,
            actions,
            checks,
            start,
        };
        Some((i, drill, spec_locs))
    }

    /// The drill at `drills[i]`: its name, source, parameters and typed spec (with the
    /// locations of the spec's nodes when it was instantiated from a drill document).
    #[allow(clippy::type_complexity)]
    fn resolve_drill(
        &mut self,
        pb: &PlaybookEntry,
        i: usize,
    ) -> Option<(
        String,
        Option<String>,
        BTreeMap<String, serde_json::Value>,
        DrillSpec,
        Option<LocMap>,
        String,
    )> {
        let r = &pb.value.drills[i];
        let path = format!("drills[{i}]");
        let here = |p: &str| pb.locs.at(&format!("{path}{p}"));
        match (&r.uses, &r.drill) {
            (Some(_), Some(_)) => {
                self.diags.push(Diag::error(here(".drill"), "a drill sets both uses and drill").with_hint("name a shipped drill with `uses:` or write one inline under `drill:`, not both"));
                None
            }
            (None, None) => {
                self.diags.push(
                    Diag::error(here(""), "a drill needs `uses:` or `drill:`")
                        .with_hint("name a drill, like uses: queue-outage"),
                );
                None
            }
            (None, Some(spec)) => {
                if let Some(s) = self.scope
                    && s.origin == Origin::Posted
                    && !s.policy.posted.inline_drills
                {
                    self.diags.push(
                        Diag::error(here(".drill"), "a posted playbook may not write its own drill")
                            .with_hint(format!(
                                "the daemon's policy allows only its own drills in posted playbooks (posted.inline_drills): use `uses:` with one of {}",
                                if self.drills.is_empty() { "its drills (it has none loaded)".to_owned() } else { self.drills.keys().cloned().collect::<Vec<_>>().join(", ") }
                            )),
                    );
                    return None;
                }
                if !r.with.is_empty() {
                    self.diags.push(
                        Diag::error(
                            here(".with"),
                            "`with:` sets parameters of a drill named by `uses:`",
                        )
                        .with_hint("write the values into the inline drill"),
                    );
                }
                let name = r.name.clone().unwrap_or_else(|| format!("drill-{}", i + 1));
                Some((
                    name,
                    None,
                    BTreeMap::new(),
                    spec.clone(),
                    None,
                    format!("{path}.drill."),
                ))
            }
            (Some(uses), None) => {
                let Some(entry) = self.drills.get(uses) else {
                    let hint = did_you_mean(uses, self.drills.keys().map(String::as_str)).map_or_else(
                        || {
                            if self.drills.is_empty() {
                                "no drills are loaded; pass --drills DIR or put drills next to the playbook in ../drills".to_string()
                            } else {
                                format!("known drills: {}", self.drills.keys().cloned().collect::<Vec<_>>().join(", "))
                            }
                        },
                        |s| format!("did you mean \"{s}\"?"),
                    );
                    self.diags.push(
                        Diag::error(here(".uses"), format!("unknown drill \"{uses}\""))
                            .with_hint(hint),
                    );
                    return None;
                };
                // `with:` values, as nodes with their own locations in the playbook.
                let with_nodes: BTreeMap<String, (Node, Node)> = pb
                    .node
                    .get("drills")
                    .and_then(|d| match &d.kind {
                        Kind::Seq(items) => items.get(i),
                        _ => None,
                    })
                    .and_then(|d| d.get("with"))
                    .map(|w| match &w.kind {
                        Kind::Map(entries) => entries
                            .iter()
                            .filter_map(|(k, v)| {
                                k.scalar_text().map(|n| (n, (k.clone(), v.clone())))
                            })
                            .collect(),
                        _ => BTreeMap::new(),
                    })
                    .unwrap_or_default();
                let mut bad = false;
                for (name, (k, _)) in &with_nodes {
                    if !entry.head.params.contains_key(name) {
                        bad = true;
                        let hint = did_you_mean(name, entry.head.params.keys().map(String::as_str))
                            .map_or_else(
                                || {
                                    format!(
                                        "its parameters are {}",
                                        entry
                                            .head
                                            .params
                                            .keys()
                                            .cloned()
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    )
                                },
                                |s| format!("did you mean \"{s}\"?"),
                            );
                        self.diags.push(
                            Diag::error(
                                k.loc,
                                format!("drill \"{uses}\" has no parameter \"{name}\""),
                            )
                            .with_hint(hint),
                        );
                    }
                }
                let values: BTreeMap<String, Node> =
                    with_nodes.into_iter().map(|(k, (_, v))| (k, v)).collect();
                let (values, missing) = param_values(entry, &values);
                for m in &missing {
                    bad = true;
                    let desc = entry
                        .head
                        .params
                        .get(m)
                        .and_then(|p| p.description.clone())
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default();
                    self.diags.push(
                        Diag::error(
                            here(".uses"),
                            format!("drill \"{uses}\" needs parameter \"{m}\"{desc}"),
                        )
                        .with_hint(format!("set it under with: {m}: …")),
                    );
                }
                let declared: BTreeSet<String> = entry.head.params.keys().cloned().collect();
                let spec_node = entry.node.get("spec")?;
                if !check_param_refs(spec_node, &declared).is_empty() || bad {
                    return None;
                }
                let mut spec_node = spec_node.clone();
                let mut diags = Vec::new();
                substitute_params(&mut spec_node, &values, &BTreeSet::new(), &mut diags);
                let d = decode::<DrillSpec>(&spec_node);
                self.diags.extend(diags);
                self.diags.extend(d.diags);
                let spec = d.value?;
                let params = values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect();
                let name = r.name.clone().unwrap_or_else(|| uses.clone());
                Some((
                    name,
                    Some(uses.clone()),
                    params,
                    spec,
                    Some(d.locs),
                    String::new(),
                ))
            }
        }
    }
}

/// Values for every parameter: from `with`, else the default; and the names with neither.
fn param_values(
    entry: &DrillEntry,
    with: &BTreeMap<String, Node>,
) -> (BTreeMap<String, Node>, BTreeSet<String>) {
    let mut values = BTreeMap::new();
    let mut missing = BTreeSet::new();
    for name in entry.head.params.keys() {
        if let Some(v) = with.get(name) {
            values.insert(name.clone(), v.clone());
        } else if let Some(d) = entry
            .node
            .get("params")
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("default"))
        {
            values.insert(name.clone(), d.clone());
        } else {
            missing.insert(name.clone());
        }
    }
    (values, missing)
}

enum DocKind {
    Playbook,
    Drill,
}

fn document_kind(node: &Node) -> Result<DocKind, Diag> {
    let Kind::Map(_) = &node.kind else {
        return Err(Diag::error(
            node.loc,
            format!(
                "a document must be a mapping, found {}",
                node.kind.describe()
            ),
        )
        .with_hint("start it with apiVersion: drill/v1 and kind: Playbook or Drill"));
    };
    match node.entry("apiVersion") {
        None => {
            return Err(
                Diag::error(node.loc, "missing required field \"apiVersion\"")
                    .with_hint(format!("add apiVersion: {API_VERSION}")),
            );
        }
        Some((_, v)) if v.as_str() != Some(API_VERSION) => {
            return Err(Diag::error(
                v.loc,
                format!(
                    "unsupported apiVersion \"{}\"",
                    v.scalar_text().unwrap_or_default()
                ),
            )
            .with_hint(format!("this drill reads {API_VERSION}")));
        }
        _ => {}
    }
    match node.entry("kind") {
        None => Err(Diag::error(node.loc, "missing required field \"kind\"")
            .with_hint("add kind: Playbook or kind: Drill")),
        Some((_, v)) => match v.as_str() {
            Some("Playbook") => Ok(DocKind::Playbook),
            Some("Drill") => Ok(DocKind::Drill),
            other => {
                let s = other.map_or_else(|| v.scalar_text().unwrap_or_default(), str::to_owned);
                let hint = did_you_mean(&s, ["Playbook", "Drill"]).map_or_else(
                    || "use Playbook or Drill".to_string(),
                    |k| format!("did you mean \"{k}\"?"),
                );
                Err(Diag::error(v.loc, format!("unknown kind \"{s}\"")).with_hint(hint))
            }
        },
    }
}

/// A drill's name and when it starts: a unique, well-formed name; `at` or `after`, not both
/// and not neither; no `after` for the first drill; `delay` only with `after`.
fn placement(
    cx: &mut Ctx<'_>,
    path: &str,
    r: &crate::model::DrillRef,
    i: usize,
    name: &str,
    names: &mut BTreeMap<String, usize>,
) {
    validate::name(
        cx,
        &if r.name.is_some() {
            format!("{path}.name")
        } else {
            format!("{path}.uses")
        },
        "drill",
        name,
    );
    if let Some(prev) = names.insert(name.to_owned(), i) {
        cx.error_hint(
            path,
            format!("drill name \"{name}\" is used twice (also drills[{prev}])"),
            "give one a distinct `name:`",
        );
    }
    match (r.at, r.after) {
        (Some(_), Some(_)) => cx.error_hint(
            &format!("{path}.after"),
            "a drill sets both at and after",
            "keep one",
        ),
        (None, None) => cx.error_hint(
            path,
            format!("drill \"{name}\" does not say when it starts"),
            "add `at: 2m30s` or `after: recovered`",
        ),
        (None, Some(_)) if i == 0 => cx.error_hint(
            &format!("{path}.after"),
            "the first drill has no previous drill to wait for",
            "use `at:` for the first drill",
        ),
        (Some(_), None) | (None, Some(_)) => {}
    }
    if r.delay.is_some() && r.after.is_none() {
        cx.error_hint(
            &format!("{path}.delay"),
            "delay applies to drills that start `after:`",
            "add the delay to `at:` instead",
        );
    }
}
