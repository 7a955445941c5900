//! Member replacement against real etcd pods on kube-sim's node: a member
//! whose data is lost is replaced (removed, re-added empty as a learner under
//! its name, promoted) with no write lost; a member that is only briefly
//! unhealthy is left alone; a replacement that would cost quorum is refused;
//! and a crash between any two steps is resumed. Needs root.

use std::time::{Duration, Instant};

use etcd_operator_service::ServiceError;
use system_tests::real::RealCluster;

const LIMIT: Duration = Duration::from_secs(90);

async fn member_id(c: &RealCluster, name: &str) -> u64 {
    c.members().await.iter().find(|m| m.name == name).map(|m| m.id).expect("member")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_lost_its_data_is_replaced_and_no_write_is_lost() {
    let c = RealCluster::start(3, Duration::from_secs(10)).await;
    c.write("before", 100).await;
    let old_id = member_id(&c, "demo-2").await;
    // A follower is lost: losing the leader would add an election, during which the early call
    // below rightly refuses (no quorum of healthy voters) instead of answering "nothing yet".
    c.lead_from("demo-0").await;
    let node = c.sim.node().unwrap();
    // Its node is lost with the volume: the pod comes back on an empty one, and its init container
    // refuses to start it empty (etcd's membership shows it ran).
    node.wipe_pvc("default", "data-demo-2").unwrap();
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(c.client.clone(), "default");
    pods.delete("demo-2", &kube::api::DeleteParams::default().grace_period(0)).await.unwrap();

    // etcd stops hearing from it; right away, nothing is replaced (it may only be slow).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
        let dead = status.members.iter().find(|m| m.name == "demo-2").and_then(|m| m.unhealthy_since.clone());
        if dead.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "demo-2 never looked unhealthy: {status:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let early = Box::pin(c.services.recovery.replace_member(&c.r, None)).await.unwrap();
    assert!(early.requeue_after.is_none() && early.status.operation.is_none(), "{early:?}");

    // Past the grace period (6 s in these tests) it is replaced, picked without being named.
    tokio::time::sleep(Duration::from_secs(6)).await;
    c.services.lifecycle.get_cluster_status(&c.r).await.unwrap();
    c.converge("the replacement", LIMIT, || c.services.recovery.replace_member(&c.r, None)).await;
    c.assert_settled(3).await;
    assert_ne!(member_id(&c, "demo-2").await, old_id, "it rejoined as a new member under the same name");
    let init = std::fs::read_to_string(node.log_path("default", "demo-2", "prepare-data").unwrap()).unwrap();
    assert!(init.contains("demo-2 is a learner that has not run yet: it joins empty"), "{init}");
    assert_eq!(c.count("before").await, 100);
    c.write("after", 10).await;
    let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
    assert!(status.members.iter().all(|m| m.healthy && m.unhealthy_since.is_none()), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_would_cost_quorum_is_refused_and_changes_nothing() {
    let c = RealCluster::start(3, Duration::from_secs(10)).await;
    let node = c.sim.node().unwrap();
    let before = c.members().await;
    node.pause("default", "demo-2").unwrap();
    // demo-2 does not answer: replacing demo-1 as well would leave one healthy voter of two.
    let refused = Box::pin(c.services.recovery.replace_member(&c.r, Some("demo-1"))).await;
    assert!(
        matches!(&refused, Err(ServiceError::FailedPrecondition(m)) if m.contains("quorum")),
        "{refused:?}"
    );
    node.resume("default", "demo-2").unwrap();
    assert_eq!(c.members().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_resumes_after_a_crash_between_any_two_steps() {
    let c = RealCluster::start(3, Duration::from_secs(3)).await;
    c.write("k", 30).await;
    // Record(RemovingMember) | Remove | Record(RecreatingVolume) | RecreateVolume (+ AddingLearner)
    // | AddLearner | Record(StartingMember) | Record(PromotingMember) | Promote
    let points = [
        ("recovery::after::Record", 0),
        ("recovery::after::Remove", 0),
        ("recovery::after::Record", 1),
        ("recovery::after::RecreateVolume", 0),
        ("recovery::after::AddLearner", 0),
        ("recovery::after::Record", 2),
        ("recovery::after::Record", 3),
        ("recovery::after::Promote", 0),
    ];
    for (point, nth) in points {
        let old = member_id(&c, "demo-2").await;
        c.crash_at(point, nth, |s, r| async move { s.recovery.replace_member(&r, Some("demo-2")).await })
            .await;
        // The next calls go on from the record (the member is named again, as an operator would).
        c.converge(&format!("after a crash at {point} #{nth}"), LIMIT, || async {
            let status = c.services.lifecycle.get_cluster_status(&c.r).await?.status;
            match status.operation {
                Some(_) => c.services.recovery.replace_member(&c.r, Some("demo-2")).await,
                None => Ok(c.services.lifecycle.get_cluster_status(&c.r).await?),
            }
        })
        .await;
        c.assert_settled(3).await;
        assert_ne!(member_id(&c, "demo-2").await, old, "after a crash at {point} #{nth}");
        assert_eq!(c.count("k").await, 30, "after a crash at {point} #{nth}");
    }
}

/// This file runs twice, as written and as its TLS variant (`*_tls_variant` in Cargo.toml).
#[test]
fn runs_the_variant_its_target_names() {
    system_tests::secure::assert_runs_the_variant_of(env!("CARGO_CRATE_NAME"));
}
