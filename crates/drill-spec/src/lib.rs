//! drill-spec: the playbook and drill language — types, parsing, `${ENV}` interpolation,
//! drill parameters, validation and the deterministic timeline.
//!
//! What it is: everything `drill validate`, `drill plan` and `drill schema` need, as pure
//! functions over text. What it is not: it reads no files, opens no sockets and has no async
//! runtime; callers hand it file contents (see [`Loader`]) and an environment ([`interp::Env`]).
//!
//! The flow: [`node::parse_yaml`] (serde-saphyr, with budgets) → [`interp`] → [`de::decode`]
//! into [`model`] types, collecting every error with its line and column → [`validate`] rules
//! across fields, documents and the [`timeline`] (and, with an operator's [`policy`], its
//! envelope and limits) → [`ValidPlaybook`], whose steps, and whose drills' faults, actions
//! and checks, are typed ([`call::ValidStep`], [`fault::ValidFault`], [`call::ValidAction`],
//! [`check::ValidCheck`]): enums whose variants hold only their own fields. Beside it: [`allow`] (is a target covered), [`program`] (which file
//! a command runs, through a caller's [`program::Host`]), [`probe`] (a probe's one reading), [`target`] (a target's one selector),
//! [`redact`] (the one rule for what is never printed).

pub mod allow;
pub mod call;
pub mod check;
pub mod cond;
pub mod de;
pub mod diag;
pub mod fault;
pub mod guard;
pub mod interp;
mod load;
pub mod model;
pub mod node;
pub mod policy;
pub mod probe;
pub mod program;
pub mod redact;
pub mod target;
pub mod timeline;
mod typed;
pub mod units;
pub mod url;
mod validate;

pub use diag::{Diag, Loc, Severity, Sources};
pub use load::{FileSummary, Loader, Outcome, Plan, ResolvedDrill, ValidPlaybook};
pub use validate::{NAME_CHARS, parse_cron, placeholders};

/// The JSON Schema of both documents, for editors (`drill schema`).
pub fn json_schema() -> serde_json::Value {
    let mut generator = schemars::SchemaGenerator::default();
    let playbook = generator.subschema_for::<model::Playbook>();
    let drill = generator.subschema_for::<model::DrillDoc>();
    let defs = generator.take_definitions(true);
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://drill.dev/schema/drill-v1.json",
        "title": "drill documents (apiVersion: drill/v1)",
        "description": "A Playbook (kind: Playbook) or a reusable Drill (kind: Drill).",
        "anyOf": [playbook, drill],
        "$defs": defs,
    })
}
