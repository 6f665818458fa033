//! A fault, typed: which backend does it, and an action that backend really performs.
//!
//! The playbook writes a fault flat (`action: stop`, `target: {docker: …}`, options beside),
//! which is what people read and what the schema describes. [`Fault::kind`] turns that into
//! a [`Kind`] — `Kind::Docker(target, DockerAction::Stop)` — through the one applicability
//! table, [`backends_for`]. Validation reports every way a fault misses the table, with its
//! location; the backends in `drill-faults` match on the typed action and never decide
//! again whether `stop` applies to a docker target.

use crate::model::{
    DockerTarget, Endpoint, ExecFault, Fault, FaultAction, FlushScope, HttpFault, KubernetesTarget,
    ProcessTarget, SqlFault, Step, TargetRef,
};

/// The systems a fault can touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    Docker,
    Kubernetes,
    Process,
    Redis,
    Sql,
    Http,
    Exec,
}

impl Backend {
    /// The backend's name: the target key in a playbook, and the ledger's `backend`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Docker => "docker",
            Backend::Kubernetes => "kubernetes",
            Backend::Process => "process",
            Backend::Redis => "redis",
            Backend::Sql => "sql",
            Backend::Http => "http",
            Backend::Exec => "exec",
        }
    }
}

impl TargetRef {
    pub fn backend_kind(&self) -> Backend {
        match self {
            TargetRef::Docker(_) => Backend::Docker,
            TargetRef::Kubernetes(_) => Backend::Kubernetes,
            TargetRef::Process(_) => Backend::Process,
            TargetRef::Redis(_) => Backend::Redis,
            TargetRef::Sql(_) => Backend::Sql,
            TargetRef::Http(_) => Backend::Http,
        }
    }
}

/// The applicability table: the targets each action applies to. Empty for the actions that
/// carry what they touch themselves (`exec`, `http`), which take no target.
pub fn backends_for(a: FaultAction) -> &'static [Backend] {
    use Backend as B;
    use FaultAction as A;
    match a {
        A::Stop => &[B::Docker, B::Kubernetes, B::Process],
        A::Pause | A::Kill => &[B::Docker, B::Process],
        // Kubernetes' rollout restart is not built yet: the table says so, and validation
        // refuses it, rather than preflight finding out.
        A::Restart => &[B::Docker],
        A::Scale | A::DeletePods => &[B::Kubernetes],
        A::Disconnect => &[B::Docker],
        A::Flush | A::ClientPause | A::ClientKill | A::DeleteKeys => &[B::Redis],
        A::Promote | A::Sql => &[B::Sql],
        A::Exec | A::Http => &[],
    }
}

/// What a Docker fault does to each container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerAction {
    Stop,
    Pause,
    Kill,
    Restart,
    Disconnect { network: String },
}

/// What a Kubernetes fault does to its workload or pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubernetesAction {
    /// Scale to 0.
    Stop,
    Scale {
        replicas: u32,
    },
    Restart,
    DeletePods,
}

/// The signal a process fault sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessAction {
    Stop,
    Pause,
    Kill,
}

/// What a Redis fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAction {
    Flush(FlushScope),
    ClientPause,
    ClientKill { client_type: String },
    DeleteKeys { pattern: String },
}

/// What a SQL fault does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SqlAction<'a> {
    /// Promote the replica, then run the route switch.
    Promote {
        route_switch: Option<&'a Step>,
    },
    Statements(&'a SqlFault),
}

/// A fault, typed by backend, borrowing from the playbook's [`Fault`].
#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'a> {
    Docker(&'a DockerTarget, DockerAction),
    Kubernetes(&'a KubernetesTarget, KubernetesAction),
    Process(&'a ProcessTarget, ProcessAction),
    Redis(&'a Endpoint, RedisAction),
    Sql(&'a Endpoint, SqlAction<'a>),
    Exec(&'a ExecFault),
    Http(&'a HttpFault),
}

impl Kind<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Kind::Docker(..) => Backend::Docker,
            Kind::Kubernetes(..) => Backend::Kubernetes,
            Kind::Process(..) => Backend::Process,
            Kind::Redis(..) => Backend::Redis,
            Kind::Sql(..) => Backend::Sql,
            Kind::Exec(_) => Backend::Exec,
            Kind::Http(_) => Backend::Http,
        }
    }
}

/// Why a fault does not fit the table; validation reports each case with its location and
/// a hint, so a validated fault never yields one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("{action} needs a target")]
    NoTarget { action: &'static str },
    #[error("a {action} fault takes no target")]
    TakesNoTarget { action: &'static str },
    #[error("{action} does not apply to a {backend} target")]
    NotApplicable {
        action: &'static str,
        backend: &'static str,
    },
    #[error("a {action} fault needs `{field}`")]
    Missing {
        action: &'static str,
        field: &'static str,
    },
}

impl Fault {
    /// The typed fault, through [`backends_for`].
    pub fn kind(&self) -> Result<Kind<'_>, ShapeError> {
        use FaultAction as A;
        let action = self.action.name();
        let missing = |field| ShapeError::Missing { action, field };
        match (self.action, &self.target) {
            (A::Exec, None) => return self.exec.as_ref().map(Kind::Exec).ok_or(missing("exec")),
            (A::Http, None) => return self.http.as_ref().map(Kind::Http).ok_or(missing("http")),
            (A::Exec | A::Http, Some(_)) => return Err(ShapeError::TakesNoTarget { action }),
            (_, None) => return Err(ShapeError::NoTarget { action }),
            (_, Some(t)) if !backends_for(self.action).contains(&t.backend_kind()) => {
                return Err(ShapeError::NotApplicable {
                    action,
                    backend: t.backend(),
                });
            }
            _ => {}
        }
        let Some(target) = &self.target else {
            return Err(ShapeError::NoTarget { action });
        };
        Ok(match (target, self.action) {
            (TargetRef::Docker(t), a) => Kind::Docker(
                t,
                match a {
                    A::Pause => DockerAction::Pause,
                    A::Kill => DockerAction::Kill,
                    A::Restart => DockerAction::Restart,
                    A::Disconnect => DockerAction::Disconnect {
                        network: self.network.clone().ok_or(missing("network"))?,
                    },
                    _ => DockerAction::Stop,
                },
            ),
            (TargetRef::Kubernetes(t), a) => Kind::Kubernetes(
                t,
                match a {
                    A::Scale => KubernetesAction::Scale {
                        replicas: self.replicas.unwrap_or(0),
                    },
                    A::DeletePods => KubernetesAction::DeletePods,
                    _ => KubernetesAction::Stop,
                },
            ),
            (TargetRef::Process(t), a) => Kind::Process(
                t,
                match a {
                    A::Pause => ProcessAction::Pause,
                    A::Kill => ProcessAction::Kill,
                    _ => ProcessAction::Stop,
                },
            ),
            (TargetRef::Redis(e), a) => Kind::Redis(
                e,
                match a {
                    A::ClientPause => RedisAction::ClientPause,
                    A::ClientKill => RedisAction::ClientKill {
                        client_type: self.client_type.clone().unwrap_or_else(|| "normal".into()),
                    },
                    A::DeleteKeys => RedisAction::DeleteKeys {
                        pattern: self.pattern.clone().ok_or(missing("pattern"))?,
                    },
                    _ => RedisAction::Flush(self.scope.unwrap_or(FlushScope::All)),
                },
            ),
            (TargetRef::Sql(e), A::Promote) => Kind::Sql(
                e,
                SqlAction::Promote {
                    route_switch: self.route_switch.as_ref(),
                },
            ),
            (TargetRef::Sql(e), _) => Kind::Sql(
                e,
                SqlAction::Statements(self.sql.as_ref().ok_or(missing("sql"))?),
            ),
            // Not in the table for any action: refused above.
            (TargetRef::Http(_), _) => {
                return Err(ShapeError::NotApplicable {
                    action,
                    backend: "http",
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(action: FaultAction, target: Option<TargetRef>) -> Fault {
        Fault {
            name: "f".into(),
            action,
            target,
            replicas: None,
            network: None,
            pattern: None,
            client_type: None,
            scope: None,
            route_switch: None,
            exec: None,
            sql: None,
            http: None,
            irreversible: false,
        }
    }

    #[test]
    fn every_action_applies_exactly_to_the_backends_of_the_table() {
        let docker = TargetRef::Docker(DockerTarget {
            name: Some("w".into()),
            ..DockerTarget::default()
        });
        let redis = TargetRef::Redis(Endpoint {
            url: "redis://h:6379".into(),
        });
        assert_eq!(
            fault(FaultAction::Stop, Some(docker.clone())).kind(),
            Ok(Kind::Docker(
                match &docker {
                    TargetRef::Docker(t) => t,
                    _ => unreachable!(),
                },
                DockerAction::Stop
            ))
        );
        assert_eq!(
            fault(FaultAction::Stop, Some(redis.clone())).kind(),
            Err(ShapeError::NotApplicable {
                action: "stop",
                backend: "redis"
            })
        );
        assert!(matches!(
            fault(FaultAction::Flush, Some(redis)).kind(),
            Ok(Kind::Redis(_, RedisAction::Flush(FlushScope::All)))
        ));
        assert_eq!(
            fault(FaultAction::Disconnect, Some(docker)).kind(),
            Err(ShapeError::Missing {
                action: "disconnect",
                field: "network"
            })
        );
        assert_eq!(
            fault(FaultAction::Promote, None).kind(),
            Err(ShapeError::NoTarget { action: "promote" })
        );
    }
}
