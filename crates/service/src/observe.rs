//! Observations: what Kubernetes and etcd report about a cluster, gathered
//! once per call and handed to the pure decisions.

use etcd_operator_client::{
    etcd::{Alarm, EndpointStatus, EtcdClient, EtcdOptions, MemberInfo},
    metrics::EtcdMetrics,
};
use etcd_operator_resource::names::ClusterNames;
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
        }
    }
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
    /// Revision most pods run.
    pub current_revision: String,
    /// Revision being rolled out.
    pub update_revision: String,
    /// Whether the StatefulSet controller has seen the latest spec.
    pub up_to_date: bool,
}

impl StatefulSetState {
    /// Reads the state from a StatefulSet object.
    pub fn of(sts: &StatefulSet) -> Self {
        let status = sts.status.clone().unwrap_or_default();
        Self {
            replicas: sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            current_revision: status.current_revision.unwrap_or_default(),
            update_revision: status.update_revision.unwrap_or_default(),
            up_to_date: status.observed_generation >= sts.metadata.generation,
        }
    }

    /// Whether pods are still being replaced by a rolling update.
    pub fn rolling(&self) -> bool {
        !self.up_to_date
            || (self.replicas > 0
                && (self.current_revision != self.update_revision || self.updated < self.replicas))
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
}

/// The membership from the first endpoint that answers on its own; all are asked at once, so
/// members whose packets vanish cost one timeout, not one each.
async fn first_member_list(
    client: &EtcdClient,
    endpoints: &[String],
) -> Option<etcd_operator_client::etcd::Membership> {
    let asks = endpoints.iter().map(|e| Box::pin(client.member_list_from(e)));
    futures::future::select_ok(asks).await.ok().map(|(m, _)| m)
}

/// Asks etcd about a cluster whose StatefulSet runs `replicas` pods.
pub async fn observe_etcd(
    names: &ClusterNames,
    replicas: i32,
    options: &EtcdOptions,
    metrics: &EtcdMetrics,
) -> EtcdState {
    if replicas <= 0 {
        return EtcdState::NotExpected;
    }
    let endpoints: Vec<String> = (0..replicas).map(|i| names.client_url(&names.member(i))).collect();
    let client = match EtcdClient::connect(&endpoints, options.clone(), metrics.clone()).await {
        Ok(c) => c,
        Err(e) => return EtcdState::Unreachable(e.to_string()),
    };
    let membership = match client.member_list().await {
        Ok(m) => m,
        // The balanced channel may keep routing to members that are cut off; any one member that
        // answers knows the membership (and lets the others be probed one by one).
        Err(e) => match first_member_list(&client, &endpoints).await {
            Some(m) => m,
            None => return EtcdState::Unreachable(e.to_string()),
        },
    };
    // Every member on its own connection, at once: members that are cut off cost one timeout, not one each.
    let mut members = futures::future::join_all(membership.members.into_iter().map(|info| {
        let client = &client;
        async move {
            let view = MemberView { info, status: Err(String::new()) };
            let endpoint =
                view.info.client_urls.first().cloned().unwrap_or_else(|| names.client_url(&view.name()));
            let status = if view.info.client_urls.is_empty() && view.info.name.is_empty() {
                Err("member has not started yet".to_owned())
            } else {
                client.status(&endpoint).await.map_err(|e| e.to_string())
            };
            MemberView { status, ..view }
        }
    }))
    .await;
    members.sort_by_key(MemberView::name);
    // Alarms go through Raft: without a leader the call could only time out.
    let leader = members.iter().any(|m| m.status.as_ref().is_ok_and(|s| s.leader != 0));
    let alarms = if leader { client.alarms().await.unwrap_or_default() } else { Vec::new() };
    EtcdState::Reached(EtcdView { cluster_id: membership.cluster_id, members, alarms })
}
