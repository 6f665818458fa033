//! The shards of a distributed run as one `batch/v1` Job with `completionMode: Indexed`: pod
//! `k` runs `drill load --run RUN --shards N` with its shard index from
//! `JOB_COMPLETION_INDEX`. The Job is a change like a fault: written to the ledger before it
//! is created (its revert record is [`super::Action::ShardJob`]), deleted at the end of the
//! run, on abort, and by `drill recover` — which reads first whether it still exists.

use std::collections::BTreeMap;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy, WatchEvent, WatchParams};
use serde_json::json;

use crate::contract::{FaultError, Reverted};

/// The label every object of a run's shards carries: the run's id.
pub const RUN_LABEL: &str = "drill.dev/run";

/// What the Job is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardJobSpec {
    pub run_id: String,
    pub namespace: String,
    pub image: String,
    pub shards: u32,
    pub service_account: Option<String>,
    /// The store's URL in plain text, unless `store_secret` names a Secret key holding it.
    pub store_url: String,
    pub store_secret: Option<(String, String)>,
    /// The Job ends by then whatever its pods do (`activeDeadlineSeconds`).
    pub deadline_s: i64,
    /// A finished Job is deleted by Kubernetes this long after, even if drill is gone.
    pub ttl_s: i32,
}

/// The Job's name for a run (run ids are lowercase digits, dashes and hex: DNS-1123).
pub fn job_name(run_id: &str) -> String {
    let mut n = format!("drill-shards-{}", run_id.to_lowercase());
    n.truncate(63);
    n.trim_end_matches('-').to_owned()
}

/// The labels of the Job and its pods.
pub fn labels(run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "drill".into()),
        ("app.kubernetes.io/component".into(), "load-shard".into()),
        ("app.kubernetes.io/managed-by".into(), "drill".into()),
        (RUN_LABEL.into(), run_id.to_owned()),
    ])
}

/// The Job manifest.
pub fn manifest(s: &ShardJobSpec) -> serde_json::Value {
    let store = match &s.store_secret {
        Some((name, key)) => json!({
            "name": "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": name, "key": key}}
        }),
        None => json!({"name": "DATABASE_URL", "value": s.store_url}),
    };
    let labels = labels(&s.run_id);
    let mut pod_spec = json!({
        "restartPolicy": "Never",
        "containers": [{
            "name": "shard",
            "image": s.image,
            "args": ["load", "--run", s.run_id, "--shards", s.shards.to_string()],
            "env": [store],
        }],
    });
    if let Some(sa) = &s.service_account {
        pod_spec["serviceAccountName"] = json!(sa);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(&s.run_id),
            "namespace": s.namespace,
            "labels": labels,
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": s.shards,
            "parallelism": s.shards,
            // A shard's part of the schedule is bound to its time: a retried pod would send
            // it late. A failed pod is a failed shard, which the run reports.
            "backoffLimit": 0,
            "activeDeadlineSeconds": s.deadline_s,
            "ttlSecondsAfterFinished": s.ttl_s,
            "template": {
                "metadata": {"labels": labels},
                "spec": pod_spec,
            },
        },
    })
}

fn err(e: kube::Error) -> FaultError {
    FaultError::client("kubernetes", e)
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Creates the Job (the ledger holds its intent already). An existing Job of the same name
/// is this run's own: a retried apply finds it made.
pub async fn create(
    client: &Client,
    namespace: &str,
    manifest: &serde_json::Value,
) -> Result<(), FaultError> {
    let job: Job = serde_json::from_value(manifest.clone())
        .map_err(|e| FaultError::context("kubernetes", "the Job manifest", e))?;
    match Api::<Job>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &job)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// Deletes the Job and its pods, reading first whether it is still there.
pub async fn delete(client: &Client, namespace: &str, name: &str) -> Result<Reverted, FaultError> {
    let api = Api::<Job>::namespaced(client.clone(), namespace);
    match api.get(name).await {
        Ok(_) => {}
        Err(e) if is_gone(&e) => return Ok(Reverted::AlreadyRestored),
        Err(e) => return Err(err(e)),
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(Reverted::Restored(vec![format!(
            "deleted Job {namespace}/{name} and its pods"
        )])),
        Err(e) if is_gone(&e) => Ok(Reverted::AlreadyRestored),
        Err(e) => Err(err(e)),
    }
}

/// What a shard's pod is doing, as its watch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    pub pod: String,
    /// `JOB_COMPLETION_INDEX` of the pod (its shard).
    pub index: Option<u32>,
    /// `Pending`, `Running`, `Succeeded`, `Failed`.
    pub phase: String,
    /// Why a container is waiting or terminated (`ErrImagePull`, `OOMKilled`, …).
    pub reason: Option<String>,
}

fn pod_state(p: &Pod) -> PodState {
    let index = p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
        .and_then(|v| v.parse().ok());
    let status = p.status.as_ref();
    let reason = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|st| {
            st.waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .or_else(|| st.terminated.as_ref().and_then(|t| t.reason.clone()))
        });
    PodState {
        pod: p.metadata.name.clone().unwrap_or_default(),
        index,
        phase: status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into()),
        reason,
    }
}

/// Watches the run's shard pods and hands every change to `seen` until the watch ends
/// (its server-side timeout) or `seen` returns `false`.
pub async fn watch_pods(
    client: &Client,
    namespace: &str,
    run_id: &str,
    timeout_s: u32,
    mut seen: impl FnMut(PodState) -> bool,
) -> Result<(), FaultError> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let wp = WatchParams::default()
        .labels(&format!("{RUN_LABEL}={run_id}"))
        .timeout(timeout_s);
    let mut events = api.watch(&wp, "0").await.map_err(err)?.boxed();
    while let Some(ev) = events.try_next().await.map_err(err)? {
        let go_on = match ev {
            WatchEvent::Added(p) | WatchEvent::Modified(p) => seen(pod_state(&p)),
            WatchEvent::Deleted(_) | WatchEvent::Bookmark(_) => true,
            WatchEvent::Error(e) => {
                return Err(FaultError::backend(
                    "kubernetes",
                    format!("watching the shard pods: {}", e.message),
                ));
            }
        };
        if !go_on {
            break;
        }
    }
    Ok(())
}
