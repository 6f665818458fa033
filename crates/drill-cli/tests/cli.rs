//! Black-box tests of the `drill` binary: exit codes, output formats, file discovery.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn drill(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(args)
        .current_dir(dir)
        .env_remove("API_HOST")
        .env_remove("REDIS_URL")
        .env_remove("REPLICA_URL")
        .output()
        .expect("drill runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_accepts_the_shipped_documents_with_exit_0() {
    let out = drill(&repo(), &["validate", "drills", "playbooks"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "ok: 3 playbooks (9 drills resolved), 3 drill documents valid"
    );
    let one = drill(&repo(), &["validate", "playbooks/local.yaml"]);
    assert_eq!(
        text(&one.stdout).trim(),
        "ok: 1 playbook (3 drills resolved) valid",
        "a playbook with drills does not say 0 drills"
    );
}

#[test]
fn validate_prints_every_error_of_every_file_and_exits_2() {
    let out = drill(
        &repo(),
        &[
            "validate",
            "tests/malformed/slo-p50-above-p99.yaml",
            "tests/malformed/unknown-field-ramp-too.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "tests/malformed/slo-p50-above-p99.yaml:18:12: error: p50 limit (900ms) is above the p95 limit (800ms), p50 can never exceed p95; lower p50 or raise p95",
            "tests/malformed/slo-p50-above-p99.yaml:18:12: error: p50 limit (900ms) is above the p99 limit (500ms), p50 can never exceed p99; lower p50 or raise p99",
            "tests/malformed/slo-p50-above-p99.yaml:18:36: error: p95 limit (800ms) is above the p99 limit (500ms), p95 can never exceed p99; lower p95 or raise p99",
            "tests/malformed/unknown-field-ramp-too.yaml:18:8: error: unknown field \"ramp_too\", did you mean \"ramp_to\"?",
            "4 errors found; nothing was executed",
        ]
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn validate_reports_an_unreadable_file_and_exits_2() {
    let out = drill(&repo(), &["validate", "no/such/playbook.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("no/such/playbook.yaml: error: cannot read the file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_json_lists_diagnostics_with_positions() {
    let out = drill(
        &repo(),
        &[
            "validate",
            "--output",
            "json",
            "tests/malformed/drill-unknown.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(20), Some(11))
    );
    assert_eq!(d["message"], "unknown drill \"cache-purj\"");
    assert_eq!(d["hint"], "did you mean \"cache-purge\"?");
}

#[test]
fn plan_prints_the_seed_timeline() {
    let out = drill(&repo(), &["plan", "playbooks/community-staging.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("playbook community-staging (playbooks/community-staging.yaml): 9m of traffic, 47,400 requests expected, peak 120/s"), "{s}");
    for needle in [
        "0s → 2m                  traffic  4,200 requests         ramp 20/s → 50/s",
        "2m → 7m                  traffic  36,000 requests        hold 120/s",
        "7m → 9m                  traffic  7,200 requests         ramp 120/s → 0/s",
        "drill queue-outage",
        "1m                       fault    stop-workers           stop  [kubernetes staging:deployment community/horizon]",
        "4m                       revert   stop-workers",
        "4m → 9m                  check    backlog-drains",
        "drill db-failover",
        "starts between 4m and 9m, once the previous drill recovered",
        "drill cache-purge",
        "flush all  [redis redis://redis.staging:6379]",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in\n{s}");
    }
}

#[test]
fn plan_json_carries_the_same_numbers_and_scales_with_time_scale() {
    let out = drill(
        &repo(),
        &[
            "plan",
            "--output",
            "json",
            "--time-scale",
            "0.1",
            "playbooks/community-staging.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["duration_s"].as_f64(), Some(54.0));
    assert_eq!(v["expected_requests"].as_u64(), Some(4740));
    let faults: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "fault")
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(faults, ["stop-workers", "promote-replica", "flush-redis"]);
}

#[test]
fn plan_refuses_an_invalid_playbook_with_exit_2() {
    let out = drill(&repo(), &["plan", "tests/malformed/rate-zero.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("rate-zero.yaml:17:14: error: rate must be above 0/s"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn plan_finds_drills_beside_a_copied_playbook_in_a_temp_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("playbooks")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("drills")).expect("mkdir");
    for d in ["queue-outage", "db-failover", "cache-purge"] {
        std::fs::copy(
            repo().join(format!("drills/{d}.yaml")),
            dir.path().join(format!("drills/{d}.yaml")),
        )
        .expect("copy");
    }
    std::fs::copy(
        repo().join("playbooks/community-staging.yaml"),
        dir.path().join("playbooks/p.yaml"),
    )
    .expect("copy");
    // Run from inside playbooks/: the drills are found in ../drills.
    let out = drill(&dir.path().join("playbooks"), &["plan", "p.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Without drills anywhere, `uses:` cannot resolve and the message says where it looked.
    std::fs::remove_dir_all(dir.path().join("drills")).expect("rm");
    let out = drill(&dir.path().join("playbooks"), &["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown drill \"queue-outage\", no drills are loaded"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn schema_prints_the_committed_json_schema() {
    let out = drill(&repo(), &["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let committed =
        std::fs::read(repo().join("schema/drill.schema.json")).expect("committed schema");
    assert!(
        text(&out.stdout) == text(&committed),
        "schema/drill.schema.json is stale: run `drill schema -o schema/drill.schema.json`"
    );
}

#[test]
fn usage_errors_exit_2_and_help_lists_the_exit_codes() {
    assert_eq!(drill(&repo(), &["validate"]).status.code(), Some(2));
    assert_eq!(
        drill(
            &repo(),
            &[
                "plan",
                "--time-scale",
                "0",
                "playbooks/community-staging.yaml"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    let help = drill(&repo(), &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let s = text(&help.stdout);
    for code in [
        "0  ok",
        "1  a check or threshold failed",
        "2  invalid input",
        "3  aborted",
        "4  a fault could not be reverted",
    ] {
        assert!(s.contains(code), "{s}");
    }
}

#[test]
fn every_option_of_every_command_says_what_it_does_in_help() {
    let commands = [
        "validate", "plan", "load", "apply", "demo", "runs", "report", "recover", "revert",
        "schema",
    ];
    for cmd in commands {
        let out = drill(&repo(), &[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{cmd} --help");
        let help = text(&out.stdout);
        let options: Vec<&str> = help
            .lines()
            .filter(|l| l.trim_start().starts_with('-'))
            .collect();
        assert!(!options.is_empty(), "{cmd}: no options found in\n{help}");
        for line in options {
            // `      --flag <V>   What it does`: something after the flag's column.
            let spec_end = line
                .trim_start()
                .find("  ")
                .map(|i| line.len() - line.trim_start().len() + i);
            // Clap's `[default: …]` alone is not a description.
            let described = spec_end.is_some_and(|i| {
                let d = line[i..].trim();
                !d.is_empty() && !d.starts_with('[')
            });
            assert!(
                described,
                "{cmd}: an option without a description: {line:?}"
            );
        }
    }
}

#[test]
fn the_schema_refuses_a_zero_weight_as_validation_does() {
    let schema: serde_json::Value =
        serde_json::from_slice(&drill(&repo(), &["schema"]).stdout).expect("schema JSON");
    let weight = schema["$defs"]
        .as_object()
        .and_then(|d| d.values().find_map(|v| v["properties"].get("weight")))
        .expect("a weight property");
    assert_eq!(weight["minimum"], 1, "{weight}");
}

#[test]
fn validate_warns_about_an_inert_body_check_and_an_error_class_that_counts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = |expect: &str, errors: &str| {
        format!(
            "apiVersion: drill/v1
kind: Playbook
metadata: {{name: t}}
target:
  base_url: http://127.0.0.1:9
  allow: {{http: [\"127.0.0.1\"]}}
traffic:
  requests:
    - {{name: a, path: /{expect}}}
  profile: [{{rate: 1/s, hold: 1s}}]
  errors: [{errors}]
"
        )
    };
    std::fs::write(
        dir.path().join("inert.yaml"),
        pb(", expect: {pointer: /data, error: false}", "5xx"),
    )
    .expect("write");
    std::fs::write(dir.path().join("nothing.yaml"), pb("", "5xx, check")).expect("write");
    std::fs::write(
        dir.path().join("counted.yaml"),
        pb(", expect: {pointer: /data}", "5xx"),
    )
    .expect("write");
    let out = drill(dir.path(), &["validate", "inert.yaml"]);
    assert_eq!(out.status.code(), Some(0), "warnings only");
    let err = text(&out.stderr);
    assert!(
        err.contains("inert.yaml:9:")
            && err.contains("warning: request \"a\": a failed expectation is only reported"),
        "{err}"
    );
    let out = drill(dir.path(), &["validate", "nothing.yaml"]);
    let err = text(&out.stderr);
    assert!(
        err.contains("nothing.yaml:11:") && err.contains("`check` counts nothing here"),
        "{err}"
    );
    // The default: an `expect` counts, with no `check` listed, and nothing to warn about.
    let out = drill(dir.path(), &["validate", "counted.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}
