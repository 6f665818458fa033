//! drill-tests: end-to-end tests as a workspace crate. The library part holds helpers the
//! test files share: where the repository is, and loading documents as `drill validate` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drill_spec::{Loader, Outcome};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The YAML files in a directory of the repository, sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")));
    files.sort();
    files
}

/// Validates `files` (named as given) with the shipped drills as the library and a fixed
/// environment, as `drill validate` would.
pub fn validate(files: &[(String, String)], env: &BTreeMap<String, String>) -> Outcome {
    let mut loader = Loader::new(env);
    for (name, text) in files {
        loader.add(name, text, true);
    }
    for f in yaml_files("drills") {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        loader.add(
            &format!(
                "drills/{}",
                f.file_name().and_then(|n| n.to_str()).unwrap_or_default()
            ),
            &text,
            false,
        );
    }
    loader.finish()
}

/// Diagnostics as `LINE:COL: SEVERITY: MESSAGE`, the form the corpus files expect.
pub fn rendered(outcome: &Outcome) -> Vec<String> {
    outcome
        .diags
        .iter()
        .map(|d| {
            let sev = match d.severity {
                drill_spec::Severity::Error => "error",
                drill_spec::Severity::Warning => "warning",
            };
            format!("{}:{}: {sev}: {}", d.loc.line, d.loc.col, d.text())
        })
        .collect()
}
