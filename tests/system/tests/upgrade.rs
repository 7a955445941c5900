//! An upgrade on real etcd: 3.4.23 to a 3.5 tag (kube-sim runs 3.5 tags with
//! the 3.5.1 binary, the only 3.5 here; the product still refuses a 3.5.0-3.5.2
//! spec). Admission and the service refuse what etcd does not support, also in
//! the middle of the roll; the roll restarts followers first and the leader
//! last, survives a crash, keeps every acknowledged write, and the upgrade is
//! complete only once etcd reports cluster version 3.5.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use etcd_operator_api::{
    ConditionStatus, EtcdCluster, EtcdClusterStatus, cluster::CONDITION_UPGRADING, condition::find,
};
use etcd_operator_service::ServiceError;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use system_tests::{pods, real::RealCluster};

const LOCK: Duration = Duration::from_secs(3);
const LIMIT: Duration = Duration::from_secs(180);
/// A 3.5 tag from 3.5.3-3.5.10: runnable for the product, probed with /health as 3.5.1 is.
const TARGET: &str = "3.5.7";

async fn set_version(c: &RealCluster, version: &str) -> Result<EtcdCluster, kube::Error> {
    let clusters = Api::<EtcdCluster>::namespaced(c.client.clone(), "default");
    let patch = serde_json::json!({"spec": {"version": version}});
    clusters.patch("demo", &PatchParams::default(), &Patch::Merge(&patch)).await
}

/// The admission error's message for a version change.
async fn admission_refuses(c: &RealCluster, version: &str) -> String {
    match set_version(c, version).await {
        Err(kube::Error::Api(e)) if e.code == 422 => e.message,
        other => panic!("{version} was not refused at admission: {other:?}"),
    }
}

async fn status(c: &RealCluster) -> EtcdClusterStatus {
    c.services.lifecycle.get_cluster_status(&c.r).await.expect("GetClusterStatus").status
}

/// Applies the spec until the StatefulSet carries the new template.
async fn applied(c: &RealCluster) {
    let sts = Api::<StatefulSet>::namespaced(c.client.clone(), "default");
    let deadline = Instant::now() + LIMIT;
    loop {
        let _ = Box::pin(c.services.lifecycle.update_cluster(&c.r, None)).await;
        let s = sts.get("demo").await.expect("sts").status.unwrap_or_default();
        if s.current_revision != s.update_revision && s.update_revision.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "the lifecycle never applied {TARGET}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_four_to_three_five_is_gated_rolls_the_leader_last_and_completes_on_the_cluster_version() {
    upgrade(RealCluster::start(3, LOCK).await).await;
}

/// With TLS on the members (client certificates required): the cluster version is read over TLS
/// with the operator's certificate. (With etcd's auth on, 3.4 → 3.5 is refused: see cel_rules.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_on_the_members_too() {
    let spec = system_tests::real::tls_spec(3, serde_json::json!({"operatorManaged": {}}));
    upgrade(RealCluster::start_with(spec, LOCK).await).await;
}

async fn upgrade(c: RealCluster) {
    pods::all_ready(&c.client, "demo", 3).await;
    // What etcd does not support is refused at admission, naming what to do instead.
    let skip = admission_refuses(&c, "3.6.5").await;
    assert!(
        skip.contains("3.4.23 → 3.6.5 skips a minor version") && skip.contains("move to 3.5 first"),
        "{skip}"
    );
    let down = admission_refuses(&c, "3.4.22").await;
    assert!(down.contains("is a downgrade, which is refused; allowed next: 3.4.23"), "{down}");

    // Not the highest ordinal: the StatefulSet's own order would restart it first.
    c.lead_from("demo-1").await;
    let led_by = c.members().await.into_iter().find(|m| m.name == "demo-1").map(|m| m.name).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = pods::watch(&c.client, "demo", 3, stop.clone());
    let writer = c.write_until("up", stop.clone()).await;
    set_version(&c, TARGET).await.expect("3.4.23 → 3.5.7 is admitted");
    applied(&c).await;
    // Crashed once between two steps: the roll resumes from what status records.
    c.crash_at("roll::after::Restart", 0, |s, r| async move { s.roll.roll(&r).await }).await;

    // Mid-roll, the way back is refused both at admission and by the service.
    let back = admission_refuses(&c, "3.4.23").await;
    assert!(back.contains("3.5.7 → 3.4.23 is a downgrade"), "{back}");
    let clusters = Api::<EtcdCluster>::namespaced(c.client.clone(), "default");
    let mut spec = clusters.get("demo").await.expect("cluster").spec;
    spec.version = "3.4.23".into();
    match Box::pin(
        c.services
            .lifecycle
            .update_cluster(&c.r, Some(etcd_operator_service::SpecUpdate::Replace(Box::new(spec)))),
    )
    .await
    {
        Err(ServiceError::FailedPrecondition(why)) => {
            assert!(why.contains("3.5.7 → 3.4.23 is a downgrade") && why.contains("allowed next"), "{why}");
        }
        other => panic!("the service took a downgrade mid-roll: {other:?}"),
    }
    let progress = status(&c).await;
    let upgrading = find(&progress.conditions, CONDITION_UPGRADING).expect("Upgrading while rolling");
    assert_eq!(upgrading.status, ConditionStatus::True, "{upgrading:?}");
    assert!(upgrading.message.contains("members run 3.5.7"), "{upgrading:?}");

    c.converge("the upgrade's roll", LIMIT, || c.services.roll.roll(&c.r)).await;
    // Complete only when etcd's leader has moved the cluster version (it checks every few seconds).
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let s = status(&c).await;
        let upgrading = find(&s.conditions, CONDITION_UPGRADING).cloned();
        if upgrading.as_ref().is_some_and(|u| u.status == ConditionStatus::False) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "never completed: {upgrading:?}, cluster version {:?}",
            s.cluster_version
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    stop.store(true, Ordering::SeqCst);
    let (seen, written) = (watcher.await.unwrap(), writer.await.unwrap());
    assert_eq!(done.cluster_version.as_deref(), Some("3.5.0"), "etcd reports cluster version 3.5");
    let upgrading = find(&done.conditions, CONDITION_UPGRADING).unwrap();
    assert_eq!(upgrading.reason, "UpToDate", "{upgrading:?}");
    // The members run the 3.5 binary here (3.5.1 for every 3.5 tag).
    assert!(done.members.iter().all(|m| m.version.as_deref() == Some("3.5.1")), "{:?}", done.members);
    assert!(seen.most_down <= 1, "{} members down at once: {:?}", seen.most_down, seen.worst);
    assert_eq!(seen.restarted.len(), 3, "each member restarted once: {:?}", seen.restarted);
    assert_eq!(seen.restarted.last(), Some(&led_by), "the leader restarts last: {:?}", seen.restarted);
    assert!(written > 5, "the workload wrote {written} keys");
    // By key: the writer's last put may have timed out during a leader move yet been applied.
    c.assert_acknowledged_kept("up", written, "after the upgrade").await;
    assert!(done.operation.is_none(), "the record is cleared: {:?}", done.operation);
    // From 3.5.7 (members at 3.5.1), 3.6 needs 3.5.32 first.
    let next = admission_refuses(&c, "3.6.0").await;
    assert!(next.contains("needs 3.5.32 or later first"), "{next}");
}

/// An upgrade onto an image that never starts: the first member down stops the roll, the
/// condition names it and why, the other two keep quorum; a fixed spec then finishes the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_does_not_come_back_stops_the_roll_and_a_fixed_spec_mends_it() {
    let c = RealCluster::start(3, LOCK).await;
    pods::all_ready(&c.client, "demo", 3).await;
    let clusters = Api::<EtcdCluster>::namespaced(c.client.clone(), "default");
    let broken = serde_json::json!({"spec": {"version": TARGET, "image": "registry.invalid/etcd:v3.5.7"}});
    clusters.patch("demo", &PatchParams::default(), &Patch::Merge(&broken)).await.expect("admitted");
    applied(&c).await;
    let deadline = Instant::now() + LIMIT;
    let stopped = loop {
        let _ = Box::pin(c.services.roll.roll(&c.r)).await;
        let s = status(&c).await;
        let upgrading = find(&s.conditions, CONDITION_UPGRADING).cloned();
        if let Some(u) = upgrading.filter(|u| u.reason == "MemberUnhealthy") {
            break u;
        }
        assert!(Instant::now() < deadline, "the roll never stopped on the broken member");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(stopped.status, ConditionStatus::True);
    // The first follower the roll restarted (the highest ordinal that does not lead) is the one
    // on the broken image, and the condition names it.
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(c.client.clone(), "default");
    let on_broken: Vec<String> = pods
        .list(&Default::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter(|p| {
            p.spec
                .iter()
                .flat_map(|s| &s.containers)
                .any(|c| c.image.as_deref() == Some("registry.invalid/etcd:v3.5.7"))
        })
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(on_broken.len(), 1, "one member restarted onto the broken image: {on_broken:?}");
    assert!(
        stopped.message.contains(&format!("stopped: {}", on_broken[0]))
            && stopped.message.contains("the roll waits"),
        "{stopped:?}"
    );
    // More calls never take a second member down: quorum holds and writes go on.
    for _ in 0..5 {
        let _ = Box::pin(c.services.roll.roll(&c.r)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let s = status(&c).await;
    assert_eq!(s.ready_members, 2, "only the broken member is down: {:?}", s.members);
    let endpoint = c.member_endpoint("demo", "demo-0").await;
    let mut etcd = c.connect("demo", vec![endpoint]).await.expect("demo-0 connects");
    for i in 0..10 {
        etcd.put(format!("during/{i}"), "v", None).await.expect("quorum holds: writes go on");
    }

    // Fixed (the official image for 3.5.7): applied although demo-2 is down, since only the
    // newest template broke it; the roll restarts it first and goes on.
    let sts = Api::<StatefulSet>::namespaced(c.client.clone(), "default");
    let revision =
        || async { sts.get("demo").await.expect("sts").status.unwrap_or_default().update_revision };
    let broken_revision = revision().await;
    let fixed = serde_json::json!({"spec": {"image": null}});
    clusters.patch("demo", &PatchParams::default(), &Patch::Merge(&fixed)).await.expect("fixed");
    let deadline = Instant::now() + LIMIT;
    while revision().await == broken_revision {
        assert!(Instant::now() < deadline, "the fixed template was never applied");
        let _ = Box::pin(c.services.lifecycle.update_cluster(&c.r, None)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.converge("the mended roll", LIMIT, || c.services.roll.roll(&c.r)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&c).await.cluster_version.as_deref() != Some("3.5.0") {
        assert!(Instant::now() < deadline, "the mended upgrade never reached cluster version 3.5");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    c.assert_settled(3).await;
    assert_eq!(c.count("during").await, 10);
}
