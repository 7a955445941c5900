//! Crash safety of ScaleToZero and RestartFromZero: the service crashes
//! between every pair of their steps; the next calls resume from the record
//! and converge, with every claim kept, the same cluster ID and every write.

use std::time::Duration;

use system_tests::real::RealCluster;

const LOCK: Duration = Duration::from_secs(3);
const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_restart_resume_after_a_crash_between_any_two_steps() {
    let c = RealCluster::start(2, LOCK).await;
    c.write("k", 30).await;
    let id = c.etcd().await.status().await.unwrap().header().unwrap().cluster_id();
    // stop: Record(TakingSnapshot) | TakeSnapshot (+ record) | SetReplicas(0)
    // restart: Record(StartingMembers) | SetReplicas(n) | Done
    let stop_points = ["stop::after::Record", "stop::after::TakeSnapshot", "stop::after::SetReplicas"];
    let restart_points = ["stop::after::Record", "stop::after::SetReplicas", "stop::after::Done"];
    for (stop_point, restart_point) in stop_points.into_iter().zip(restart_points) {
        c.crash_at(stop_point, 0, |s, r| async move { s.scaling.scale_to_zero(&r).await }).await;
        c.converge("stop", LIMIT, || c.services.scaling.scale_to_zero(&c.r)).await;
        assert_eq!(c.replicas().await, 0, "after a crash at {stop_point}");
        c.crash_at(restart_point, 0, |s, r| async move {
            s.scaling.restart_from_zero(&r, 2).await.map(|(o, _)| o)
        })
        .await;
        c.converge("restart", LIMIT, || async {
            c.services.scaling.restart_from_zero(&c.r, 2).await.map(|(o, _)| o)
        })
        .await;
        c.assert_settled(2).await;
        assert_eq!(
            c.etcd().await.status().await.unwrap().header().unwrap().cluster_id(),
            id,
            "after a crash at {restart_point}"
        );
        assert_eq!(c.count("k").await, 30);
    }
}
