//! Builders of observed state shared by the decision tests, in the style of
//! kube-rs/controller-rs fixtures: a healthy default, changed by name.

use chrono::{DateTime, Utc};
use etcd_operator_api::EtcdCluster;
use etcd_operator_resource::names::ClusterNames;

use crate::observe::{EndpointStatus, EtcdView, MemberInfo, MemberView, StatefulSetState};

/// A time written as RFC 3339.
pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The names of cluster `prod/demo`.
pub(crate) fn names() -> ClusterNames {
    ClusterNames::new("prod", "demo", "cluster.local")
}

/// EtcdCluster `prod/demo` (generation 4) with the spec given as YAML lines.
pub(crate) fn cluster(spec: &str) -> EtcdCluster {
    let yaml = format!(
        "apiVersion: etcd.operator.dev/v1alpha1\nkind: EtcdCluster\nmetadata:\n  name: demo\n  namespace: prod\n  uid: 11111111-2222-3333-4444-555555555555\n  generation: 4\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    serde_yaml_ng::from_str(&yaml).unwrap()
}

/// A settled StatefulSet with `replicas` pods of which `ready` are ready.
pub(crate) fn sts(replicas: i32, ready: i32) -> StatefulSetState {
    StatefulSetState {
        replicas,
        ready,
        updated: replicas,
        update_revision: "r1".into(),
        up_to_date: true,
        version: None,
    }
}

/// Member `i` (ID 0x100+i); `started` false means added but never run (no name, no status).
pub(crate) fn member(i: i32, learner: bool, healthy: bool, started: bool, leader: u64) -> MemberView {
    let n = names();
    let name = n.member(i);
    let id = 0x100 + i as u64;
    let info = MemberInfo {
        id,
        name: if started { name.clone() } else { String::new() },
        peer_urls: vec![n.peer_url(&name)],
        client_urls: if started { vec![n.client_url(&name)] } else { vec![] },
        is_learner: learner,
    };
    let status = if started && healthy {
        Ok(EndpointStatus {
            db_size_in_use: 1,
            raft_applied_index: 10,
            endpoint: n.client_url(&name),
            member_id: id,
            cluster_id: 0xabc,
            leader,
            db_size: 1,
            raft_term: 2,
            raft_index: 10,
            revision: 3,
            version: "3.4.23".into(),
            is_learner: learner,
            errors: vec![],
        })
    } else {
        Err("connection refused".into())
    };
    MemberView { info, status }
}

/// etcd's view of `prod/demo`: member `i` answers when `healthy[i]`; demo-0 leads.
pub(crate) fn view(healthy: &[bool]) -> ViewBuilder {
    let members =
        healthy.iter().enumerate().map(|(i, ok)| member(i as i32, false, *ok, true, 0x100)).collect();
    ViewBuilder(EtcdView { cluster_id: 0xabc, members, alarms: vec![], cluster_version: None })
}

/// Changes a view's members by name; [`ViewBuilder::build`] ends.
pub(crate) struct ViewBuilder(EtcdView);

impl ViewBuilder {
    /// Every member that answers runs etcd `version`.
    pub(crate) fn version(self, version: &str) -> Self {
        self.answering(|s| s.version = version.into())
    }

    /// Every member that answers has a database of `size` bytes of which `in_use` are used.
    pub(crate) fn db_size(self, size: i64, in_use: i64) -> Self {
        self.answering(|s| (s.db_size, s.db_size_in_use) = (size, in_use))
    }

    /// Every member that answers is at `revision`.
    pub(crate) fn revision(self, revision: i64) -> Self {
        self.answering(|s| s.revision = revision)
    }

    /// Every member that answers reports member `i` as its leader.
    pub(crate) fn leader(self, i: i32) -> Self {
        self.answering(|s| s.leader = 0x100 + i as u64)
    }

    /// Member `i` reports raft index `index`.
    pub(crate) fn raft_index(mut self, i: usize, index: u64) -> Self {
        if let Ok(s) = self.0.members[i].status.as_mut() {
            s.raft_index = index;
        }
        self
    }

    /// Member `i` is a learner.
    pub(crate) fn learner(mut self, i: usize) -> Self {
        self.0.members[i].info.is_learner = true;
        self
    }

    fn answering(mut self, change: impl Fn(&mut EndpointStatus)) -> Self {
        self.0.members.iter_mut().filter_map(|m| m.status.as_mut().ok()).for_each(change);
        self
    }

    /// The view.
    pub(crate) fn build(self) -> EtcdView {
        self.0
    }
}

/// Pod `demo-i` on StatefulSet revision `revision`, ready when `ready`.
pub(crate) fn pod(i: i32, revision: &str, ready: bool) -> crate::observe::PodState {
    crate::observe::PodState {
        name: names().member(i),
        ready,
        running: ready,
        restarts: 0,
        revision: revision.into(),
        uid: format!("uid-{i}-{revision}"),
        terminating: false,
        bound: true,
        version: None,
    }
}
