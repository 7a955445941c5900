//! Crash safety of turning TLS on and off: the service is made to crash (a
//! panic at a named failpoint, its lock left to expire as a dead replica's
//! would) after each kind of step of both moves: each phase recorded, a
//! member recorded for its restart, a peer URL set before the member
//! restarted, the pod deleted, and the end recorded. The next calls resume
//! from what status and etcd's membership record; the cluster ends on the
//! scheme asked, with every peer URL in it and every write kept.

use std::time::{Duration, Instant};

use etcd_operator_api::EtcdCluster;
use kube::{Api, api::PostParams};
use system_tests::{pods, real::RealCluster};

const LOCK: Duration = Duration::from_secs(3);

/// Sets spec.tls through the API server (as `kubectl edit` would), without a reconcile.
async fn set_tls(c: &RealCluster, on: bool) {
    let clusters = Api::<EtcdCluster>::namespaced(c.client.clone(), "default");
    let mut cluster = clusters.get("demo").await.unwrap();
    cluster.spec.tls =
        on.then(|| serde_json::from_value(serde_json::json!({"operatorManaged": {}})).unwrap());
    clusters.replace("demo", &PostParams::default(), &cluster).await.expect("spec.tls changed");
}

/// Crashes once at each point in turn, calling what the lifecycle and scaling controllers call.
async fn crash_through(c: &RealCluster, points: &[&str]) {
    for point in points {
        c.crash_at(point, 0, |s, r| async move {
            let _ = s.scaling.converge(&r).await;
            Box::pin(s.lifecycle.update_cluster(&r, None)).await
        })
        .await;
        eprintln!("crashed after {point}");
    }
}

/// Reconciles until the move is over and the cluster runs; every peer and client URL then has
/// `scheme`.
async fn settle(c: &RealCluster, scheme: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        assert!(Instant::now() < deadline, "the move did not settle after the crashes");
        let _ = c.services.scaling.converge(&c.r).await;
        let _ = Box::pin(c.services.lifecycle.update_cluster(&c.r, None)).await;
        let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
        let transport = status.transport.unwrap_or_default();
        let done = transport.moving.is_none() && transport.tls.is_some() == (scheme == "https");
        if done && status.phase == etcd_operator_api::cluster::ClusterPhase::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let members = c.members().await;
    let urls: Vec<&String> = members.iter().flat_map(|m| m.peer_urls.iter().chain(&m.client_urls)).collect();
    assert!(urls.iter().all(|u| u.starts_with(&format!("{scheme}://"))), "every URL is {scheme}: {urls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_between_plaintext_and_tls_resumes_after_a_crash_after_any_step() {
    let c = RealCluster::start(3, LOCK).await;
    pods::all_ready(&c.client, "demo", 3).await;
    c.write("before", 20).await;

    set_tls(&c, true).await;
    crash_through(
        &c,
        &[
            "transport::after::MountingCertificates",
            "roll::after::Record",
            "roll::after::Restart",
            "transport::after::EnablingTls",
            "roll::after::UpdatePeerUrls",
            "roll::after::Restart",
            "transport::after::Settle",
        ],
    )
    .await;
    settle(&c, "https").await;
    c.write("on", 20).await;

    set_tls(&c, false).await;
    crash_through(
        &c,
        &[
            "transport::after::DisablingTls",
            "roll::after::UpdatePeerUrls",
            "roll::after::Restart",
            "transport::after::UnmountingCertificates",
            "roll::after::Restart",
            "transport::after::Settle",
        ],
    )
    .await;
    settle(&c, "http").await;
    c.assert_settled(3).await;
    assert_eq!(c.count("before").await, 20, "every write kept");
    assert_eq!(c.count("on").await, 20, "every write kept");
}
