//! Builders of observed state shared by the decision tests.

use crate::observe::{EndpointStatus, MemberInfo};
use etcd_operator_resource::names::ClusterNames;

use crate::observe::MemberView;

/// The names of cluster `prod/demo`.
pub(crate) fn names() -> ClusterNames {
    ClusterNames::new("prod", "demo", "cluster.local")
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
