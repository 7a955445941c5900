//! Quorum-loss recovery against real etcd pods on kube-sim's node: with
//! `spec.recovery.restoreOnQuorumLoss`, a cluster whose majority is cut off for
//! longer than the grace period is recreated in place (same name and
//! endpoints, a new cluster ID, DataLossPossible) from the saved data of the
//! most advanced member that still answers when it is at least as new as the
//! newest verified backup, and from that backup only once the user accepted it
//! by annotation; within the grace period, or without a usable source, nothing
//! is touched and the cluster heals by itself when its members come back; a
//! crash between any two steps is resumed. Needs root.

use std::time::{Duration, Instant};

use etcd_operator_api::{
    EtcdCluster, EtcdClusterSpec,
    cluster::{
        ANNOTATION_ACCEPT_QUORUM_LOSS_RESTORE, CONDITION_DATA_LOSS_POSSIBLE, RestorePhase, RestoreTrigger,
    },
    condition::find,
};
use etcd_operator_service::{ClusterOutcome, ServiceError};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use system_tests::{
    real::{RealCluster, spec},
    requests::served,
};

const LIMIT: Duration = Duration::from_secs(150);

fn opted_in() -> EtcdClusterSpec {
    let mut spec = serde_json::to_value(spec(3)).unwrap();
    spec["recovery"] = serde_json::json!({"restoreOnQuorumLoss": true, "quorumLossGracePeriod": "15s"});
    serde_json::from_value(spec).unwrap()
}

/// Cuts demo-1 and demo-2 off, and waits until the status records them as unhealthy.
async fn lose_quorum(c: &RealCluster) {
    let node = c.sim.node().unwrap();
    node.partition("default", "demo-1").unwrap();
    node.partition("default", "demo-2").unwrap();
    await_majority_down(c).await;
}

/// Waits until the status records demo-1 and demo-2 as not answering.
async fn await_majority_down(c: &RealCluster) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
        let down = |name: &str| status.members.iter().any(|m| m.name == name && m.raft_index.is_none());
        if down("demo-1") && down("demo-2") {
            return;
        }
        assert!(Instant::now() < deadline, "the majority never looked unhealthy: {status:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn recover(c: &RealCluster) -> Result<ClusterOutcome, ServiceError> {
    Box::pin(c.services.recovery.recover_quorum(&c.r)).await.map(|o| o.cluster)
}

/// Where a recovery restored from.
#[derive(Clone, Copy)]
enum Source {
    /// EtcdBackup "nightly": what it held is back, later writes are gone.
    Nightly,
    /// demo-0's saved data: every write it held is back, "after" included.
    Survivor,
}

/// The cluster runs again from `source`, as a new cluster under the same name.
async fn assert_recovered(c: &RealCluster, old_cluster_id: &str, source: Source) {
    c.assert_settled(3).await;
    assert_eq!(c.count("before").await, 50, "every write the source holds is back");
    let after = match source {
        Source::Nightly => 0,
        Source::Survivor => 20,
    };
    assert_eq!(c.count("after").await, after, "writes after the source are lost, and only those");
    c.write("again", 5).await;
    // The StatefulSet's status catches up with the new pods.
    let status = c
        .converge("the cluster settled", LIMIT, || c.services.lifecycle.get_cluster_status(&c.r))
        .await
        .status;
    assert!(status.operation.is_none(), "{status:?}");
    let restore = status.restore.clone().expect("restore record");
    assert_eq!((restore.phase, restore.trigger), (RestorePhase::Completed, RestoreTrigger::QuorumLoss));
    assert_ne!(status.cluster_id.as_deref(), Some(old_cluster_id), "a new cluster under the same name");
    let loss = find(&status.conditions, CONDITION_DATA_LOSS_POSSIBLE).expect("DataLossPossible");
    assert_eq!(loss.reason, "RestoredAfterQuorumLoss");
    match source {
        Source::Nightly => {
            assert_eq!(restore.backup_name.as_deref(), Some("nightly"));
            assert!(
                loss.message.contains("EtcdBackup nightly") && loss.message.contains("are lost"),
                "{loss:?}"
            );
        }
        Source::Survivor => {
            assert_eq!(restore.backup_name, None);
            assert!(loss.message.contains("surviving member demo-0"), "{loss:?}");
        }
    }
    // Members may be replaced again.
    let again = Box::pin(c.services.recovery.recover_quorum(&c.r)).await.unwrap();
    assert!(again.quorum_holds, "{}", again.decision);
}

/// Calls RecoverQuorum until it refuses (the grace period and the kubelet's readiness probes
/// take their time), checking that nothing was recorded meanwhile; the refusal's message.
async fn refusal(c: &RealCluster) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match recover(c).await {
            Err(ServiceError::FailedPrecondition(m)) => return m,
            Ok(out) => assert!(out.status.operation.is_none(), "{:?}", out.status.operation),
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "RecoverQuorum never refused");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Accepts restoring from `backup` with the annotation the refusal names.
async fn accept(c: &RealCluster, backup: &str) {
    let patch =
        serde_json::json!({"metadata": {"annotations": {ANNOTATION_ACCEPT_QUORUM_LOSS_RESTORE: backup}}});
    Api::<EtcdCluster>::namespaced(c.client.clone(), "default")
        .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_majority_is_restored_in_place_from_the_survivors_saved_data_when_it_is_newer_than_the_backup()
{
    let c = RealCluster::start_with(opted_in(), Duration::from_secs(10)).await;
    c.write("before", 50).await;
    c.backup("nightly").await;
    c.write("after", 20).await;
    let old_id = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status.cluster_id.unwrap();
    let claims = c.claim_uids().await;
    lose_quorum(&c).await;

    // Within the grace period nothing is touched, not even the cluster's lock (a look with
    // nothing to start takes none); the answer says when to look again.
    let locks = served(&c.client, "POST", "leases", "").await;
    let early = Box::pin(c.services.recovery.recover_quorum(&c.r)).await.unwrap();
    assert_eq!(
        served(&c.client, "POST", "leases", "").await,
        locks,
        "a look that starts nothing locks nothing"
    );
    assert!(
        early.cluster.requeue_after.is_some()
            && early.cluster.status.operation.is_none()
            && !early.quorum_holds,
        "{:?}",
        early.decision
    );
    assert!(
        early.decision.contains("2 of 3 voting members down"),
        "{} {:?}",
        early.decision,
        early.cluster.status.conditions
    );
    assert_eq!(c.claim_uids().await, claims);

    c.converge("the quorum-loss recovery", LIMIT, || recover(&c)).await;
    assert_ne!(c.claim_uids().await, claims, "every member starts on a new volume");
    // demo-0 answered throughout, ahead of the backup: its data is the source and is kept.
    let mut saved: Vec<String> = std::fs::read_dir(c.snapshot_dir().join("default/demo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    saved.sort();
    assert_eq!(saved.len(), 2, "the survivor's data stays saved, with its record: {saved:?}");
    assert_eq!(format!("{}.json", saved[0]), saved[1], "{saved:?}");
    assert_recovered(&c, &old_id, Source::Survivor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_survivor_or_a_usable_backup_nothing_is_touched_and_the_members_coming_back_heal_it() {
    let c = RealCluster::start_with(opted_in(), Duration::from_secs(10)).await;
    c.write("before", 50).await;
    let claims = c.claim_uids().await;
    let node = c.sim.node().unwrap();
    node.partition("default", "demo-0").unwrap();
    lose_quorum(&c).await;
    let refused = refusal(&c).await;
    assert!(
        refused.contains("has no Succeeded EtcdBackup") && refused.contains("nothing was changed"),
        "{refused}"
    );
    assert_eq!((c.replicas().await, c.claim_uids().await), (3, claims));
    for member in ["demo-0", "demo-1", "demo-2"] {
        node.heal("default", member).unwrap();
    }
    c.converge("the cluster healing by itself", LIMIT, || c.services.lifecycle.get_cluster_status(&c.r))
        .await;
    c.assert_settled(3).await;
    assert_eq!(c.count("before").await, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_resumes_after_a_crash_between_any_two_steps() {
    let c = RealCluster::start_with(opted_in(), Duration::from_secs(3)).await;
    c.write("before", 50).await;
    c.backup("nightly").await;
    c.write("after", 20).await;
    let old_id = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status.cluster_id.unwrap();
    lose_quorum(&c).await;
    // Record(SavingSurvivor) | SaveSurvivor (+ StoppingMembers) | SetReplicas(0) | Record(DeletingVolumes)
    // | DeleteClaims | Record(PreparingRestore) | PrepareRestore (+ Record(RestoringMembers)) | SetReplicas(3)
    let points = [
        "quorum::after::Record",
        "quorum::after::SaveSurvivor",
        "quorum::after::SetReplicas",
        "quorum::after::Record",
        "quorum::after::DeleteClaims",
        "quorum::after::Record",
        "quorum::after::PrepareRestore",
        "quorum::after::SetReplicas",
    ];
    for point in points {
        c.crash_at(point, 0, |s, r| async move { s.recovery.recover_quorum(&r).await.map(|o| o.cluster) })
            .await;
    }
    c.converge("the recovery after the crashes", LIMIT, || recover(&c)).await;
    assert_recovered(&c, &old_id, Source::Survivor).await;
}

/// What each member answers to a quorum read of the keys under `prefix` (its name and count, or why not).
async fn reads(c: &RealCluster, prefix: &str) -> Vec<(String, Result<i64, String>)> {
    let mut out = Vec::new();
    for name in ["demo-0", "demo-1", "demo-2"] {
        let endpoint = c.member_endpoint("demo", name).await;
        let read = async {
            let mut etcd = c.connect("demo", vec![endpoint]).await.map_err(|e| e.to_string())?;
            let options = etcd_client::GetOptions::new().with_prefix().with_count_only();
            etcd.get(format!("{prefix}/"), Some(options)).await.map(|r| r.count()).map_err(|e| e.to_string())
        };
        let answer =
            tokio::time::timeout(Duration::from_secs(2), read).await.unwrap_or(Err("timed out".into()));
        out.push((name.to_owned(), answer));
    }
    out
}

/// `lost` members lose their volumes with their nodes; their pods come back on empty volumes. No
/// member ever serves a cluster without the data, the init container of each empty member logs
/// `why(member)`, and after the grace period the cluster is restored from `source` (the backup
/// only once the user accepted it).
async fn volumes_lost(lost: &[&str], why: impl Fn(&str) -> String, source: Source) {
    let c = RealCluster::start_with(opted_in(), Duration::from_secs(10)).await;
    c.write("before", 50).await;
    c.backup("nightly").await;
    c.write("after", 20).await;
    let old_id = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status.cluster_id.unwrap();
    // Once formed, a member never bootstraps again.
    let cm = Api::<ConfigMap>::namespaced(c.client.clone(), "default").get("demo-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["ETCD_INITIAL_CLUSTER_STATE"], "existing");

    let node = c.sim.node().unwrap();
    let pods = Api::<Pod>::namespaced(c.client.clone(), "default");
    for member in lost {
        node.wipe_pvc("default", &format!("data-{member}")).unwrap();
        pods.delete(member, &DeleteParams::default().grace_period(0)).await.unwrap();
    }
    await_majority_down(&c).await;

    // Within the grace period no member ever answers a quorum read with the empty cluster the lost
    // members would have bootstrapped again (etcd's own `initial-cluster-state=new` does exactly that).
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        for (member, answer) in reads(&c, "before").await {
            assert!(
                !matches!(answer, Ok(n) if n != 50),
                "{member} served a cluster without the data: {answer:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for member in lost {
        let path = node.log_path("default", member, "prepare-data").expect("an init container log");
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(log.contains(&why(member)), "{member}: {log}");
    }

    if let Source::Nightly = source {
        // Nobody answers: the backup may lose writes, so the operator waits for the user.
        let asked = refusal(&c).await;
        let how = format!("{ANNOTATION_ACCEPT_QUORUM_LOSS_RESTORE}=nightly");
        assert!(asked.contains(&how) && asked.contains("nothing was changed"), "{asked}");
        assert_eq!(c.replicas().await, 3, "nothing is stopped before the user accepts");
        accept(&c, "nightly").await;
    }
    c.converge("the quorum-loss recovery", LIMIT, || recover(&c)).await;
    assert_recovered(&c, &old_id, source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_majority_whose_volumes_are_lost_is_refused_to_start_empty_and_restored_from_the_survivor() {
    // The survivor's membership shows they ran: each is refused, naming why. The survivor is
    // ahead of the backup: no write it held is lost.
    volumes_lost(
        &["demo-1", "demo-2"],
        |m| format!("{m} ran before (etcd's membership lists it with client URLs)"),
        Source::Survivor,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_volumes_are_all_lost_never_bootstraps_empty_and_is_restored_from_an_accepted_backup()
{
    // Nobody answers, and the cluster formed: they wait rather than bootstrap an empty cluster.
    volumes_lost(
        &["demo-0", "demo-1", "demo-2"],
        |m| format!("whether {m} ran before cannot be known"),
        Source::Nightly,
    )
    .await;
}

/// This file runs twice, as written and as its TLS variant (`*_tls_variant` in Cargo.toml).
#[test]
fn runs_the_variant_its_target_names() {
    system_tests::secure::assert_runs_the_variant_of(env!("CARGO_CRATE_NAME"));
}
