//! The malformed-document corpus: every file under `tests/malformed/` is refused, with
//! exactly the diagnostics (line, column, message, hint) in its `.expected` sidecar.

use std::collections::BTreeMap;

use drill_tests::{rendered, repo, validate, yaml_files};

#[test]
fn every_malformed_document_gets_exactly_its_expected_errors() {
    let files = yaml_files("tests/malformed");
    assert!(
        files.len() >= 40,
        "the corpus should hold at least 40 documents, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable");
        let name = f.strip_prefix(repo()).unwrap_or(f).display().to_string();
        let expected_file = f.with_extension("expected");
        let expected: Vec<String> = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|_| panic!("{} has no .expected file", name))
            .lines()
            .map(str::to_owned)
            .collect();
        // A fixed, empty environment: missing-variable cases do not depend on the machine.
        let out = validate(&[(name.clone(), text)], &BTreeMap::new());
        let got = rendered(&out);
        if got != expected {
            failures.push(format!(
                "{name}\n  expected: {expected:#?}\n  got:      {got:#?}"
            ));
        }
        assert!(out.has_errors(), "{name} was accepted");
        assert!(
            out.playbooks.is_empty(),
            "{name} produced a runnable playbook"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} documents differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
