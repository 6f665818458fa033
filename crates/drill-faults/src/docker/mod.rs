//! Docker containers through the engine's API (bollard): stop/start, pause/unpause, kill
//! (started again afterwards if it was running), restart, disconnect/reconnect a network.
//! Targets by name, id, labels or compose service, limited by `max_targets` / `percent`.
//! Each container's state is read before the fault, and revert restores exactly that:
//! a container that was already stopped stays stopped.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use drill_spec::fault::DockerAction;
use drill_spec::model::{Allow, DockerTarget};
use drill_spec::target::{COMPOSE_SERVICE, Containers};
use serde::{Deserialize, Serialize};

use crate::contract::{FaultError, Prepared, Reverted, allowed};

/// What a Docker fault does: the validated action itself (one enum, its serde form the
/// record's).
pub use drill_spec::fault::DockerAction as Action;

/// One container as it was before the fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Before {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub paused: bool,
    pub networks: Vec<String>,
}

/// The containers and their states before the fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub action: Action,
    pub containers: Vec<Before>,
}

impl Record {
    pub(crate) fn manual_restore(&self) -> String {
        let cmds: Vec<String> = self
            .containers
            .iter()
            .filter_map(|c| match (&self.action, c.running, c.paused) {
                (Action::Pause, _, false) => Some(format!("docker unpause {}", c.name)),
                (Action::Disconnect { network }, ..) => {
                    Some(format!("docker network connect {network} {}", c.name))
                }
                (_, true, _) => Some(format!("docker start {}", c.name)),
                _ => None,
            })
            .collect();
        if cmds.is_empty() {
            "nothing: every container was already in this state".into()
        } else {
            cmds.join(" && ")
        }
    }
}

fn connect() -> Result<Docker, FaultError> {
    Docker::connect_with_local_defaults()
        .map_err(|e| FaultError::context("docker", "cannot reach the Docker engine", e))
}

fn err(e: DockerError) -> FaultError {
    FaultError::client("docker", e)
}

fn is_gone(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The containers a target names, in name order, before `max_targets`/`percent`.
async fn resolve(
    docker: &Docker,
    t: &DockerTarget,
) -> Result<Vec<(String, String, HashMap<String, String>)>, FaultError> {
    let (key, values) = match t.selector() {
        Some(Containers::Name(n)) => ("name", vec![n.to_owned()]),
        Some(Containers::Id(i)) => ("id", vec![i.to_owned()]),
        Some(Containers::Labels(l)) => ("label", l.to_vec()),
        Some(Containers::ComposeService(s)) => ("label", vec![format!("{COMPOSE_SERVICE}={s}")]),
        // Listing with no filter would select every container on the host.
        None => {
            return Err(FaultError::NotFound(
                "a docker target needs exactly one of name, id, labels, compose_service".into(),
            ));
        }
    };
    let filters: HashMap<&str, Vec<String>> = HashMap::from([(key, values)]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let list = docker.list_containers(Some(opts)).await.map_err(err)?;
    let mut found: Vec<(String, String, HashMap<String, String>)> = list
        .into_iter()
        .filter_map(|c| {
            let name = c
                .names
                .as_ref()?
                .first()?
                .trim_start_matches('/')
                .to_owned();
            Some((c.id?, name, c.labels.unwrap_or_default()))
        })
        // The engine's name filter matches substrings; a target name means that exact name.
        .filter(|(_, name, _)| t.name.as_ref().is_none_or(|n| n == name))
        .collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

fn limit(n: usize, t: &DockerTarget) -> usize {
    let mut k = n;
    if let Some(m) = t.max_targets {
        k = k.min(usize::try_from(m).unwrap_or(usize::MAX));
    }
    if let Some(p) = t.percent {
        k = k.min((n as f64 * p.fraction()).ceil() as usize);
    }
    k
}

pub(crate) async fn prepare(
    t: &DockerTarget,
    action: &DockerAction,
    allow: &Allow,
) -> Result<Prepared<Record>, FaultError> {
    // The selector itself must be allowed before the engine is asked anything.
    allowed(drill_spec::allow::docker(allow, t))?;
    let action = match action {
        DockerAction::Stop => Action::Stop,
        DockerAction::Pause => Action::Pause,
        DockerAction::Kill => Action::Kill,
        DockerAction::Restart => Action::Restart,
        DockerAction::Disconnect { network } => Action::Disconnect {
            network: network.clone(),
        },
    };
    let docker = connect()?;
    let found = resolve(&docker, t).await?;
    if found.is_empty() {
        return Err(FaultError::NotFound(format!("no container matches {t:?}")));
    }
    let k = limit(found.len(), t);
    let mut containers = Vec::new();
    let mut changes = Vec::new();
    for (id, name, labels) in found.into_iter().take(k) {
        // What the selector resolved to must be allowed too (a label can match more than meant).
        let by_name = drill_spec::allow::docker(
            allow,
            &DockerTarget {
                name: Some(name.clone()),
                ..DockerTarget::default()
            },
        );
        let by_labels = drill_spec::allow::docker(
            allow,
            &DockerTarget {
                labels: labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                ..DockerTarget::default()
            },
        );
        if by_name.is_err() && by_labels.is_err() {
            allowed(by_name)?;
        }
        let info = docker
            .inspect_container(&id, Some(InspectContainerOptions::default()))
            .await
            .map_err(err)?;
        let state = info.state.unwrap_or_default();
        let before = Before {
            id: id.clone(),
            name: name.clone(),
            running: state.running.unwrap_or(false),
            paused: state.paused.unwrap_or(false),
            networks: info
                .network_settings
                .and_then(|n| n.networks)
                .map(|n| n.into_keys().collect())
                .unwrap_or_default(),
        };
        let change = match (&action, before.running, before.paused) {
            (Action::Disconnect { network }, ..) if !before.networks.contains(network) => {
                format!("{name} is not on {network}: nothing to disconnect")
            }
            (Action::Disconnect { network }, ..) => {
                format!("disconnect {name} from {network}, reconnect after")
            }
            (_, false, _) => format!("{name} is not running: left as it is"),
            (Action::Pause, _, true) => format!("{name} is already paused: left as it is"),
            (Action::Stop, ..) => format!("stop {name}, start it after"),
            (Action::Pause, ..) => format!("pause {name}, unpause it after"),
            (Action::Kill, ..) => format!("kill {name}, start it after"),
            (Action::Restart, ..) => format!("restart {name}"),
        };
        changes.push(change);
        containers.push(before);
    }
    Ok(Prepared {
        record: Record { action, containers },
        changes,
    })
}

pub(crate) async fn apply(r: &Record) -> Result<(), FaultError> {
    let docker = connect()?;
    for c in &r.containers {
        let res = match (&r.action, c.running, c.paused) {
            (Action::Disconnect { network }, ..) if c.networks.contains(network) => {
                docker
                    .disconnect_network(
                        network,
                        NetworkDisconnectRequest {
                            container: c.id.clone(),
                            force: Some(true),
                        },
                    )
                    .await
            }
            (Action::Disconnect { .. }, ..) | (_, false, _) | (Action::Pause, _, true) => Ok(()),
            (Action::Stop, ..) => {
                docker
                    .stop_container(
                        &c.id,
                        None::<bollard::query_parameters::StopContainerOptions>,
                    )
                    .await
            }
            (Action::Pause, ..) => docker.pause_container(&c.id).await,
            (Action::Kill, ..) => {
                docker
                    .kill_container(
                        &c.id,
                        None::<bollard::query_parameters::KillContainerOptions>,
                    )
                    .await
            }
            (Action::Restart, ..) => {
                docker
                    .restart_container(
                        &c.id,
                        None::<bollard::query_parameters::RestartContainerOptions>,
                    )
                    .await
            }
        };
        res.map_err(err)?;
    }
    Ok(())
}

pub(crate) async fn revert(r: &Record) -> Result<Reverted, FaultError> {
    let docker = connect()?;
    let mut done = Vec::new();
    for c in &r.containers {
        let now = match docker
            .inspect_container(&c.id, Some(InspectContainerOptions::default()))
            .await
        {
            Ok(i) => i,
            Err(e) if is_gone(&e) => continue,
            Err(e) => return Err(err(e)),
        };
        let state = now.state.unwrap_or_default();
        let (running, paused) = (
            state.running.unwrap_or(false),
            state.paused.unwrap_or(false),
        );
        let networks: Vec<String> = now
            .network_settings
            .and_then(|n| n.networks)
            .map(|n| n.into_keys().collect())
            .unwrap_or_default();
        match &r.action {
            Action::Disconnect { network } => {
                if c.networks.contains(network) && !networks.contains(network) {
                    docker
                        .connect_network(
                            network,
                            NetworkConnectRequest {
                                container: c.id.clone(),
                                endpoint_config: None,
                            },
                        )
                        .await
                        .map_err(err)?;
                    done.push(format!("reconnected {} to {network}", c.name));
                }
            }
            Action::Pause => {
                if paused && !c.paused {
                    docker.unpause_container(&c.id).await.map_err(err)?;
                    done.push(format!("unpaused {}", c.name));
                }
            }
            Action::Stop | Action::Kill | Action::Restart => {
                if c.running && !running {
                    docker
                        .start_container(
                            &c.id,
                            None::<bollard::query_parameters::StartContainerOptions>,
                        )
                        .await
                        .map_err(err)?;
                    done.push(format!("started {}", c.name));
                }
            }
        }
    }
    Ok(if done.is_empty() {
        Reverted::AlreadyRestored
    } else {
        Reverted::Restored(done)
    })
}

/// The number of running containers the target matches.
pub(crate) async fn probe(t: &DockerTarget, allow: &Allow) -> Result<f64, FaultError> {
    allowed(drill_spec::allow::docker(allow, t))?;
    let docker = connect()?;
    let mut running = 0u32;
    for (id, ..) in resolve(&docker, t).await? {
        let info = docker
            .inspect_container(&id, Some(InspectContainerOptions::default()))
            .await
            .map_err(err)?;
        let s = info.state.unwrap_or_default();
        if s.running.unwrap_or(false) && !s.paused.unwrap_or(false) {
            running += 1;
        }
    }
    Ok(f64::from(running))
}
