//! The Helm chart (charts/drill), with Helm's own library: tests/chart/check.py lints it
//! (strict), renders it for each store and option, validates every object against the
//! Kubernetes schema, and checks that its Role grants exactly what the Kubernetes backend's
//! calls need — `drill_faults::kubernetes::RBAC`, which the tower_test mock enforces on
//! every call (crates/drill-faults/tests/kubernetes.rs). No API server runs here.
//! Needs the test virtualenv of tests/services/up.sh (helm-python-sdk,
//! kubernetes-validate); missing, it fails under CI=true.

use std::path::Path;
use std::process::Command;

#[test]
fn the_chart_lints_renders_valid_objects_and_grants_exactly_the_backends_calls() {
    let py = std::env::var("DRILL_TEST_PY").unwrap_or_else(|_| "/var/lib/drill-test/py".into());
    let python = Path::new(&py).join("bin/python");
    let have = Command::new(&python)
        .args(["-c", "import helm_python, kubernetes_validate"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !drill_testkit::service(
        "helm-python-sdk and kubernetes-validate (bash tests/services/up.sh)",
        have,
    ) {
        return;
    }
    let rbac: Vec<(&str, &str, &[&str])> = drill_faults::kubernetes::RBAC.to_vec();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(&python)
        .arg(root.join("tests/chart/check.py"))
        .arg(root.join("charts/drill"))
        .arg(serde_json::to_string(&rbac).expect("json"))
        .arg(env!("CARGO_BIN_EXE_drill"))
        .output()
        .expect("python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("chart: every check held"), "{text}");
}
