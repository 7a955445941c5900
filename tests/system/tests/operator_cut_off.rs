//! An opted-in cluster that is only unreachable from the operator is never
//! touched: the operator's own path to the members is cut (kube-sim's host
//! path, connections refused or packets dropped) while the members serve each
//! other and the kubelet's probes still reach them. Long past the grace
//! period, RecoverQuorum changes nothing, the Available condition says the
//! members cannot be reached but their pods report Ready, and once the path is
//! back every acknowledged write is there. Needs root.

use std::time::{Duration, Instant};

use etcd_operator_api::{
    EtcdClusterSpec,
    cluster::{CONDITION_AVAILABLE, CONDITION_DATA_LOSS_POSSIBLE},
    condition::{ConditionStatus, find},
};
use kube_sim::node::HostCut;
use system_tests::real::{RealCluster, spec};

fn opted_in() -> EtcdClusterSpec {
    let mut spec = serde_json::to_value(spec(3)).unwrap();
    spec["recovery"] = serde_json::json!({"restoreOnQuorumLoss": true, "quorumLossGracePeriod": "10s"});
    serde_json::from_value(spec).unwrap()
}

async fn cut_off_past_the_grace_period(cut: HostCut) {
    let c = RealCluster::start_with(opted_in(), Duration::from_secs(10)).await;
    c.write("before", 20).await;
    c.backup("nightly").await;
    c.write("after", 5).await;
    let claims = c.claim_uids().await;
    let cluster_id = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status.cluster_id;
    let node = c.sim.node().unwrap();
    node.cut_host_path(Some(cut)).unwrap();

    // Well past the 10 s grace period (counted from when the members stopped answering).
    let until = Instant::now() + Duration::from_secs(35);
    let mut last = None;
    while Instant::now() < until {
        let answer = Box::pin(c.services.recovery.recover_quorum(&c.r)).await;
        match &answer {
            Ok(out) => {
                assert!(
                    out.cluster.status.operation.is_none(),
                    "{cut:?}: {:?}",
                    out.cluster.status.operation
                );
                assert!(!out.quorum_holds, "{cut:?}: the operator cannot know that quorum holds");
            }
            Err(e) => panic!("{cut:?}: RecoverQuorum must not refuse or fail here: {e}"),
        }
        last = answer.ok();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let last = last.expect("an answer");
    assert!(
        last.decision.contains("as the operator sees it") && last.decision.contains("member pods Ready"),
        "{cut:?}: {}",
        last.decision
    );
    let available = find(&last.cluster.status.conditions, CONDITION_AVAILABLE).expect("Available").clone();
    assert_eq!(
        (available.status, available.reason.as_str()),
        (ConditionStatus::Unknown, "MembersUnreachable")
    );
    assert!(
        available.message.contains("cannot be reached from the operator")
            && available.message.contains("3 of 3 member pods Ready"),
        "{cut:?}: {}",
        available.message
    );
    assert!(find(&last.cluster.status.conditions, CONDITION_DATA_LOSS_POSSIBLE).is_none());
    assert_eq!(
        (c.replicas().await, c.claim_uids().await),
        (3, claims),
        "{cut:?}: nothing is stopped or deleted"
    );

    node.cut_host_path(None).unwrap();
    c.converge("the operator's path back", Duration::from_secs(60), || {
        c.services.lifecycle.get_cluster_status(&c.r)
    })
    .await;
    c.assert_settled(3).await;
    assert_eq!((c.count("before").await, c.count("after").await), (20, 5), "{cut:?}: every write is there");
    let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    assert_eq!(status.cluster_id, cluster_id, "{cut:?}: the same cluster, never recreated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_from_the_operator_never_make_a_healthy_cluster_look_lost() {
    cut_off_past_the_grace_period(HostCut::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_packets_from_the_operator_never_make_a_healthy_cluster_look_lost() {
    cut_off_past_the_grace_period(HostCut::Drop).await;
}
