//! Observations: what Kubernetes and etcd report about a cluster, gathered
//! once per call and handed to the pure decisions. The types here are the
//! service layer's own plain data: what the client layer returns is converted
//! when it is gathered (`gather`), so decisions never see a client type.

mod gather;

pub use gather::observe_etcd;
use k8s_openapi::api::apps::v1::StatefulSet;

/// Everything the decisions need to know about one cluster.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The StatefulSet, if it exists.
    pub statefulset: Option<StatefulSetState>,
    /// What etcd said.
    pub etcd: EtcdState,
    /// The member pods as the kubelet reports them: evidence that does not go through the
    /// operator's own network path to the members; `None` when they could not be listed.
    pub pods: Option<Vec<PodState>>,
    /// The certificates of a cluster with spec.tls; `None` without it, or when the Secrets could
    /// not be read.
    pub certificates: Option<crate::security::decide::CertificateReport>,
    /// etcd's authentication as the health probe found and left it; `None` when not looked at
    /// (other callers, or a cluster without spec.auth).
    pub auth: Option<crate::security::decide::auth::AuthReport>,
}

impl Observation {
    /// Whether etcd answers now with a cluster ID: the cluster has formed, even before its
    /// status records the ID.
    pub fn etcd_answered(&self) -> bool {
        matches!(&self.etcd, EtcdState::Reached(view) if view.cluster_id != 0)
    }
}

/// One member pod as its kubelet reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodState {
    /// Pod (and member) name.
    pub name: String,
    /// Condition Ready (the readiness probe, which needs a leader, passes).
    pub ready: bool,
    /// The etcd container is running.
    pub running: bool,
    /// Restarts of the etcd container.
    pub restarts: i32,
    /// The StatefulSet revision it was created from (`controller-revision-hash`).
    pub revision: String,
    /// Its UID: a delete aimed at this pod never reaches its successor.
    pub uid: String,
    /// It is being deleted.
    pub terminating: bool,
    /// The scheduler bound it to a node: until then no kubelet runs it, and it has no address.
    pub bound: bool,
    /// The etcd version its spec was made for (the spec's when it was applied).
    pub version: Option<String>,
}

impl PodState {
    /// Reads what the kubelet reported about a member pod.
    pub fn of(pod: &k8s_openapi::api::core::v1::Pod) -> Self {
        let status = pod.status.clone().unwrap_or_default();
        let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
        let etcd = status.container_statuses.iter().flatten().find(|c| c.name == "etcd");
        Self {
            name: pod.metadata.name.clone().unwrap_or_default(),
            ready: ready && pod.metadata.deletion_timestamp.is_none(),
            running: etcd.and_then(|c| c.state.as_ref()).is_some_and(|s| s.running.is_some()),
            restarts: etcd.map_or(0, |c| c.restart_count),
            revision: pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("controller-revision-hash"))
                .cloned()
                .unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            bound: pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty()),
            version: pod
                .spec
                .as_ref()
                .and_then(etcd_operator_resource::templates::etcd_version_of)
                .map(str::to_owned),
        }
    }
}

/// Why no member can answer, when the listed member pods already show it: none of them is on a
/// node. A pod the scheduler has not bound runs nowhere and has no address, and a member without
/// a pod has no DNS name, so asking etcd would only meet failed dials; this is the same
/// `Unreachable`, without building a client for it (at 1 000 Pending clusters, one per look).
/// `None` when a pod is on a node: then etcd is asked.
pub fn none_can_answer(pods: &[PodState]) -> Option<String> {
    if pods.iter().any(|p| p.bound) {
        return None;
    }
    Some(match pods.len() {
        0 => "no member pod exists yet".to_owned(),
        n => format!("none of the {n} member pods is on a node yet"),
    })
}

/// The parts of a StatefulSet's state that matter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatefulSetState {
    /// Desired pods.
    pub replicas: i32,
    /// Pods passing readiness.
    pub ready: i32,
    /// Pods already on the newest template.
    pub updated: i32,
    /// Revision being rolled out.
    pub update_revision: String,
    /// Whether the StatefulSet controller has seen the latest spec.
    pub up_to_date: bool,
    /// The etcd version its pod template runs (the spec's version when last applied).
    pub version: Option<String>,
}

impl StatefulSetState {
    /// Reads the state from a StatefulSet object.
    pub fn of(sts: &StatefulSet) -> Self {
        let status = sts.status.clone().unwrap_or_default();
        Self {
            replicas: sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            update_revision: status.update_revision.unwrap_or_default(),
            up_to_date: status.observed_generation >= sts.metadata.generation,
            version: etcd_operator_resource::templates::etcd_version_of_statefulset(sts).map(str::to_owned),
        }
    }

    /// Whether pods are still being replaced by a rolling update: the controller has not seen
    /// the latest spec, or some pod runs an older template. Not `status.currentRevision`: with
    /// the OnDelete strategy Kubernetes never moves it to the update revision
    /// (kubernetes/kubernetes#73492), and where it does, it waits for every pod to be Ready —
    /// a readiness lag, not a roll.
    pub fn rolling(&self) -> bool {
        !self.up_to_date || (self.replicas > 0 && self.updated < self.replicas)
    }
}

/// What etcd reported.
#[derive(Clone, Debug, Default)]
pub enum EtcdState {
    /// No member is expected to run (no StatefulSet, or zero replicas).
    #[default]
    NotExpected,
    /// No member answered.
    Unreachable(String),
    /// The cluster answered.
    Reached(EtcdView),
}

/// The cluster as etcd sees it.
#[derive(Clone, Debug, Default)]
pub struct EtcdView {
    /// Cluster ID.
    pub cluster_id: u64,
    /// Every member with its own status answer.
    pub members: Vec<MemberView>,
    /// Active alarms.
    pub alarms: Vec<Alarm>,
    /// etcd's cluster version (`3.5.0`) as the leader reports it: it moves to a new minor only
    /// once every member runs it. `None` when it could not be read.
    pub cluster_version: Option<String>,
}

/// One member and the status it reported (or why it did not).
#[derive(Clone, Debug)]
pub struct MemberView {
    /// Membership entry.
    pub info: MemberInfo,
    /// The member's own status answer.
    pub status: Result<EndpointStatus, String>,
}

impl MemberView {
    /// Pod name of the member: its etcd name, or for a member that never
    /// started, the first label of its peer URL host.
    pub fn name(&self) -> String {
        if !self.info.name.is_empty() {
            return self.info.name.clone();
        }
        self.info
            .peer_urls
            .first()
            .and_then(|u| u.split("://").nth(1))
            .and_then(|host| host.split(['.', ':']).next())
            .unwrap_or_default()
            .to_owned()
    }

    /// Whether the member answered without reporting errors.
    pub fn healthy(&self) -> bool {
        self.status.as_ref().is_ok_and(|s| s.errors.is_empty())
    }

    /// Whether it answered and reports itself as the leader.
    pub fn leads(&self) -> bool {
        self.status.as_ref().is_ok_and(EndpointStatus::is_leader)
    }

    /// Its client endpoint: the URL it advertises, or the one its name gives before it ever ran.
    pub fn client_endpoint(&self, names: &etcd_operator_resource::names::ClusterNames) -> String {
        self.info.client_urls.first().cloned().unwrap_or_else(|| names.client_url(&self.name()))
    }
}

/// A member as etcd's membership lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberInfo {
    /// Member ID.
    pub id: u64,
    /// Name (empty until the member first starts).
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs (empty until the member first starts).
    pub client_urls: Vec<String>,
    /// Whether it is a learner (not voting).
    pub is_learner: bool,
}

/// What one member says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The endpoint that answered.
    pub endpoint: String,
    /// Its member ID.
    pub member_id: u64,
    /// Its cluster ID.
    pub cluster_id: u64,
    /// The leader it knows (0: none).
    pub leader: u64,
    /// Database size in bytes.
    pub db_size: i64,
    /// Bytes of the database in use.
    pub db_size_in_use: i64,
    /// Raft applied index.
    pub raft_applied_index: u64,
    /// Raft term.
    pub raft_term: u64,
    /// Raft index.
    pub raft_index: u64,
    /// Store revision.
    pub revision: i64,
    /// etcd version.
    pub version: String,
    /// Whether it is a learner.
    pub is_learner: bool,
    /// Errors it reports (an alarm, for example).
    pub errors: Vec<String>,
}

impl EndpointStatus {
    /// Whether this member is the leader.
    pub fn is_leader(&self) -> bool {
        self.member_id != 0 && self.member_id == self.leader
    }
}

/// An active alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    /// The member raising it.
    pub member_id: u64,
    /// Its name as etcd writes it (`NOSPACE`, `CORRUPT`).
    pub name: String,
}

impl Alarm {
    /// Its name as etcd writes it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A StatefulSet as Kubernetes reports it: `updated` of 3 pods on the update revision, the
    /// current revision as the controller left it.
    fn reported(updated: i32, current: &str, observed: i64) -> StatefulSetState {
        let sts: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo", "generation": 2},
            "spec": {"replicas": 3, "selector": {}, "serviceName": "demo", "template": {},
                     "updateStrategy": {"type": "OnDelete"}},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": updated,
                       "currentRevision": current, "updateRevision": "demo-r2",
                       "observedGeneration": observed},
        }))
        .unwrap();
        StatefulSetState::of(&sts)
    }

    #[test]
    fn rolling_follows_the_pods_templates_not_the_current_revision() {
        // OnDelete never moves currentRevision; a pod not Ready yet is no roll either.
        assert!(!reported(3, "demo-r1", 2).rolling(), "every pod on the newest template");
        assert!(reported(2, "demo-r2", 2).rolling(), "a pod on an older template");
        assert!(reported(3, "demo-r2", 1).rolling(), "the controller has not seen the spec");
    }

    #[test]
    fn etcd_is_asked_once_a_member_pod_is_on_a_node() {
        let pod = |bound| PodState { bound, ..PodState::default() };
        assert!(none_can_answer(&[]).unwrap().contains("no member pod exists"));
        let why = none_can_answer(&[pod(false), pod(false)]).unwrap();
        assert!(why.contains("none of the 2 member pods is on a node"), "{why}");
        assert_eq!(none_can_answer(&[pod(false), pod(true)]), None, "one may answer");
    }
}
