//! Crash safety of scaling: the service is made to crash (a panic at a named
//! failpoint, leaving its per-cluster lock to expire as a dead replica's
//! would) between every pair of steps of a scale up and of a scale down;
//! the next calls resume from what status records and converge, with no
//! orphan learner, no member without a pod, no pod without a member, and
//! every write kept.

use std::time::Duration;

use system_tests::real::RealCluster;

const LOCK: Duration = Duration::from_secs(3);
const LIMIT: Duration = Duration::from_secs(90);

#[derive(Clone, Copy)]
enum Scale {
    Up(i32),
    Down(i32),
}

async fn converge(c: &RealCluster, scale: Scale) {
    let what = match scale {
        Scale::Up(t) => format!("scale up to {t}"),
        Scale::Down(t) => format!("scale down to {t}"),
    };
    c.converge(&what, LIMIT, || async {
        match scale {
            Scale::Up(t) => c.services.scaling.scale_up(&c.r, t).await,
            Scale::Down(t) => c.services.scaling.scale_down(&c.r, t).await,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_resumes_after_a_crash_between_any_two_steps() {
    let c = RealCluster::start(1, LOCK).await;
    c.write("k", 30).await;
    // Record(AddingLearner) | AddLearner | Record(StartingMember) | SetReplicas | Record(PromotingMember) | Promote
    let points = [
        ("scaling::after::Record", 0),
        ("scaling::after::AddLearner", 0),
        ("scaling::after::Record", 1),
        ("scaling::after::SetReplicas", 0),
        ("scaling::after::Record", 2),
        ("scaling::after::Promote", 0),
    ];
    for (point, nth) in points {
        c.crash_at(point, nth, |s, r| async move { s.scaling.scale_up(&r, 2).await }).await;
        converge(&c, Scale::Up(2)).await;
        c.assert_settled(2).await;
        assert_eq!(c.count("k").await, 30, "after a crash at {point} #{nth}");
        converge(&c, Scale::Down(1)).await;
        c.assert_settled(1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_resumes_after_a_crash_between_any_two_steps() {
    let c = RealCluster::start(2, LOCK).await;
    c.write("k", 30).await;
    // Record(RemovingMember) | MoveLeader | Remove | SetReplicas
    let points = [
        ("scaling::after::Record", 0),
        ("scaling::after::MoveLeader", 0),
        ("scaling::after::Remove", 0),
        ("scaling::after::SetReplicas", 0),
    ];
    for (point, nth) in points {
        // demo-1 leads, so the scale down has to move leadership first.
        let mut etcd = c.etcd().await;
        let members = c.members().await;
        let demo1 = members.iter().find(|m| m.name == "demo-1").unwrap().id;
        if etcd.status().await.unwrap().leader() != demo1 {
            c.lead_from("demo-1").await;
        }
        c.crash_at(point, nth, |s, r| async move { s.scaling.scale_down(&r, 1).await }).await;
        converge(&c, Scale::Down(1)).await;
        c.assert_settled(1).await;
        assert_eq!(c.count("k").await, 30, "after a crash at {point} #{nth}");
        converge(&c, Scale::Up(2)).await;
        c.assert_settled(2).await;
    }
}

/// This file runs twice, as written and as its TLS variant (`*_tls_variant` in Cargo.toml).
#[test]
fn runs_the_variant_its_target_names() {
    system_tests::secure::assert_runs_the_variant_of(env!("CARGO_CRATE_NAME"));
}
