//! A fault, typed: which backend does it, and an action that backend really performs.
//!
//! The playbook writes a fault flat (`action: stop`, `target: {docker: …}`, options beside),
//! which is what people read and what the schema describes. Validation turns that into a
//! [`ValidFault`] whose [`Kind`] — `Kind::Docker { target, action: DockerAction::Stop }` —
//! holds each variant's own fields only, by one exhaustive match that the applicability
//! table, [`backends_for`], is held to. Validation reports every way a fault misses the table, with its
//! location; the backends in `drill-faults` match on the typed action and never decide
//! again whether `stop` applies to a docker target.

use serde::{Deserialize, Serialize};

use crate::call::{OneOf, ValidStep};

use crate::model::{
    DockerTarget, Endpoint, ExecFault, Fault, FaultAction, FlushScope, HttpFault, KubernetesTarget,
    ProcessTarget, SqlFault, TargetRef,
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

/// What a Docker fault does to each container. (Also the revert record's action, so its
/// serde form is the ledger's.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
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
    DeletePods,
}

/// The signal a process fault sends. (Also the revert record's action.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessAction {
    Pause,
    Stop,
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
#[derive(Debug, Clone, PartialEq)]
pub enum SqlAction {
    /// Promote the replica, then run the route switch.
    Promote {
        route_switch: Option<Box<ValidStep>>,
    },
    /// Statements, and the ones that undo them.
    Statements(SqlFault),
}

/// What a fault does, to what: each variant holds its own fields and nothing else (a Redis
/// flush has a scope, a Docker disconnect a network). Made once, by validation
/// ([`ValidFault::try_from`]); the backends match on it and never decide again.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Docker {
        target: DockerTarget,
        action: DockerAction,
    },
    Kubernetes {
        target: KubernetesTarget,
        action: KubernetesAction,
    },
    Process {
        target: ProcessTarget,
        action: ProcessAction,
    },
    Redis {
        endpoint: Endpoint,
        action: RedisAction,
    },
    Sql {
        endpoint: Endpoint,
        action: SqlAction,
    },
    Exec(ExecFault),
    Http(HttpFault),
}

impl Kind {
    pub fn backend(&self) -> Backend {
        match self {
            Kind::Docker { .. } => Backend::Docker,
            Kind::Kubernetes { .. } => Backend::Kubernetes,
            Kind::Process { .. } => Backend::Process,
            Kind::Redis { .. } => Backend::Redis,
            Kind::Sql { .. } => Backend::Sql,
            Kind::Exec(_) => Backend::Exec,
            Kind::Http(_) => Backend::Http,
        }
    }

    /// The action as a playbook spells it.
    pub fn action(&self) -> FaultAction {
        use FaultAction as A;
        match self {
            Kind::Docker { action, .. } => match action {
                DockerAction::Stop => A::Stop,
                DockerAction::Pause => A::Pause,
                DockerAction::Kill => A::Kill,
                DockerAction::Restart => A::Restart,
                DockerAction::Disconnect { .. } => A::Disconnect,
            },
            Kind::Kubernetes { action, .. } => match action {
                KubernetesAction::Stop => A::Stop,
                KubernetesAction::Scale { .. } => A::Scale,
                KubernetesAction::DeletePods => A::DeletePods,
            },
            Kind::Process { action, .. } => match action {
                ProcessAction::Stop => A::Stop,
                ProcessAction::Pause => A::Pause,
                ProcessAction::Kill => A::Kill,
            },
            Kind::Redis { action, .. } => match action {
                RedisAction::Flush(_) => A::Flush,
                RedisAction::ClientPause => A::ClientPause,
                RedisAction::ClientKill { .. } => A::ClientKill,
                RedisAction::DeleteKeys { .. } => A::DeleteKeys,
            },
            Kind::Sql { action, .. } => match action {
                SqlAction::Promote { .. } => A::Promote,
                SqlAction::Statements(_) => A::Sql,
            },
            Kind::Exec(_) => A::Exec,
            Kind::Http(_) => A::Http,
        }
    }
}

/// A fault that passed validation: its name, what it does ([`Kind`]), and whether the
/// playbook acknowledged it cannot be undone. What `ValidPlaybook`'s drills hold; a raw
/// [`Fault`] deserializes into it through the same rules (`#[serde(try_from)]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Fault")]
pub struct ValidFault {
    pub name: String,
    pub kind: Kind,
    pub irreversible: bool,
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
    #[error("route_switch: {0}")]
    RouteSwitch(#[from] OneOf),
}

impl TryFrom<&Fault> for ValidFault {
    type Error = ShapeError;

    /// The typed fault: one arm per (action, backend) pair of [`backends_for`] — a test holds
    /// the two to each other — and every other pair refused, never guessed.
    fn try_from(f: &Fault) -> Result<Self, ShapeError> {
        use FaultAction as A;
        use TargetRef as T;
        let action = f.action.name();
        let missing = |field| ShapeError::Missing { action, field };
        let docker = |t: &DockerTarget, action| Kind::Docker {
            target: t.clone(),
            action,
        };
        let process = |t: &ProcessTarget, action| Kind::Process {
            target: t.clone(),
            action,
        };
        let kube = |t: &KubernetesTarget, action| Kind::Kubernetes {
            target: t.clone(),
            action,
        };
        let redis = |e: &Endpoint, action| Kind::Redis {
            endpoint: e.clone(),
            action,
        };
        let kind = match (f.action, &f.target) {
            (A::Stop, Some(T::Docker(t))) => docker(t, DockerAction::Stop),
            (A::Pause, Some(T::Docker(t))) => docker(t, DockerAction::Pause),
            (A::Kill, Some(T::Docker(t))) => docker(t, DockerAction::Kill),
            (A::Restart, Some(T::Docker(t))) => docker(t, DockerAction::Restart),
            (A::Disconnect, Some(T::Docker(t))) => docker(
                t,
                DockerAction::Disconnect {
                    network: f.network.clone().ok_or(missing("network"))?,
                },
            ),
            (A::Stop, Some(T::Kubernetes(t))) => kube(t, KubernetesAction::Stop),
            (A::Scale, Some(T::Kubernetes(t))) => kube(
                t,
                KubernetesAction::Scale {
                    replicas: f.replicas.unwrap_or(0),
                },
            ),
            (A::DeletePods, Some(T::Kubernetes(t))) => kube(t, KubernetesAction::DeletePods),
            (A::Stop, Some(T::Process(t))) => process(t, ProcessAction::Stop),
            (A::Pause, Some(T::Process(t))) => process(t, ProcessAction::Pause),
            (A::Kill, Some(T::Process(t))) => process(t, ProcessAction::Kill),
            (A::Flush, Some(T::Redis(e))) => {
                redis(e, RedisAction::Flush(f.scope.unwrap_or(FlushScope::All)))
            }
            (A::ClientPause, Some(T::Redis(e))) => redis(e, RedisAction::ClientPause),
            (A::ClientKill, Some(T::Redis(e))) => redis(
                e,
                RedisAction::ClientKill {
                    client_type: f.client_type.clone().unwrap_or_else(|| "normal".into()),
                },
            ),
            (A::DeleteKeys, Some(T::Redis(e))) => redis(
                e,
                RedisAction::DeleteKeys {
                    pattern: f.pattern.clone().ok_or(missing("pattern"))?,
                },
            ),
            (A::Promote, Some(T::Sql(e))) => Kind::Sql {
                endpoint: e.clone(),
                action: SqlAction::Promote {
                    route_switch: match f.route_switch.clone() {
                        Some(s) => Some(Box::new(ValidStep::try_from(s)?)),
                        None => None,
                    },
                },
            },
            (A::Sql, Some(T::Sql(e))) => Kind::Sql {
                endpoint: e.clone(),
                action: SqlAction::Statements(f.sql.clone().ok_or(missing("sql"))?),
            },
            (A::Exec, None) => Kind::Exec(f.exec.clone().ok_or(missing("exec"))?),
            (A::Http, None) => Kind::Http(f.http.clone().ok_or(missing("http"))?),
            (A::Exec | A::Http, Some(_)) => return Err(ShapeError::TakesNoTarget { action }),
            (_, None) => return Err(ShapeError::NoTarget { action }),
            (_, Some(t)) => {
                return Err(ShapeError::NotApplicable {
                    action,
                    backend: t.backend(),
                });
            }
        };
        Ok(ValidFault {
            name: f.name.clone(),
            kind,
            irreversible: f.irreversible,
        })
    }
}

impl TryFrom<Fault> for ValidFault {
    type Error = ShapeError;
    fn try_from(f: Fault) -> Result<Self, ShapeError> {
        ValidFault::try_from(&f)
    }
}

impl ValidFault {
    /// The action as a playbook spells it.
    pub fn action(&self) -> FaultAction {
        self.kind.action()
    }

    pub fn backend(&self) -> Backend {
        self.kind.backend()
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
            network: Some("n".into()),
            pattern: Some("p*".into()),
            client_type: None,
            scope: None,
            route_switch: None,
            exec: Some(ExecFault {
                inject: crate::model::Exec {
                    command: vec!["true".into()],
                    env: Default::default(),
                    dir: None,
                    timeout: crate::units::Dur::from_secs(1),
                },
                revert: None,
            }),
            sql: Some(SqlFault {
                inject: "select 1".into(),
                revert: None,
            }),
            http: Some(HttpFault {
                inject: serde_json::from_value(serde_json::json!({"url": "http://h/"}))
                    .expect("call"),
                revert: None,
            }),
            irreversible: false,
        }
    }

    const ACTIONS: [FaultAction; 15] = [
        FaultAction::Stop,
        FaultAction::Pause,
        FaultAction::Kill,
        FaultAction::Restart,
        FaultAction::Scale,
        FaultAction::DeletePods,
        FaultAction::Disconnect,
        FaultAction::Flush,
        FaultAction::ClientPause,
        FaultAction::ClientKill,
        FaultAction::DeleteKeys,
        FaultAction::Promote,
        FaultAction::Sql,
        FaultAction::Exec,
        FaultAction::Http,
    ];

    fn targets() -> Vec<TargetRef> {
        let e = |u: &str| Endpoint { url: u.into() };
        vec![
            TargetRef::Docker(DockerTarget {
                name: Some("w".into()),
                ..DockerTarget::default()
            }),
            TargetRef::Kubernetes(KubernetesTarget {
                namespace: "n".into(),
                deployment: Some("d".into()),
                ..KubernetesTarget::default()
            }),
            TargetRef::Process(ProcessTarget {
                name: Some("p".into()),
                ..ProcessTarget::default()
            }),
            TargetRef::Redis(e("redis://h:6379")),
            TargetRef::Sql(e("postgres://h/db")),
            TargetRef::Http(e("http://h/")),
        ]
    }

    #[test]
    fn the_typed_fault_and_the_table_agree_on_every_action_and_target() {
        for a in ACTIONS {
            for t in targets() {
                let b = t.backend_kind();
                let typed = ValidFault::try_from(&fault(a, Some(t)));
                let in_table = backends_for(a).contains(&b);
                assert_eq!(
                    typed.is_ok(),
                    in_table,
                    "{} on {}: {typed:?}",
                    a.name(),
                    b.name()
                );
                if let Ok(v) = typed {
                    assert_eq!(v.action(), a, "the action round-trips");
                    assert_eq!(v.backend(), b);
                }
            }
            let untargeted = ValidFault::try_from(&fault(a, None));
            assert_eq!(
                untargeted.is_ok(),
                backends_for(a).is_empty(),
                "{} without a target: {untargeted:?}",
                a.name()
            );
        }
    }

    #[test]
    fn a_variant_holds_its_own_fields_and_a_missing_one_is_named() {
        let redis = TargetRef::Redis(Endpoint {
            url: "redis://h:6379".into(),
        });
        assert!(matches!(
            ValidFault::try_from(&fault(FaultAction::Flush, Some(redis))).map(|v| v.kind),
            Ok(Kind::Redis {
                action: RedisAction::Flush(FlushScope::All),
                ..
            })
        ));
        let mut f = fault(FaultAction::Disconnect, Some(targets().remove(0)));
        f.network = None;
        assert_eq!(
            ValidFault::try_from(&f),
            Err(ShapeError::Missing {
                action: "disconnect",
                field: "network"
            })
        );
    }
}
