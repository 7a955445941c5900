//! Gathering what etcd says about a cluster through the client layer, and
//! converting it into the service layer's own types at this edge.

use etcd_operator_api::version::{EtcdVersion, MIN_SUPPORTED};
use etcd_operator_client::etcd::{self as client, EtcdClient, EtcdOptions, EtcdPool};
use etcd_operator_resource::names::ClusterNames;

use super::{Alarm, EndpointStatus, EtcdState, EtcdView, MemberInfo, MemberView};

impl From<client::MemberInfo> for MemberInfo {
    fn from(m: client::MemberInfo) -> Self {
        Self {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_urls,
            client_urls: m.client_urls,
            is_learner: m.is_learner,
        }
    }
}

impl From<client::EndpointStatus> for EndpointStatus {
    fn from(s: client::EndpointStatus) -> Self {
        Self {
            endpoint: s.endpoint,
            member_id: s.member_id,
            cluster_id: s.cluster_id,
            leader: s.leader,
            db_size: s.db_size,
            db_size_in_use: s.db_size_in_use,
            raft_applied_index: s.raft_applied_index,
            raft_term: s.raft_term,
            raft_index: s.raft_index,
            revision: s.revision,
            version: s.version,
            is_learner: s.is_learner,
            errors: s.errors,
        }
    }
}

impl From<&client::Alarm> for Alarm {
    fn from(a: &client::Alarm) -> Self {
        Self { member_id: a.member_id, name: a.name().to_owned() }
    }
}

/// The membership from the first endpoint that answers on its own; all are asked at once, so
/// members whose packets vanish cost one timeout, not one each. (etcd serves the member list
/// from the member's own state, so any member that answers knows it.)
async fn first_member_list(
    client: &EtcdClient,
    endpoints: &[String],
) -> Result<etcd_operator_client::etcd::Membership, String> {
    let asks = endpoints.iter().map(|e| Box::pin(client.member_list_from(e)));
    futures::future::select_ok(asks).await.map(|(m, _)| m).map_err(|e| e.to_string())
}

/// Asks etcd about a cluster whose StatefulSet runs `replicas` pods; `both_schemes` while it moves
/// between plaintext and TLS (each member speaks one or the other, and only the membership says
/// which). Every call goes to one member on its own connection, kept in `pool` between
/// observations (a cluster that does not answer at all gets fresh connections next time).
pub async fn observe_etcd(
    names: &ClusterNames,
    replicas: i32,
    options: &EtcdOptions,
    pool: &EtcdPool,
    both_schemes: bool,
) -> EtcdState {
    if replicas <= 0 {
        return EtcdState::NotExpected;
    }
    let mut endpoints: Vec<String> = (0..replicas).map(|i| names.client_url(&names.member(i))).collect();
    if both_schemes {
        let other = names.clone().with_tls(!names.tls);
        endpoints.extend((0..replicas).map(|i| other.client_url(&other.member(i))));
    }
    let key = format!("{}/{}", names.namespace, names.name);
    let client = match pool.get(&key, &endpoints, options).await {
        Ok(c) => c,
        Err(e) => return EtcdState::Unreachable(e.to_string()),
    };
    let membership = match first_member_list(&client, &endpoints).await {
        Ok(m) => m,
        Err(e) => {
            pool.forget(&key);
            return EtcdState::Unreachable(e);
        }
    };
    // Every member on its own connection, at once: members that are cut off cost one timeout, not one each.
    let mut members = futures::future::join_all(membership.members.into_iter().map(|info| {
        let client = &client;
        async move {
            let view = MemberView { info: info.into(), status: Err(String::new()) };
            let endpoint = view.client_endpoint(names);
            let status = if view.info.client_urls.is_empty() && view.info.name.is_empty() {
                Err("member has not started yet".to_owned())
            } else {
                client.status(&endpoint).await.map(EndpointStatus::from).map_err(|e| e.to_string())
            };
            if let Err(error) = &status {
                // Why a member counts as unhealthy: the status records only that it does.
                let dialled = options.rewrite.apply(&endpoint);
                tracing::debug!(member = %view.name(), dialled, error, "a member did not answer its status");
            }
            MemberView { status, ..view }
        }
    }))
    .await;
    members.sort_by_key(MemberView::name);
    // Connections to members that left are closed; the ones asked for the membership are kept.
    let asked: Vec<String> =
        endpoints.iter().cloned().chain(members.iter().map(|m| m.client_endpoint(names))).collect();
    client.retain_members(&asked).await;
    let alarms = alarms_reported(&members);
    let cluster_version = cluster_version(&members, names, options).await;
    EtcdState::Reached(EtcdView { cluster_id: membership.cluster_id, members, alarms, cluster_version })
}

/// The alarms the members' statuses list: the leader's (it applied the latest), else every
/// answering member's, once each. Not an alarm list call: etcd serves that through Raft, so
/// each one appended an entry and a quiet cluster's status changed at every probe.
fn alarms_reported(members: &[MemberView]) -> Vec<Alarm> {
    let answered = members.iter().filter_map(|m| m.status.as_ref().ok());
    let reporting: Vec<&EndpointStatus> = match answered.clone().find(|s| s.is_leader()) {
        Some(leader) => vec![leader],
        None => answered.collect(),
    };
    let mut alarms: Vec<Alarm> = Vec::new();
    for error in reporting.iter().flat_map(|s| &s.errors) {
        if let Some(alarm) = client::Alarm::from_status_error(error).as_ref().map(Alarm::from)
            && !alarms.contains(&alarm)
        {
            alarms.push(alarm);
        }
    }
    alarms
}

/// etcd's cluster version from the leader, which decides it (`None` without a leader or an answer).
async fn cluster_version(
    members: &[MemberView],
    names: &ClusterNames,
    options: &EtcdOptions,
) -> Option<String> {
    let leader = members.iter().find(|m| m.status.as_ref().is_ok_and(|s| s.leader == m.info.id))?;
    let endpoint = leader.client_endpoint(names);
    match client::versions(&endpoint, options).await {
        // Until the leader decides it, etcd reports the lowest it knows (3.0.0): not a version.
        Ok(v) if EtcdVersion::parse(&v.cluster).is_ok_and(|c| (c.major, c.minor) < MIN_SUPPORTED) => None,
        Ok(v) => Some(v.cluster),
        Err(e) => {
            tracing::debug!(member = %leader.name(), error = %e, "the leader did not tell its cluster version");
            None
        }
    }
}
