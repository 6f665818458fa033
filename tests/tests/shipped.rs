//! Every shipped drill and playbook validates, and the seed playbook plans to the seed's numbers.

use std::collections::BTreeMap;

use drill_spec::units::Dur;
use drill_tests::{rendered, repo, validate, yaml_files};

fn read_all(dir: &str) -> Vec<(String, String)> {
    yaml_files(dir)
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("readable");
            (
                f.strip_prefix(repo()).unwrap_or(&f).display().to_string(),
                text,
            )
        })
        .collect()
}

#[test]
fn every_shipped_drill_and_playbook_is_valid_without_warnings() {
    let mut files = read_all("drills");
    files.extend(read_all("playbooks"));
    assert!(
        files.len() >= 4,
        "expected the three seed drills and a playbook, found {files:?}"
    );
    let out = validate(&files, &BTreeMap::new());
    assert_eq!(rendered(&out), Vec::<String>::new());
    assert_eq!(out.drills_checked, yaml_files("drills").len());
    assert_eq!(out.playbooks.len(), yaml_files("playbooks").len());
}

#[test]
fn the_seed_playbook_plans_nine_minutes_and_47400_requests() {
    let files = read_all("playbooks");
    let out = validate(&files, &BTreeMap::new());
    let pb = out
        .playbooks
        .iter()
        .find(|p| p.playbook.metadata.name == "community-staging")
        .expect("seed playbook");
    let plan = pb.plan(1.0);
    assert_eq!(plan.traffic.duration, Dur::from_secs(9 * 60));
    // 20→50/s over 2 min (4,200) + 120/s for 5 min (36,000) + 120→0/s over 2 min (7,200).
    assert!(
        (plan.traffic.expected_requests - 47_400.0).abs() < 1e-6,
        "{}",
        plan.traffic.expected_requests
    );
    let names: Vec<&str> = plan.drills.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["queue-outage", "db-failover", "cache-purge"]);
    let q = &plan.drills[0];
    assert_eq!(
        (q.fault.start, q.fault.end),
        (Dur::from_secs(60), Dur::from_secs(240))
    );
    assert_eq!(
        q.recovery.end,
        Dur::from_secs(540),
        "drain window of 5 min after the restore"
    );
    let db = &plan.drills[1];
    assert_eq!(
        (db.start, db.start_latest),
        (Dur::from_secs(240), Dur::from_secs(540))
    );
    let cache = &plan.drills[2];
    assert_eq!(cache.start, Dur::from_secs(300));
    assert!(
        cache.fault.end <= Dur::from_secs(7 * 60),
        "the purge happens at peak when drills recover at once"
    );
    // Time-scaled rehearsal: everything shrinks by the same factor.
    let fast = pb.plan(0.1);
    assert_eq!(fast.traffic.duration, Dur::from_secs(54));
    assert_eq!(fast.drills[0].fault.start, Dur::from_secs(6));
}

/// A playbook that uses each seed drill with only its required parameters.
const DEFAULTS: &str = r#"apiVersion: drill/v1
kind: Playbook
metadata: {name: defaults}
target:
  base_url: http://127.0.0.1:9
  allow:
    http: ["127.0.0.1"]
    docker: {containers: ["w"]}
    redis: ["redis://127.0.0.1:6379"]
    sql: ["postgres://127.0.0.1:5434"]
traffic:
  requests: [{name: r, path: /}]
  profile: [{rate: 1/s, hold: 30m}]
drills:
  - uses: queue-outage
    at: 1m
    with: {workers: {docker: {name: w}}, redis: "redis://127.0.0.1:6379"}
  - uses: db-failover
    after: recovered
    with: {replica: "postgres://postgres@127.0.0.1:5434/postgres"}
  - uses: cache-purge
    after: recovered
    with: {redis: "redis://127.0.0.1:6379"}
"#;

#[test]
fn seed_numbers_are_the_drills_defaults() {
    let files = read_all("drills");
    assert_eq!(files.len(), 3, "the three seed drills: {files:?}");
    let env = std::collections::BTreeMap::new();
    let mut loader = drill_spec::Loader::new(&env);
    loader.add("defaults.yaml", DEFAULTS, true);
    for (name, text) in &files {
        loader.add(name, text, false);
    }
    let out = loader.finish();
    assert!(!out.has_errors(), "{:?}", out.diags);
    // What the resolved drills will do, with every default filled in.
    use drill_spec::call::ActionKind;
    use drill_spec::check::Rule;
    let drills = &out.playbooks[0].drills;
    let (q, db, cache) = (&drills[0], &drills[1], &drills[2]);
    let check = |d: &drill_spec::ResolvedDrill, name: &str| {
        d.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.rule.clone())
            .unwrap_or_else(|| panic!("no check {name} in {d:?}"))
    };
    // Seed plan: 5,000 jobs, a 3-minute outage, drained within 5 minutes, < 1% errors.
    match &q.actions[0].kind {
        ActionKind::Enqueue(e) => assert_eq!(e.jobs, 5000, "{q:?}"),
        other => panic!("the queue drill enqueues first: {other:?}"),
    }
    assert_eq!(q.spec.hold.to_string(), "3m", "{q:?}");
    match check(q, "backlog-drains") {
        Rule::Probe(p) => assert_eq!(p.within.to_string(), "5m"),
        other => panic!("backlog-drains is a probe: {other:?}"),
    }
    match check(q, "api-errors-during-outage") {
        Rule::Slo(l) => assert_eq!(l.error_rate.map(|e| e.to_string()).as_deref(), Some("1%")),
        other => panic!("api-errors-during-outage is an slo: {other:?}"),
    }
    // At most 2 transient 5xx during the failover.
    match check(db, "transient-5xx") {
        Rule::Count(c) => assert_eq!(c.max, 2),
        other => panic!("transient-5xx is a count: {other:?}"),
    }
    // p95 rises by less than 200 ms after the purge.
    match check(cache, "p95-increase") {
        Rule::Delta(d) => assert_eq!(d.max.to_string(), "200ms"),
        other => panic!("p95-increase is a delta: {other:?}"),
    }
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let committed = std::fs::read_to_string(repo().join("schema/drill.schema.json"))
        .expect("schema/drill.schema.json is committed");
    let generated = format!(
        "{}\n",
        serde_json::to_string_pretty(&drill_spec::json_schema()).expect("json")
    );
    assert!(
        committed == generated,
        "schema/drill.schema.json is stale: run `cargo run -q --bin drill -- schema -o schema/drill.schema.json`"
    );
    let v: serde_json::Value = serde_json::from_str(&committed).expect("valid JSON");
    let defs = v["$defs"].as_object().expect("$defs");
    for def in [
        "Playbook", "DrillDoc", "Stage", "Fault", "Probe", "Dur", "Rate", "Percent",
    ] {
        assert!(defs.contains_key(def), "schema lacks {def}");
    }
}

/// playbooks/local-processes.yaml is playbooks/local.yaml with the queue worker as a process:
/// the workers target and what the allow-list needs for it are the only differences, so the
/// two demos run the same drills.
#[test]
fn the_process_demo_playbook_differs_from_the_docker_one_only_in_its_workers() {
    let files = read_all("playbooks");
    let out = validate(&files, &BTreeMap::new());
    let json = |name: &str| {
        let pb = out
            .playbooks
            .iter()
            .find(|p| p.playbook.metadata.name == name)
            .unwrap_or_else(|| panic!("playbook {name}: {:?}", rendered(&out)));
        let mut v = serde_json::to_value(&pb.playbook).expect("json");
        let workers = v["drills"][0]["with"]["workers"].take();
        let allow = &mut v["target"]["allow"];
        let own = serde_json::json!({
            "docker": allow["docker"].take(),
            "processes": allow["processes"].take(),
            "exec": allow["exec"].take(),
        });
        v["metadata"] = serde_json::Value::Null;
        (v, workers, own)
    };
    let (docker, docker_workers, docker_allow) = json("local");
    let (process, process_workers, process_allow) = json("local-processes");
    assert_eq!(docker, process, "everything but the workers is the same");
    assert!(docker_workers.get("docker").is_some(), "{docker_workers}");
    assert!(
        process_workers.get("process").is_some(),
        "{process_workers}"
    );
    assert_eq!(docker_allow["exec"], serde_json::json!(["psql"]));
    assert_eq!(
        process_allow["exec"],
        serde_json::json!(["psql", "scripts/demo-env.sh"])
    );
}
