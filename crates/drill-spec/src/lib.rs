//! drill-spec: the playbook and drill language.
pub mod de;
pub mod diag;
pub mod node;
pub mod units;
