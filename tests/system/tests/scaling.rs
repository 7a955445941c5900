//! The ScalingService against real etcd members running as pods on
//! kube-sim's node: scale up through learners, scale down with the leader
//! removed last-but-moved-first, a stale claim cleared on re-add, and a
//! scale down refused while a member is down.

use std::time::Duration;

use etcd_operator_api::{EtcdCluster, cluster::OperationType};
use etcd_operator_service::{ServiceError, stop::RestartSource};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use system_tests::real::RealCluster;

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_to_three_then_down_to_one_keeps_every_write() {
    let c = RealCluster::start(1, Duration::from_secs(30)).await;
    c.write("before", 50).await;

    c.converge("1 → 3", LIMIT, || c.services.scaling.scale_up(&c.r, 3)).await;
    c.assert_settled(3).await;
    assert_eq!(c.count("before").await, 50);
    let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    let scaling = status.operation.as_ref().filter(|op| op.type_.as_str().starts_with("Scale"));
    assert!(scaling.is_none(), "the operation is cleared when done: {scaling:?}");
    assert_eq!((status.current_size, status.ready_members), (3, 3));
    // Each step was announced as an Event on the cluster.
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(c.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    let reasons: Vec<String> = events.items.iter().filter_map(|e| e.reason.clone()).collect();
    for reason in ["AddingLearner", "StartingMember", "PromotingMember", "Scaled"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} event in {reasons:?}");
    }

    // The member to remove leads: leadership moves away first.
    c.lead_from("demo-2").await;
    let last = c.members().await.iter().find(|m| m.name == "demo-2").unwrap().id;
    assert_eq!(c.etcd().await.status().await.unwrap().leader(), last, "demo-2 leads before the scale down");
    c.write("during", 20).await;
    c.converge("3 → 1", LIMIT, || c.services.scaling.scale_down(&c.r, 1)).await;
    c.assert_settled(1).await;
    assert_eq!((c.count("before").await, c.count("during").await), (50, 20));
    // whenScaled: Retain keeps the removed members' claims.
    let claims = Api::<PersistentVolumeClaim>::namespaced(c.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(claims.items.len(), 3);

    // Growing again: the retained claim of demo-1 holds a removed member's data and is replaced.
    let old = Api::<PersistentVolumeClaim>::namespaced(c.client.clone(), "default")
        .get("data-demo-1")
        .await
        .unwrap()
        .metadata
        .uid;
    c.converge("1 → 2", LIMIT, || c.services.scaling.scale_up(&c.r, 2)).await;
    c.assert_settled(2).await;
    let new = Api::<PersistentVolumeClaim>::namespaced(c.client.clone(), "default")
        .get("data-demo-1")
        .await
        .unwrap()
        .metadata
        .uid;
    assert_ne!(old, new, "demo-1 rejoined on a fresh claim");
    assert_eq!(c.count("before").await, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_that_would_cost_quorum_is_refused_and_changes_nothing() {
    let c = RealCluster::start(3, Duration::from_secs(30)).await;
    // demo-0 freezes: removing demo-2 would leave demo-1 the only healthy voter of two.
    c.sim.node().unwrap().pause("default", "demo-0").unwrap();
    let err = loop {
        match c.services.scaling.scale_down(&c.r, 2).await {
            Err(ServiceError::FailedPrecondition(why)) => break why,
            // Until etcd notices demo-0 is gone the status probe of it just times out.
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(500)).await,
            other => panic!("a scale down with a member down must be refused, got {other:?}"),
        }
    };
    assert!(err.contains("quorum"), "{err}");
    c.sim.node().unwrap().resume("default", "demo-0").unwrap();
    c.assert_settled(3).await;
    let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    let scaling = status.operation.as_ref().filter(|op| op.type_.as_str().starts_with("Scale"));
    assert!(scaling.is_none(), "nothing was recorded: {scaling:?}");
    // With the member back, the same request goes through.
    c.converge("3 → 2", LIMIT, || c.services.scaling.scale_down(&c.r, 2)).await;
    c.assert_settled(2).await;
}

/// Converge reads the live membership: a `status.currentSize` gone stale neither hides a needed
/// scale up nor causes a scale down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_follows_the_live_membership_not_a_stale_status() {
    let c = RealCluster::start(1, Duration::from_secs(30)).await;
    c.write("before", 10).await;
    let clusters = Api::<EtcdCluster>::namespaced(c.client.clone(), &c.r.namespace);
    let pp = PatchParams::default();
    let stale = |n: i32| Patch::Merge(serde_json::json!({"status": {"currentSize": n}}));
    clusters.patch(&c.r.name, &pp, &Patch::Merge(serde_json::json!({"spec": {"size": 2}}))).await.unwrap();
    // As if the cluster had grown already.
    clusters.patch_status(&c.r.name, &pp, &stale(2)).await.unwrap();
    c.converge("converge 1 → 2", LIMIT, || async {
        let done = c.services.scaling.converge(&c.r).await?;
        assert!(done.operation.is_none_or(|t| t == OperationType::ScaleUp), "{done:?}");
        Ok(done.outcome)
    })
    .await;
    c.assert_settled(2).await;
    assert_eq!(c.count("before").await, 10);

    // As if the cluster were bigger than it is: nothing shrinks.
    clusters.patch_status(&c.r.name, &pp, &stale(5)).await.unwrap();
    let done = c.services.scaling.converge(&c.r).await.unwrap();
    assert!(done.operation.is_none() && done.reason.contains("2 members"), "{done:?}");
    assert_eq!(c.members().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_the_wrong_direction_or_out_of_range_are_refused() {
    let c = RealCluster::start(1, Duration::from_secs(30)).await;
    assert!(
        matches!(c.services.scaling.scale_down(&c.r, 3).await, Err(ServiceError::FailedPrecondition(m)) if m.contains("use ScaleUp"))
    );
    assert!(
        matches!(c.services.scaling.scale_up(&c.r, 10).await, Err(ServiceError::InvalidArgument(v)) if v.to_string().contains("target"))
    );
    assert!(matches!(c.services.scaling.scale_down(&c.r, 0).await, Err(ServiceError::InvalidArgument(_))));
    // Already there: done at once.
    let out = c.services.scaling.scale_up(&c.r, 1).await.unwrap();
    assert!(out.requeue_after.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_learner_is_promoted_only_once_it_has_caught_up() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let c = RealCluster::start(1, Duration::from_secs(30)).await;
    // A writer keeps the leader's log moving.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = tokio::spawn({
        let (mut etcd, writing) = (c.etcd().await, writing.clone());
        async move {
            let mut i = 0;
            while writing.load(Ordering::SeqCst) {
                if etcd.put(format!("load/{i}"), "x", None).await.is_ok() {
                    i += 1;
                }
            }
            i
        }
    });
    // Just before the first promotion the learner freezes and falls behind for a while.
    let attempts = Arc::new(AtomicUsize::new(0));
    let node = c.sim.node().unwrap().clone();
    fail::cfg_callback("scaling::before::Promote", {
        let (attempts, node) = (attempts.clone(), node.clone());
        move || {
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                node.pause("default", "demo-1").unwrap();
                std::thread::sleep(Duration::from_secs(1));
                let node = node.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(4));
                    node.resume("default", "demo-1").unwrap();
                });
            }
        }
    })
    .unwrap();
    c.converge("1 → 2 with a lagging learner", LIMIT, || c.services.scaling.scale_up(&c.r, 2)).await;
    writing.store(false, Ordering::SeqCst);
    let written = writer.await.unwrap();
    let tries = attempts.load(Ordering::SeqCst);
    assert!(tries >= 2, "etcd refused the lagging learner and the promotion was retried ({tries} attempts)");
    c.assert_settled(2).await;
    assert_eq!(c.count("load").await, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_to_zero_and_back_keeps_the_data_and_the_cluster_id_or_restores_the_snapshot() {
    let c = RealCluster::start(3, Duration::from_secs(30)).await;
    c.write("kept", 100).await;
    let id = c.etcd().await.status().await.unwrap().header().unwrap().cluster_id();

    c.converge("3 → 0", LIMIT, || c.services.scaling.scale_to_zero(&c.r)).await;
    assert_eq!(c.replicas().await, 0);
    let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    assert_eq!(status.phase, etcd_operator_api::cluster::ClusterPhase::Stopped);
    let stopped = status.stopped.expect("the stop is recorded");
    assert_eq!(stopped.members, ["demo-0", "demo-1", "demo-2"]);
    assert_eq!(stopped.cluster_id, format!("{id:x}"));
    let snapshot = stopped.snapshot.expect("a verified snapshot is recorded");
    let bytes = std::fs::read(c.snapshot_dir().join(&snapshot.location)).unwrap();
    assert_eq!(bytes.len() as i64, snapshot.size_bytes);
    assert!(snapshot.revision >= 100);
    let claims = Api::<PersistentVolumeClaim>::namespaced(c.client.clone(), "default");
    assert_eq!(claims.list(&ListParams::default()).await.unwrap().items.len(), 3, "every claim is kept");

    assert_eq!(restart(&c, 3, "0 → 3").await, RestartSource::RetainedVolumes);
    c.assert_settled(3).await;
    assert_eq!(
        c.etcd().await.status().await.unwrap().header().unwrap().cluster_id(),
        id,
        "the same cluster came back"
    );
    assert_eq!(c.count("kept").await, 100);
    let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    assert!(status.stopped.is_none() && status.operation.is_none(), "{status:?}");

    // Stopped again and a claim lost: nothing starts half-way, and the snapshot is named.
    c.converge("3 → 0 again", LIMIT, || c.services.scaling.scale_to_zero(&c.r)).await;
    claims.delete("data-demo-2", &Default::default()).await.unwrap();
    let refused = c.services.scaling.restart_from_zero(&c.r, 3).await.map(|(o, _)| o);
    assert!(
        matches!(&refused, Err(ServiceError::FailedPrecondition(m)) if m.contains("data-demo-2") && m.contains("snapshot")),
        "{refused:?}"
    );
    assert_eq!(c.replicas().await, 0);

    // Every claim gone: every member restores from the verified stop snapshot, as a new cluster.
    Box::pin(restart_without_claims(&c, &claims, id)).await;
}

async fn restart_without_claims(c: &RealCluster, claims: &Api<PersistentVolumeClaim>, id: u64) {
    for claim in ["data-demo-0", "data-demo-1"] {
        claims.delete(claim, &Default::default()).await.unwrap();
    }
    let source = std::sync::Mutex::new(None);
    let out = c
        .converge("0 → 3 from the snapshot", LIMIT, || async {
            let (out, from) = c.services.scaling.restart_from_zero(&c.r, 3).await?;
            *source.lock().unwrap() = Some(from);
            Ok(out)
        })
        .await;
    assert_eq!(*source.lock().unwrap(), Some(RestartSource::Snapshot), "the answer names the snapshot");
    c.assert_settled(3).await;
    assert_eq!(c.count("kept").await, 100, "every key written before the stop is back");
    let new_id = c.etcd().await.status().await.unwrap().header().unwrap().cluster_id();
    assert_ne!(new_id, id, "restored members form a new cluster that old data can never join");
    // The pod template gained the restore agent while stopped; the StatefulSet settles its revisions.
    let mut status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    for _ in 0..50 {
        if status.operation.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    }
    let restore = status.restore.clone().expect("the restore is recorded");
    assert_eq!(restore.phase, etcd_operator_api::cluster::RestorePhase::Completed, "{status:?} {out:?}");
    assert!(restore.source.starts_with("stop snapshot "), "{restore:?}");
    assert!(status.stopped.is_none() && status.operation.is_none(), "{status:?}");
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(c.client.clone(), "default");
    assert!(secrets.get_opt("demo-restore").await.unwrap().is_none(), "the restore token is gone");
}

/// Restarts to `target` members; the source the last answer named.
async fn restart(c: &RealCluster, target: i32, what: &str) -> RestartSource {
    let source = std::sync::Mutex::new(None);
    c.converge(what, LIMIT, || async {
        let (out, from) = c.services.scaling.restart_from_zero(&c.r, target).await?;
        *source.lock().unwrap() = Some(from);
        Ok(out)
    })
    .await;
    source.into_inner().unwrap().expect("an answer")
}

/// This file runs twice, as written and as its TLS variant (`*_tls_variant` in Cargo.toml).
#[test]
fn runs_the_variant_its_target_names() {
    system_tests::secure::assert_runs_the_variant_of(env!("CARGO_CRATE_NAME"));
}
