//! Kubernetes through kube: scale a Deployment or StatefulSet (the original replica count is
//! kept in the revert record *and* as the annotation `drill.dev/original-replicas` on the
//! object, so anyone can restore it), delete pods by label selector with a count/percent
//! limit (the controller recreates them; revert waits until as many are ready as before),
//! and probes for ready replicas and ready pods; and the Indexed Job that runs a
//! distributed run's load shards ([`job`]), recorded and reverted like a fault.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use drill_spec::fault::KubernetesAction;
use drill_spec::fault::ValidFault;
use drill_spec::model::{Allow, KubernetesTarget};
use drill_spec::target::Workload;

use crate::contract::{FaultError, Prepared, Reverted, allowed};

pub mod job;

/// Every permission the calls of this module need: (API group, resource, verbs). The Helm
/// chart's Role grants exactly these (`charts/drill/templates/rbac.yaml`, checked by
/// `crates/drill-cli/tests/chart.rs`), and the tower_test mock refuses any call outside
/// them (`crates/drill-faults/tests/kubernetes.rs`).
pub const RBAC: &[(&str, &str, &[&str])] = &[
    ("apps", "deployments", &["get", "patch"]),
    ("apps", "statefulsets", &["get", "patch"]),
    ("", "pods", &["list", "watch", "delete"]),
    ("batch", "jobs", &["get", "create", "delete"]),
];

/// The annotation that keeps a scaled workload's original replica count on the object.
pub const ORIGINAL_REPLICAS: &str = "drill.dev/original-replicas";

/// A scalable workload kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deployment,
    StatefulSet,
}

/// What the fault does, with the state before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    Scale {
        workload: Kind,
        name: String,
        original: i32,
        to: i32,
    },
    DeletePods {
        selector: String,
        pods: Vec<String>,
        ready_before: u32,
    },
    /// The Indexed Job of a distributed run's load shards ([`job::manifest`]).
    ShardJob {
        name: String,
        manifest: serde_json::Value,
    },
}

/// The workload or pods and their state before the fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub context: Option<String>,
    pub namespace: String,
    pub action: Action,
}

impl Record {
    pub fn manual_restore(&self) -> String {
        let ctx = self
            .context
            .as_deref()
            .map(|c| format!(" --context {c}"))
            .unwrap_or_default();
        match &self.action {
            Action::Scale {
                workload,
                name,
                original,
                ..
            } => {
                let k = match workload {
                    Kind::Deployment => "deployment",
                    Kind::StatefulSet => "statefulset",
                };
                format!(
                    "kubectl{ctx} -n {} scale {k}/{name} --replicas={original} && kubectl{ctx} -n {} annotate {k}/{name} {ORIGINAL_REPLICAS}-",
                    self.namespace, self.namespace
                )
            }
            Action::DeletePods { selector, .. } => format!(
                "kubectl{ctx} -n {} get pods -l {selector} (the controller recreates them)",
                self.namespace
            ),
            Action::ShardJob { name, .. } => format!(
                "kubectl{ctx} -n {} delete job {name} --cascade=background",
                self.namespace
            ),
        }
    }
}

/// A client for a kubeconfig context (or the default / in-cluster configuration).
pub async fn client(context: Option<&str>) -> Result<Client, FaultError> {
    let opts = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match kube::Config::from_kubeconfig(&opts).await {
        Ok(c) => c,
        Err(_) if context.is_none() => kube::Config::incluster().map_err(|e| {
            FaultError::context("kubernetes", "no kubeconfig and not in a cluster", e)
        })?,
        Err(e) => {
            return Err(FaultError::context(
                "kubernetes",
                format!("context {}", context.unwrap_or_default()),
                e,
            ));
        }
    };
    Client::try_from(config).map_err(|e| FaultError::client("kubernetes", e))
}

fn err(e: kube::Error) -> FaultError {
    FaultError::client("kubernetes", e)
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Reads `spec.replicas` and the annotation of a workload.
async fn read_scale(
    client: &Client,
    ns: &str,
    kind: Kind,
    name: &str,
) -> Result<(i32, Option<i32>), kube::Error> {
    let (replicas, annotations) = match kind {
        Kind::Deployment => {
            let d = Api::<Deployment>::namespaced(client.clone(), ns)
                .get(name)
                .await?;
            (
                d.spec.and_then(|s| s.replicas).unwrap_or(1),
                d.metadata.annotations,
            )
        }
        Kind::StatefulSet => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get(name)
                .await?;
            (
                s.spec.and_then(|s| s.replicas).unwrap_or(1),
                s.metadata.annotations,
            )
        }
    };
    let original = annotations.and_then(|a| a.get(ORIGINAL_REPLICAS).and_then(|v| v.parse().ok()));
    Ok((replicas, original))
}

async fn patch(
    client: &Client,
    ns: &str,
    kind: Kind,
    name: &str,
    body: serde_json::Value,
) -> Result<(), kube::Error> {
    let pp = PatchParams::default();
    match kind {
        Kind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
            .patch(name, &pp, &Patch::Merge(&body))
            .await
            .map(|_| ()),
        Kind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .patch(name, &pp, &Patch::Merge(&body))
            .await
            .map(|_| ()),
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn ready_pods(
    client: &Client,
    ns: &str,
    selector: &str,
) -> Result<(u32, Vec<String>), kube::Error> {
    let list = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await?;
    let mut names: Vec<String> = list
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    let ready = list.items.iter().filter(|p| is_ready(p)).count();
    Ok((u32::try_from(ready).unwrap_or(u32::MAX), names))
}

/// Preflight with a given client: allow-list first, then reads. No mutating call.
pub async fn prepare_with(
    client: &Client,
    fault: &ValidFault,
    allow: &Allow,
) -> Result<Prepared<Record>, FaultError> {
    let drill_spec::fault::Kind::Kubernetes { target: t, action } = &fault.kind else {
        return Err(FaultError::Invalid {
            fault: fault.name.clone(),
            message: format!("{} is not a kubernetes fault", fault.action().name()),
        });
    };
    let typed = *action;
    allowed(drill_spec::allow::kubernetes(allow, t))?;
    let ns = t.namespace.clone();
    let (workload, pods) = match t.workload() {
        Some(Workload::Deployment(d)) => (Some((Kind::Deployment, d.to_owned())), None),
        Some(Workload::StatefulSet(s)) => (Some((Kind::StatefulSet, s.to_owned())), None),
        Some(Workload::Pods(p)) => (None, Some(p.to_owned())),
        None => (None, None),
    };
    let (action, change) = match (typed, workload, &pods) {
        (KubernetesAction::Stop | KubernetesAction::Scale { .. }, Some((kind, name)), _) => {
            let (replicas, annotated) =
                read_scale(client, &ns, kind, &name).await.map_err(|e| {
                    if is_gone(&e) {
                        FaultError::NotFound(format!("{kind:?} {ns}/{name}"))
                    } else {
                        err(e)
                    }
                })?;
            // A count left on the object by an earlier run that did not finish is the real original.
            let original = annotated.unwrap_or(replicas);
            let to = match typed {
                KubernetesAction::Scale { replicas } => i32::try_from(replicas).unwrap_or(i32::MAX),
                KubernetesAction::Stop | KubernetesAction::DeletePods => 0,
            };
            let change = format!("scale {kind:?} {ns}/{name} from {original} to {to} replicas (annotated {ORIGINAL_REPLICAS}={original}), back to {original} after").to_lowercase();
            (
                Action::Scale {
                    workload: kind,
                    name,
                    original,
                    to,
                },
                change,
            )
        }
        (KubernetesAction::DeletePods, _, Some(selector)) => {
            let (ready_before, names) = ready_pods(client, &ns, selector).await.map_err(err)?;
            if names.is_empty() {
                return Err(FaultError::NotFound(format!(
                    "no pods match {selector} in {ns}"
                )));
            }
            let mut k = names.len();
            if let Some(c) = t.count {
                k = k.min(usize::try_from(c).unwrap_or(usize::MAX));
            }
            if let Some(p) = t.percent {
                k = k.min((names.len() as f64 * p.fraction()).ceil() as usize);
            }
            let pods: Vec<String> = names.into_iter().take(k).collect();
            let change = format!(
                "delete pods {} in {ns} (the controller recreates them; revert waits for {ready_before} ready)",
                pods.join(", ")
            );
            (
                Action::DeletePods {
                    selector: selector.clone(),
                    pods,
                    ready_before,
                },
                change,
            )
        }
        // The target's shape, not the table: validation asks for a workload for stop and
        // scale, and for a pods selector for delete-pods.
        _ => {
            return Err(FaultError::Invalid {
                fault: fault.name.clone(),
                message: format!(
                    "{} needs {} on its kubernetes target",
                    fault.action().name(),
                    if typed == KubernetesAction::DeletePods {
                        "a pods selector"
                    } else {
                        "a deployment or statefulset"
                    }
                ),
            });
        }
    };
    Ok(Prepared {
        record: Record {
            context: t.context.clone(),
            namespace: ns,
            action,
        },
        changes: vec![change],
    })
}

/// Performs the mutation with a given client.
pub async fn apply_with(client: &Client, r: &Record) -> Result<(), FaultError> {
    match &r.action {
        Action::Scale {
            workload,
            name,
            original,
            to,
        } => {
            // One merge patch sets the annotation and the count together.
            let body = json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: original.to_string()}}, "spec": {"replicas": to}});
            patch(client, &r.namespace, *workload, name, body)
                .await
                .map_err(err)
        }
        Action::DeletePods { pods, .. } => {
            let api = Api::<Pod>::namespaced(client.clone(), &r.namespace);
            for p in pods {
                match api.delete(p, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Ok(())
        }
        Action::ShardJob { manifest, .. } => job::create(client, &r.namespace, manifest).await,
    }
}

/// Restores with a given client, from the record alone.
pub async fn revert_with(client: &Client, r: &Record) -> Result<Reverted, FaultError> {
    match &r.action {
        Action::Scale {
            workload,
            name,
            original,
            ..
        } => {
            let (replicas, annotated) =
                match read_scale(client, &r.namespace, *workload, name).await {
                    Ok(v) => v,
                    Err(e) if is_gone(&e) => return Ok(Reverted::AlreadyRestored),
                    Err(e) => return Err(err(e)),
                };
            if replicas == *original && annotated.is_none() {
                return Ok(Reverted::AlreadyRestored);
            }
            let body = json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: null}}, "spec": {"replicas": original}});
            patch(client, &r.namespace, *workload, name, body)
                .await
                .map_err(err)?;
            Ok(Reverted::Restored(vec![format!(
                "scaled {}/{name} back to {original}",
                r.namespace
            )]))
        }
        Action::DeletePods {
            selector,
            ready_before,
            ..
        } => {
            let (ready, _) = ready_pods(client, &r.namespace, selector)
                .await
                .map_err(err)?;
            if ready >= *ready_before {
                Ok(Reverted::AlreadyRestored)
            } else {
                Err(FaultError::backend(
                    "kubernetes",
                    format!(
                        "{ready} of {ready_before} pods matching {selector} are ready again; the controller is still recreating them"
                    ),
                ))
            }
        }
        Action::ShardJob { name, .. } => job::delete(client, &r.namespace, name).await,
    }
}

/// Restores a workload from its annotation alone (no record): what anyone finding a
/// `drill.dev/original-replicas` annotation can do.
pub async fn restore_from_annotation(
    client: &Client,
    ns: &str,
    kind: Kind,
    name: &str,
) -> Result<Reverted, FaultError> {
    let (_, annotated) = read_scale(client, ns, kind, name).await.map_err(err)?;
    let Some(original) = annotated else {
        return Ok(Reverted::AlreadyRestored);
    };
    let body = json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: null}}, "spec": {"replicas": original}});
    patch(client, ns, kind, name, body).await.map_err(err)?;
    Ok(Reverted::Restored(vec![format!(
        "scaled {ns}/{name} back to {original}"
    )]))
}

/// Ready replicas of a workload, or ready pods matching a selector.
pub async fn probe_with(
    client: &Client,
    t: &KubernetesTarget,
    allow: &Allow,
) -> Result<f64, FaultError> {
    allowed(drill_spec::allow::kubernetes(allow, t))?;
    let ns = &t.namespace;
    let ready = match t.workload() {
        Some(Workload::Deployment(d)) => Api::<Deployment>::namespaced(client.clone(), ns)
            .get(d)
            .await
            .map_err(err)?
            .status
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        Some(Workload::StatefulSet(s)) => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get(s)
            .await
            .map_err(err)?
            .status
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        Some(Workload::Pods(selector)) => {
            let (ready, _) = ready_pods(client, ns, selector).await.map_err(err)?;
            i32::try_from(ready).unwrap_or(i32::MAX)
        }
        // The allow-list refused it above; an empty selector would read every pod.
        None => {
            return Err(FaultError::NotFound(
                "a kubernetes target needs exactly one of deployment, statefulset, pods".into(),
            ));
        }
    };
    Ok(f64::from(ready))
}
