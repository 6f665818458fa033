//! What a target selects, decided once: a Docker target's containers, a Kubernetes target's
//! workload, a process target's process — each the one-of of its struct's optional fields,
//! which validation, the allow-lists, the backends and the plan all match on.
//!
//! Validation refuses a target that sets none or several (with its location and a hint), so
//! the selector of a valid target is always `Some`; `None` is a target that never passed
//! validation, and every caller refuses it (fails closed) rather than guessing.

use crate::model::{DockerTarget, KubernetesTarget, ProcessTarget};

/// The containers a Docker target selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containers<'a> {
    Name(&'a str),
    Id(&'a str),
    /// Every one of these `key=value` labels.
    Labels(&'a [String]),
    /// The `com.docker.compose.service` label.
    ComposeService(&'a str),
}

/// The label Docker Compose puts on a service's containers.
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";

impl DockerTarget {
    /// The one selector set, or `None` when none or several are.
    pub fn selector(&self) -> Option<Containers<'_>> {
        let mut set = Vec::new();
        if let Some(n) = &self.name {
            set.push(Containers::Name(n));
        }
        if let Some(i) = &self.id {
            set.push(Containers::Id(i));
        }
        if !self.labels.is_empty() {
            set.push(Containers::Labels(&self.labels));
        }
        if let Some(s) = &self.compose_service {
            set.push(Containers::ComposeService(s));
        }
        one(set)
    }
}

/// What a Kubernetes target selects in its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload<'a> {
    Deployment(&'a str),
    StatefulSet(&'a str),
    /// Pods by label selector (`app=horizon`).
    Pods(&'a str),
}

impl Workload<'_> {
    /// As the allow-list's `workloads` spell it: `deployment/horizon`, `pods/app=horizon`.
    pub fn listed(&self) -> String {
        match self {
            Workload::Deployment(d) => format!("deployment/{d}"),
            Workload::StatefulSet(s) => format!("statefulset/{s}"),
            Workload::Pods(p) => format!("pods/{p}"),
        }
    }
}

impl KubernetesTarget {
    /// The one workload set, or `None` when none or several are.
    pub fn workload(&self) -> Option<Workload<'_>> {
        let mut set = Vec::new();
        if let Some(d) = &self.deployment {
            set.push(Workload::Deployment(d));
        }
        if let Some(s) = &self.statefulset {
            set.push(Workload::StatefulSet(s));
        }
        if let Some(p) = &self.pods {
            set.push(Workload::Pods(p));
        }
        one(set)
    }
}

/// How a process target finds its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessBy<'a> {
    /// The oldest process with this name.
    Name(&'a str),
    /// The pid a file holds.
    PidFile(&'a str),
}

impl<'a> ProcessBy<'a> {
    /// The name or the pid file, as the allow-list's `processes` match it.
    pub fn id(self) -> &'a str {
        match self {
            ProcessBy::Name(s) | ProcessBy::PidFile(s) => s,
        }
    }
}

impl ProcessTarget {
    /// The one way set, or `None` when none or both are.
    pub fn by(&self) -> Option<ProcessBy<'_>> {
        let mut set = Vec::new();
        if let Some(n) = &self.name {
            set.push(ProcessBy::Name(n));
        }
        if let Some(f) = &self.pid_file {
            set.push(ProcessBy::PidFile(f));
        }
        one(set)
    }
}

fn one<T>(set: Vec<T>) -> Option<T> {
    let mut it = set.into_iter();
    match (it.next(), it.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_selects_the_one_thing_it_sets_and_nothing_when_it_sets_two() {
        let d = DockerTarget {
            labels: vec!["app=worker".into()],
            ..DockerTarget::default()
        };
        assert_eq!(
            d.selector(),
            Some(Containers::Labels(&["app=worker".to_owned()]))
        );
        let two = DockerTarget {
            name: Some("a".into()),
            compose_service: Some("b".into()),
            ..DockerTarget::default()
        };
        assert_eq!(two.selector(), None);
        assert_eq!(DockerTarget::default().selector(), None);
        let k = KubernetesTarget {
            namespace: "payments".into(),
            pods: Some("app=horizon".into()),
            ..KubernetesTarget::default()
        };
        assert_eq!(
            k.workload().map(|w| w.listed()).as_deref(),
            Some("pods/app=horizon")
        );
        let p = ProcessTarget {
            pid_file: Some("/run/x.pid".into()),
            ..ProcessTarget::default()
        };
        assert_eq!(p.by(), Some(ProcessBy::PidFile("/run/x.pid")));
        assert_eq!(ProcessTarget::default().by(), None);
    }
}
