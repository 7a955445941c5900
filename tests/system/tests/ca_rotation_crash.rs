//! Crash safety of a CA rotation: the service is made to crash (a panic at a
//! named failpoint, its lock left to expire as a dead replica's would) after
//! every step of one rotation; the next calls resume from what status and the
//! CA Secret record. The new CA generated before the first crash is the one
//! that ends up issuing (none is generated twice), and the cluster serves
//! throughout.

use std::time::{Duration, Instant};

use etcd_operator_service::security::certs;
use system_tests::{
    pods,
    real::{RealCluster, tls_spec},
    secure::{key, secret},
};

const LOCK: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_resumes_after_a_crash_after_any_step() {
    let tls = serde_json::json!({"operatorManaged": {}});
    let c = RealCluster::start_with(tls_spec(3, tls), LOCK).await;
    pods::all_ready(&c.client, "demo", 3).await;
    c.write("before", 20).await;
    // Started by the RPC, which crashes right after keeping the new CA.
    c.crash_at("rotation::after::AddNextCa", 0, |s, r| async move {
        s.security.rotate_ca(&r).await?;
        s.lifecycle.get_cluster_status(&r).await
    })
    .await;
    let next = key(&secret(&c.client, "demo-ca").await.unwrap(), "next.crt");
    assert!(!next.is_empty(), "the new CA was kept before the crash");
    // What the lifecycle and scaling controllers do, crashing after each later step in turn:
    // Record(TrustingNewCA), SetBundle, PromoteNext, Record(IssuingFromNewCA), Reissue,
    // Record(DroppingOldCA), DropPrevious, SetBundle, Record(done).
    let points = [
        ("rotation::after::Record", 0),
        ("rotation::after::SetBundle", 0),
        ("rotation::after::PromoteNext", 0),
        ("rotation::after::Record", 0),
        ("rotation::after::Reissue", 0),
        ("rotation::after::Record", 0),
        ("rotation::after::DropPrevious", 0),
        ("rotation::after::SetBundle", 0),
        ("rotation::after::Record", 0),
    ];
    for (point, nth) in points {
        c.crash_at(point, nth, |s, r| async move {
            let _ = s.roll.roll(&r).await;
            let out = Box::pin(s.lifecycle.update_cluster(&r, None)).await?;
            // Looked at again while it rotates: only a settled answer ends the loop early.
            Ok(out)
        })
        .await;
        eprintln!("crashed after {point}");
    }
    // Settles: no rotation recorded, the roll done.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the rotation did not settle after the crashes");
        let _ = c.services.roll.roll(&c.r).await;
        let _ = Box::pin(c.services.lifecycle.update_cluster(&c.r, None)).await;
        let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
        let ca = status.certificate_authority.unwrap_or_default();
        if ca.rotation.is_none() && status.phase == etcd_operator_api::cluster::ClusterPhase::Running {
            assert_eq!(
                ca.trusted,
                certs::fingerprints(&next),
                "the CA kept before the first crash issues now"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ca = secret(&c.client, "demo-ca").await.unwrap();
    assert_eq!(key(&ca, "ca.crt"), next, "no second new CA was generated");
    for s in ["demo-client-tls", "demo-peer-tls", "demo-operator-tls"] {
        let leaf = secret(&c.client, s).await.unwrap();
        assert_eq!(key(&leaf, "ca.crt"), next, "{s} trusts the new CA only");
    }
    c.assert_settled(3).await;
    assert_eq!(c.count("before").await, 20, "every write kept");
}
