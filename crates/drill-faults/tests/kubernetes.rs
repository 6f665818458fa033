//! Kubernetes through kube's tower_test mock service: each test lists the exact API calls
//! (method, path, body) it expects, answers them, and fails on any call it did not expect.

use std::time::Duration;

use drill_faults::kubernetes::{self, Kind, ORIGINAL_REPLICAS};
use drill_faults::{FaultError, RevertRecord, Reverted};
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One expected call and its answer.
struct Call {
    method: &'static str,
    uri: &'static str,
    body: Option<Value>,
    status: u16,
    reply: Value,
}

fn call(method: &'static str, uri: &'static str, body: Option<Value>, reply: Value) -> Call {
    Call {
        method,
        uri,
        body,
        status: 200,
        reply,
    }
}

/// A client backed by a mock that serves exactly `calls`, in order; the returned task fails
/// if a call differs, is missing, or comes in addition.
fn scenario(calls: Vec<Call>) -> (Client, tokio::task::JoinHandle<()>) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        for (i, c) in calls.into_iter().enumerate() {
            let Ok(Some((req, send))) =
                tokio::time::timeout(Duration::from_secs(5), handle.next_request()).await
            else {
                panic!("call {i} ({} {}) was never made", c.method, c.uri);
            };
            assert_eq!(req.method().as_str(), c.method, "call {i}");
            assert_eq!(req.uri().to_string(), c.uri, "call {i}");
            assert!(
                permitted(c.method, c.uri),
                "call {i} ({} {}) needs a permission kubernetes::RBAC (and so the chart's Role) does not grant",
                c.method,
                c.uri
            );
            let body = req.into_body().collect().await.expect("body").to_bytes();
            match c.body {
                Some(want) => {
                    let got: Value = serde_json::from_slice(&body).expect("a JSON body");
                    assert_eq!(got, want, "call {i} body");
                }
                None => assert!(body.is_empty(), "call {i} has an unexpected body"),
            }
            // A watch answers with one JSON event per line.
            let bytes = match (&c.reply, c.uri.contains("watch=true")) {
                (Value::Array(events), true) => events
                    .iter()
                    .map(|e| serde_json::to_string(e).expect("json") + "\n")
                    .collect::<String>()
                    .into_bytes(),
                _ => serde_json::to_vec(&c.reply).expect("json"),
            };
            let resp = Response::builder()
                .status(c.status)
                .header("content-type", "application/json")
                .body(Body::from(bytes))
                .expect("response");
            send.send_response(resp);
        }
        if let Ok(Some((req, _))) =
            tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await
        {
            panic!("unexpected call: {} {}", req.method(), req.uri());
        }
    });
    (Client::new(svc, "default"), task)
}

/// Whether `kubernetes::RBAC` grants a call: its API group, resource and verb, read off
/// the path as the API server does (`/api/v1/namespaces/NS/pods`, `/apis/apps/v1/...`).
fn permitted(method: &str, uri: &str) -> bool {
    permission(method, uri).is_some_and(|(group, resource, verb)| {
        kubernetes::RBAC
            .iter()
            .any(|(g, r, verbs)| *g == group && *r == resource && verbs.contains(&verb))
    })
}

/// The (API group, resource, verb) a call needs.
fn permission<'a>(method: &str, uri: &'a str) -> Option<(&'a str, &'a str, &'static str)> {
    let path = uri.split('?').next().unwrap_or(uri);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _v, rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => return None,
    };
    let (resource, named) = match rest {
        ["namespaces", _ns, r] => (*r, false),
        ["namespaces", _ns, r, _name] => (*r, true),
        _ => return None,
    };
    let watch = uri.contains("watch=true");
    let verb = match (method, named) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        _ => return None,
    };
    Some((group, resource, verb))
}

#[test]
fn the_permission_check_reads_paths_as_the_api_server_does() {
    assert!(permitted(
        "GET",
        "/apis/apps/v1/namespaces/c/deployments/horizon"
    ));
    assert!(permitted(
        "PATCH",
        "/apis/apps/v1/namespaces/c/statefulsets/db?fieldManager=drill"
    ));
    assert!(permitted(
        "GET",
        "/api/v1/namespaces/c/pods?labelSelector=app%3Dx"
    ));
    assert!(permitted("DELETE", "/api/v1/namespaces/c/pods/p-1"));
    assert!(!permitted(
        "DELETE",
        "/apis/apps/v1/namespaces/c/deployments/horizon"
    ));
    assert!(!permitted("GET", "/api/v1/namespaces/c/secrets/s"));
    assert!(
        !permitted("GET", "/apis/apps/v1/deployments"),
        "cluster-wide list"
    );
}

fn deployment(replicas: i32, original: Option<i32>, ready: i32) -> Value {
    let mut meta = json!({"name": "horizon", "namespace": "community"});
    if let Some(o) = original {
        meta["annotations"] = json!({ORIGINAL_REPLICAS: o.to_string()});
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "horizon"}}, "template": {}}, "status": {"readyReplicas": ready}})
}

fn pod(name: &str, ready: bool) -> Value {
    json!({"metadata": {"name": name, "namespace": "community"}, "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

fn pods(list: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": list})
}

fn target(v: Value) -> drill_spec::model::KubernetesTarget {
    serde_json::from_value(v).expect("target")
}

fn allow() -> drill_spec::model::Allow {
    serde_json::from_value(json!({"kubernetes": {"context": "staging", "namespaces": ["community"], "workloads": ["deployment/horizon", "pods/app=horizon"]}})).expect("allow")
}

fn fault(v: Value) -> drill_spec::fault::ValidFault {
    serde_json::from_value(v).expect("fault")
}

const DEPLOY: &str = "/apis/apps/v1/namespaces/community/deployments/horizon";
const STS: &str = "/apis/apps/v1/namespaces/community/statefulsets/db";
const STS_PATCH: &str = "/apis/apps/v1/namespaces/community/statefulsets/db?";
const DEPLOY_PATCH: &str = "/apis/apps/v1/namespaces/community/deployments/horizon?";

fn record(p: &drill_faults::Prepared<kubernetes::Record>) -> kubernetes::Record {
    // Through JSON and back, as the ledger keeps it: the record alone is enough.
    let json = serde_json::to_string(&RevertRecord::Kubernetes(p.record.clone())).expect("json");
    match serde_json::from_str(&json).expect("record") {
        RevertRecord::Kubernetes(r) => r,
        other => panic!("{other:?}"),
    }
}

fn statefulset(replicas: i32, original: Option<i32>, ready: i32) -> Value {
    let mut v = deployment(replicas, original, ready);
    v["kind"] = json!("StatefulSet");
    v["metadata"]["name"] = json!("db");
    v
}

#[tokio::test]
async fn scaling_a_statefulset_patches_it_and_revert_restores_its_count() {
    let t = target(json!({"context": "staging", "namespace": "community", "statefulset": "db"}));
    let f = fault(json!({"name": "stop-db", "action": "stop", "target": {"kubernetes": t}}));
    let allow: drill_spec::model::Allow = serde_json::from_value(json!({"kubernetes": {"context": "staging", "namespaces": ["community"], "workloads": ["statefulset/db"]}})).expect("allow");
    let (client, calls) = scenario(vec![
        call("GET", STS, None, statefulset(2, None, 2)),
        call(
            "PATCH",
            STS_PATCH,
            Some(
                json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: "2"}}, "spec": {"replicas": 0}}),
            ),
            statefulset(0, Some(2), 2),
        ),
    ]);
    let p = kubernetes::prepare_with(&client, &f, &allow)
        .await
        .expect("prepare");
    let r = record(&p);
    kubernetes::apply_with(&client, &r).await.expect("apply");
    drop(client);
    calls.await.expect("exactly the expected calls");
    let (client, calls) = scenario(vec![
        call("GET", STS, None, statefulset(0, Some(2), 0)),
        call(
            "PATCH",
            STS_PATCH,
            Some(
                json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: null}}, "spec": {"replicas": 2}}),
            ),
            statefulset(2, None, 0),
        ),
    ]);
    assert_eq!(
        kubernetes::revert_with(&client, &r).await.expect("revert"),
        Reverted::Restored(vec!["scaled community/db back to 2".into()])
    );
    drop(client);
    calls.await.expect("exactly the expected calls");
}

/// The permission table grants nothing the backend's calls do not use: every (group,
/// resource, verb) of `kubernetes::RBAC` is needed by a call these tests expect (and the
/// scenarios fail unless the backend makes exactly the expected calls).
#[test]
fn every_permission_of_the_table_is_used_by_a_call_the_tests_expect() {
    let src = include_str!("kubernetes.rs");
    // The paths the scenarios name: literals, and `const NAME: &str = "…"` / `let name = "…"`.
    let mut names = std::collections::BTreeMap::new();
    for line in src.lines() {
        let l = line.trim();
        if let Some((lhs, rhs)) = l.split_once(" = \"")
            && (l.starts_with("const ") || l.starts_with("let "))
            && let Some(path) = rhs.strip_suffix("\";")
        {
            let name = lhs
                .trim_start_matches("const ")
                .trim_start_matches("let ")
                .split(':')
                .next()
                .unwrap_or("")
                .trim();
            names.insert(name.to_owned(), path.to_owned());
        }
    }
    // Each `call("METHOD", PATH, …)` of a scenario (one per expected call).
    let toks: Vec<&str> = src
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|t| !t.is_empty())
        .collect();
    let mut used = std::collections::BTreeSet::new();
    for w in toks.windows(3) {
        let method = w[1].trim_matches('"');
        if w[0] != "call" || !["GET", "POST", "PATCH", "DELETE"].contains(&method) {
            continue;
        }
        let path = names
            .get(w[2])
            .cloned()
            .unwrap_or_else(|| w[2].trim_matches('"').to_owned());
        assert!(
            path.starts_with('/'),
            "a call whose path is not found: {w:?}"
        );
        used.insert((method.to_owned(), path));
    }
    let needed: std::collections::BTreeSet<(&str, &str, &str)> =
        used.iter().filter_map(|(m, p)| permission(m, p)).collect();
    for (group, resource, verbs) in kubernetes::RBAC {
        for verb in *verbs {
            assert!(
                needed.contains(&(*group, *resource, *verb)),
                "kubernetes::RBAC grants {verb} {group}/{resource}, which no expected call uses: {needed:?}"
            );
        }
    }
}

#[tokio::test]
async fn stopping_a_deployment_scales_to_zero_with_the_count_annotated_and_revert_restores_it() {
    let t =
        target(json!({"context": "staging", "namespace": "community", "deployment": "horizon"}));
    let f = fault(json!({"name": "stop-workers", "action": "stop", "target": {"kubernetes": t}}));
    let (client, calls) = scenario(vec![
        call("GET", DEPLOY, None, deployment(3, None, 3)),
        call(
            "PATCH",
            DEPLOY_PATCH,
            Some(
                json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: "3"}}, "spec": {"replicas": 0}}),
            ),
            deployment(0, Some(3), 3),
        ),
    ]);
    let p = kubernetes::prepare_with(&client, &f, &allow())
        .await
        .expect("prepare");
    assert_eq!(
        p.changes,
        [
            "scale deployment community/horizon from 3 to 0 replicas (annotated drill.dev/original-replicas=3), back to 3 after"
        ]
    );
    let r = record(&p);
    kubernetes::apply_with(&client, &r).await.expect("apply");
    drop(client);
    calls.await.expect("exactly the expected calls");

    // After a simulated crash: a new process, a new client, only the record.
    let (client, calls) = scenario(vec![
        call("GET", DEPLOY, None, deployment(0, Some(3), 0)),
        call(
            "PATCH",
            DEPLOY_PATCH,
            Some(
                json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: null}}, "spec": {"replicas": 3}}),
            ),
            deployment(3, None, 0),
        ),
    ]);
    assert_eq!(
        kubernetes::revert_with(&client, &r).await.expect("revert"),
        Reverted::Restored(vec!["scaled community/horizon back to 3".into()])
    );
    drop(client);
    calls.await.expect("exactly the expected calls");

    // Reverting again reads, finds it restored, and writes nothing.
    let (client, calls) = scenario(vec![call("GET", DEPLOY, None, deployment(3, None, 3))]);
    assert_eq!(
        kubernetes::revert_with(&client, &r).await.expect("revert"),
        Reverted::AlreadyRestored
    );
    drop(client);
    calls.await.expect("no write");
}

#[tokio::test]
async fn a_count_annotated_by_an_unfinished_run_is_the_original_and_restores_without_a_record() {
    let t = target(json!({"namespace": "community", "deployment": "horizon"}));
    let f = fault(
        json!({"name": "scale", "action": "scale", "replicas": 1, "target": {"kubernetes": t}}),
    );
    // A crashed run left the workload at 0 with the annotation: the original is 3, not 0.
    let (client, calls) = scenario(vec![call("GET", DEPLOY, None, deployment(0, Some(3), 0))]);
    let p = kubernetes::prepare_with(&client, &f, &allow())
        .await
        .expect("prepare");
    assert!(p.changes[0].contains("from 3 to 1"), "{:?}", p.changes);
    drop(client);
    calls.await.expect("only a read");

    let (client, calls) = scenario(vec![
        call("GET", DEPLOY, None, deployment(0, Some(3), 0)),
        call(
            "PATCH",
            DEPLOY_PATCH,
            Some(
                json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: null}}, "spec": {"replicas": 3}}),
            ),
            deployment(3, None, 0),
        ),
    ]);
    let r = kubernetes::restore_from_annotation(&client, "community", Kind::Deployment, "horizon")
        .await
        .expect("restore");
    assert!(matches!(r, Reverted::Restored(_)));
    drop(client);
    calls.await.expect("exactly the expected calls");
}

#[tokio::test]
async fn deleting_pods_respects_the_count_and_revert_waits_for_them_to_be_ready() {
    let t = target(json!({"namespace": "community", "pods": "app=horizon", "count": 1}));
    let f =
        fault(json!({"name": "kill-a-pod", "action": "delete-pods", "target": {"kubernetes": t}}));
    let list = "/api/v1/namespaces/community/pods?&labelSelector=app%3Dhorizon";
    let (client, calls) = scenario(vec![
        call(
            "GET",
            list,
            None,
            pods(vec![pod("horizon-b", true), pod("horizon-a", true)]),
        ),
        call(
            "DELETE",
            "/api/v1/namespaces/community/pods/horizon-a?",
            Some(json!({})),
            pod("horizon-a", true),
        ),
    ]);
    let p = kubernetes::prepare_with(&client, &f, &allow())
        .await
        .expect("prepare");
    let r = record(&p);
    kubernetes::apply_with(&client, &r).await.expect("delete");
    drop(client);
    calls.await.expect("one list, one delete");

    // Not ready again yet: the revert reports it (the engine retries with backoff).
    let (client, calls) = scenario(vec![call(
        "GET",
        list,
        None,
        pods(vec![pod("horizon-b", true), pod("horizon-c", false)]),
    )]);
    let e = kubernetes::revert_with(&client, &r)
        .await
        .expect_err("not ready yet");
    assert!(
        e.to_string()
            .contains("1 of 2 pods matching app=horizon are ready again"),
        "{e}"
    );
    drop(client);
    calls.await.expect("a list");
    let (client, calls) = scenario(vec![call(
        "GET",
        list,
        None,
        pods(vec![pod("horizon-b", true), pod("horizon-c", true)]),
    )]);
    assert_eq!(
        kubernetes::revert_with(&client, &r).await.expect("ready"),
        Reverted::AlreadyRestored
    );
    drop(client);
    calls.await.expect("a list");
}

#[tokio::test]
async fn probes_read_ready_replicas_and_ready_pods() {
    let (client, calls) = scenario(vec![
        call("GET", DEPLOY, None, deployment(3, None, 2)),
        call(
            "GET",
            "/api/v1/namespaces/community/pods?&labelSelector=app%3Dhorizon",
            None,
            pods(vec![pod("a", true), pod("b", false)]),
        ),
    ]);
    let d = target(json!({"namespace": "community", "deployment": "horizon"}));
    assert_eq!(
        kubernetes::probe_with(&client, &d, &allow())
            .await
            .expect("probe"),
        2.0
    );
    let p = target(json!({"namespace": "community", "pods": "app=horizon"}));
    assert_eq!(
        kubernetes::probe_with(&client, &p, &allow())
            .await
            .expect("probe"),
        1.0
    );
    drop(client);
    calls.await.expect("two reads");
}

#[tokio::test]
async fn a_namespace_or_context_outside_the_allow_list_makes_no_call() {
    let (client, calls) = scenario(vec![]);
    let t = target(json!({"namespace": "payments", "deployment": "horizon"}));
    let f = fault(json!({"name": "stop", "action": "stop", "target": {"kubernetes": t}}));
    let e = kubernetes::prepare_with(&client, &f, &allow())
        .await
        .expect_err("refused");
    assert!(matches!(e, FaultError::NotAllowed(..)), "{e}");
    let t =
        target(json!({"context": "production", "namespace": "community", "deployment": "horizon"}));
    let f = fault(json!({"name": "stop", "action": "stop", "target": {"kubernetes": t}}));
    let e = kubernetes::prepare_with(&client, &f, &allow())
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("context \"production\""), "{e}");
    drop(client);
    calls.await.expect("no call at all");
}

const JOBS: &str = "/apis/batch/v1/namespaces/load/jobs?";
const JOB: &str = "/apis/batch/v1/namespaces/load/jobs/drill-shards-20261206-101500-0a1b2";
const JOB_DELETE: &str = "/apis/batch/v1/namespaces/load/jobs/drill-shards-20261206-101500-0a1b2?";
const SHARD_PODS_WATCH: &str = "/api/v1/namespaces/load/pods?&watch=true&timeoutSeconds=60&labelSelector=drill.dev%2Frun%3D20261206-101500-0a1b2&allowWatchBookmarks=true&resourceVersion=0";

fn shard_job() -> kubernetes::Record {
    let spec = kubernetes::job::ShardJobSpec {
        run_id: "20261206-101500-0a1b2".into(),
        namespace: "load".into(),
        image: "registry.local/drill:0.1".into(),
        shards: 4,
        service_account: Some("drill-shard".into()),
        store_url: "postgres://drill@db/drill".into(),
        store_secret: Some(("drill-store".into(), "url".into())),
        deadline_s: 420,
        ttl_s: 600,
    };
    let r = kubernetes::Record {
        context: None,
        namespace: "load".into(),
        action: kubernetes::Action::ShardJob {
            name: kubernetes::job::job_name(&spec.run_id),
            manifest: kubernetes::job::manifest(&spec),
        },
    };
    // Through the ledger's JSON and back: the record alone deletes the Job.
    let json = serde_json::to_string(&RevertRecord::Kubernetes(r)).expect("json");
    match serde_json::from_str(&json).expect("record") {
        RevertRecord::Kubernetes(r) => r,
        other => panic!("{other:?}"),
    }
}

/// The Job exactly as the API server receives it: Indexed, one pod per shard all at once,
/// no retry (a shard's part of the schedule is bound to its time), a deadline and a TTL, the
/// run's labels on the Job and its pods, and the store's URL from a Secret.
fn job_body() -> Value {
    let labels = json!({
        "app.kubernetes.io/component": "load-shard",
        "app.kubernetes.io/managed-by": "drill",
        "app.kubernetes.io/name": "drill",
        "drill.dev/run": "20261206-101500-0a1b2",
    });
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "drill-shards-20261206-101500-0a1b2", "namespace": "load", "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": 4,
            "parallelism": 4,
            "backoffLimit": 0,
            "activeDeadlineSeconds": 420,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "drill-shard",
                    "containers": [{
                        "name": "shard",
                        "image": "registry.local/drill:0.1",
                        "args": ["load", "--run", "20261206-101500-0a1b2", "--shards", "4"],
                        "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "drill-store", "key": "url"}}}],
                    }],
                },
            },
        },
    })
}

fn shard_pod(index: u32, phase: &str, waiting: Option<&str>) -> Value {
    let mut status = json!({"phase": phase});
    if let Some(r) = waiting {
        status["containerStatuses"] = json!([{"name": "shard", "image": "registry.local/drill:0.1", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": r}}}]);
    }
    json!({"type": "MODIFIED", "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("drill-shards-20261206-101500-0a1b2-{index}-x"), "namespace": "load", "annotations": {"batch.kubernetes.io/job-completion-index": index.to_string()}}, "status": status}})
}

/// Create (the exact spec), the watch of its pods (a pod that cannot pull its image is
/// seen, with its shard), and the delete at the end of the run or on abort: the record in
/// the ledger is read back, the Job is found, then deleted with its pods.
#[tokio::test]
async fn the_shards_job_is_created_indexed_watched_and_deleted_with_its_pods() {
    let r = shard_job();
    let job = job_body();
    let (client, calls) = scenario(vec![
        call("POST", JOBS, Some(job.clone()), job.clone()),
        call(
            "GET",
            SHARD_PODS_WATCH,
            None,
            json!([
                shard_pod(0, "Running", None),
                shard_pod(3, "Pending", Some("ErrImagePull"))
            ]),
        ),
        call("GET", JOB, None, job.clone()),
        call(
            "DELETE",
            JOB_DELETE,
            Some(json!({"propagationPolicy": "Background"})),
            job.clone(),
        ),
    ]);
    kubernetes::apply_with(&client, &r).await.expect("created");
    let mut seen = Vec::new();
    kubernetes::job::watch_pods(&client, "load", "20261206-101500-0a1b2", 60, |p| {
        seen.push(p);
        true
    })
    .await
    .expect("watched");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].index, Some(0));
    assert_eq!(seen[0].phase, "Running");
    assert_eq!(seen[1].index, Some(3));
    assert_eq!(seen[1].reason.as_deref(), Some("ErrImagePull"));
    let done = kubernetes::revert_with(&client, &r).await.expect("deleted");
    assert!(
        matches!(&done, Reverted::Restored(m) if m[0].contains("deleted Job load/drill-shards-20261206-101500-0a1b2")),
        "{done:?}"
    );
    calls.await.expect("exactly these calls");
    assert_eq!(
        r.manual_restore(),
        "kubectl -n load delete job drill-shards-20261206-101500-0a1b2 --cascade=background"
    );
}

/// `drill recover` after the engine died: the ledger's record finds the Job gone (its TTL,
/// or someone's kubectl) and says so without deleting anything; or finds it and deletes it.
#[tokio::test]
async fn recover_reads_whether_the_job_is_still_there_before_deleting_it() {
    let r = shard_job();
    let gone = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "jobs.batch not found"});
    let (client, calls) = scenario(vec![Call {
        method: "GET",
        uri: JOB,
        body: None,
        status: 404,
        reply: gone,
    }]);
    let done = kubernetes::revert_with(&client, &r).await.expect("settled");
    assert_eq!(done, Reverted::AlreadyRestored);
    calls.await.expect("one read, no delete");

    let (client, calls) = scenario(vec![
        call("GET", JOB, None, job_body()),
        call(
            "DELETE",
            JOB_DELETE,
            Some(json!({"propagationPolicy": "Background"})),
            job_body(),
        ),
    ]);
    let done = kubernetes::revert_with(&client, &r).await.expect("deleted");
    assert!(matches!(done, Reverted::Restored(_)), "{done:?}");
    calls.await.expect("read, then delete");
}
