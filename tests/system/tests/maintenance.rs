//! Maintenance driven by health, against real etcd pods on kube-sim's node:
//! fragmented members are defragmented one per probe, followers before the
//! leader, and not again within the cooldown; a NOSPACE alarm (a small quota
//! filled with history) is recovered by compaction, defragmentation and
//! disarming, after which writes succeed again. A paused cluster is observed
//! but never maintained, and every call that would change it is refused. A
//! quiet cluster's probes leave its status as it was (no write per probe).
//! Needs root.

use std::time::Duration;

use etcd_operator_api::EtcdClusterSpec;
use system_tests::real::{RealCluster, spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_members_are_defragmented_followers_first_once_per_cooldown() {
    let c = RealCluster::start(3, Duration::from_secs(10)).await;
    let mut etcd = c.etcd().await;
    for i in 0..64 {
        etcd.put(format!("big/{i:03}"), vec![b'x'; 64 * 1024], None).await.unwrap();
    }
    etcd.delete("big/", Some(etcd_client::DeleteOptions::new().with_prefix())).await.unwrap();
    let revision = etcd.get("any", None).await.unwrap().header().unwrap().revision();
    etcd.compact(revision, Some(etcd_client::CompactionOptions::new().with_physical())).await.unwrap();

    let leader = c
        .services
        .lifecycle
        .get_cluster_status(&c.r)
        .await
        .unwrap()
        .status
        .members
        .iter()
        .find(|m| m.is_leader)
        .map(|m| m.name.clone())
        .unwrap();
    // etcd frees the compacted pages in the background: wait until the members report it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let members = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status.members;
        let freed =
            members.iter().all(|m| m.db_size_in_use_bytes.unwrap_or(0) * 2 < m.db_size_bytes.unwrap_or(0));
        if freed {
            break;
        }
        // Freed pages are returned when later write transactions commit.
        etcd.put("tick", "x", None).await.unwrap();
        assert!(std::time::Instant::now() < deadline, "pages never freed: {members:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Box::pin(paused_changes_nothing(&c, &leader)).await;
    let mut order = Vec::new();
    for _ in 0..4 {
        let status = Box::pin(c.services.health.check_health(&c.r)).await.unwrap().status;
        let done = status.maintenance.unwrap_or_default().defragmentations;
        for d in &done {
            if !order.contains(&d.member) {
                assert!(d.after_bytes < d.before_bytes, "{d:?}");
                order.push(d.member.clone());
            }
        }
    }
    assert_eq!(order.len(), 3, "every member once: {order:?}");
    assert_eq!(order.last(), Some(&leader), "the leader last: {order:?}");
    // A fourth probe found nothing to do: the records did not change.
    let again = Box::pin(c.services.health.check_health(&c.r))
        .await
        .unwrap()
        .status
        .maintenance
        .unwrap()
        .defragmentations;
    assert_eq!(again.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nospace_alarm_is_recovered_and_writes_succeed_again() {
    let mut s: EtcdClusterSpec = spec(1);
    s.etcd.quota_backend_bytes = Some(100 << 20);
    let c = RealCluster::start_with(s, Duration::from_secs(10)).await;
    let mut etcd = c.etcd().await;
    // History of one key fills the quota.
    let mut full = false;
    for _ in 0..300 {
        if etcd.put("history", vec![b'y'; 1024 * 1024], None).await.is_err() {
            full = true;
            break;
        }
    }
    assert!(full, "the quota was never reached");
    assert!(
        !etcd
            .alarm(etcd_client::AlarmAction::Get, etcd_client::AlarmType::None, None)
            .await
            .unwrap()
            .alarms()
            .is_empty()
    );

    // The alarm as observed (from the member's status, not an alarm list through Raft).
    let observed = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    assert_eq!(observed.members[0].alarms, ["NOSPACE"], "{:?}", observed.members);
    let status = Box::pin(c.services.health.check_health(&c.r)).await.unwrap().status;
    let maintenance = status.maintenance.expect("recorded");
    assert!(maintenance.last_space_recovery.is_some(), "{maintenance:?}");
    assert!(status.members.iter().all(|m| m.alarms.is_empty()), "{:?}", status.members);
    let alarms = etcd.alarm(etcd_client::AlarmAction::Get, etcd_client::AlarmType::None, None).await.unwrap();
    assert!(alarms.alarms().is_empty(), "disarmed");
    etcd.put("after", "ok", None).await.expect("writes succeed again");
    assert_eq!(etcd.get("history", None).await.unwrap().kvs().len(), 1, "the live data is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_of_a_quiet_cluster_leave_its_status_as_it_was() {
    use etcd_operator_api::EtcdCluster;
    let c = RealCluster::start(1, Duration::from_secs(10)).await;
    let clusters: kube::Api<EtcdCluster> = kube::Api::namespaced(c.client.clone(), "default");
    let version = || async { clusters.get("demo").await.unwrap().metadata.resource_version };
    // Settled first: just after it starts, etcd itself appends entries through Raft (the member's
    // attributes, the cluster version), so the index moves for a moment whoever asks.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut first = Box::pin(c.services.health.check_health(&c.r)).await.unwrap().status;
    loop {
        let next = Box::pin(c.services.health.check_health(&c.r)).await.unwrap().status;
        if next.members[0].raft_index == first.members[0].raft_index && next.cluster_version.is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never settled: {next:?}");
        first = next;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(first.ready_members, 1, "{first:?}");
    let recorded = version().await;
    // Nothing a probe asks appends to Raft (an alarm list did): over three probes the index stands
    // still. The kubelet's readiness probe may append one meanwhile (etcd 3.4's /health is a
    // quorum read through Raft), so a window it moved in is tried again; a probe of ours that
    // appended would move every window.
    let mut windows = 0;
    loop {
        let start =
            Box::pin(c.services.health.check_health(&c.r)).await.unwrap().status.members[0].raft_index;
        let mut still = true;
        for _ in 0..3 {
            let status = Box::pin(c.services.health.check_health(&c.r)).await.unwrap().status;
            still &= status.members[0].raft_index == start;
        }
        windows += 1;
        if still {
            break;
        }
        assert!(windows < 5, "the raft index moved in every window of three probes");
    }
    assert_eq!(version().await, recorded, "a probe that found nothing new wrote nothing");

    // Writes move the members' counters: a probe answers them live, but counters alone are
    // recorded at most every few minutes, not at every probe.
    let mut etcd = c.etcd().await;
    for i in 0..5 {
        etcd.put(format!("counters/{i}"), "x", None).await.unwrap();
    }
    let status = Box::pin(c.services.health.check_health(&c.r)).await.unwrap().status;
    assert!(status.members[0].revision > first.members[0].revision, "answered live: {status:?}");
    assert_eq!(version().await, recorded, "counters alone were not recorded");
}

/// With `spec.paused`, a fragmented cluster is probed but not defragmented, and every call that
/// would change it (each RPC the controllers make) is refused naming the field; unpaused, it goes on.
async fn paused_changes_nothing(c: &RealCluster, member: &str) {
    use etcd_operator_api::EtcdCluster;
    use etcd_operator_service::ServiceError;
    use kube::api::{Api, Patch, PatchParams};
    let clusters: Api<EtcdCluster> = Api::namespaced(c.client.clone(), "default");
    let pause = |paused: bool| serde_json::json!({"spec": {"paused": paused}});
    clusters.patch("demo", &PatchParams::default(), &Patch::Merge(&pause(true))).await.unwrap();
    for _ in 0..2 {
        let status = Box::pin(c.services.health.check_health(&c.r)).await.unwrap().status;
        assert!(
            status.maintenance.unwrap_or_default().defragmentations.is_empty(),
            "a paused cluster is not maintained"
        );
    }
    let refused = |what: &str, result: Result<(), ServiceError>| {
        assert!(
            matches!(&result, Err(ServiceError::FailedPrecondition(m)) if m.contains("spec.paused")),
            "{what}: {result:?}"
        );
    };
    let s = &c.services;
    refused("ScaleUp", Box::pin(s.scaling.scale_up(&c.r, 5)).await.map(drop));
    refused("ScaleDown", Box::pin(s.scaling.scale_down(&c.r, 1)).await.map(drop));
    refused("ScaleToZero", Box::pin(s.scaling.scale_to_zero(&c.r)).await.map(drop));
    refused("RestartFromZero", Box::pin(s.scaling.restart_from_zero(&c.r, 3)).await.map(drop));
    refused("ReplaceMember", Box::pin(s.recovery.replace_member(&c.r, Some(member))).await.map(drop));
    refused("RecoverQuorum", Box::pin(s.recovery.recover_quorum(&c.r)).await.map(drop));
    refused("DefragmentMember", Box::pin(s.health.defragment_member(&c.r, member)).await.map(drop));
    // The lifecycle applies nothing either; the status says why.
    let out = Box::pin(s.lifecycle.update_cluster(&c.r, None)).await.unwrap();
    assert_eq!(out.status.phase, etcd_operator_api::cluster::ClusterPhase::Paused);
    assert_eq!(c.members().await.len(), 3, "membership unchanged");
    clusters.patch("demo", &PatchParams::default(), &Patch::Merge(&pause(false))).await.unwrap();
}
