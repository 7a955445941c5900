//! The operator's roll on real etcd: a new pod template restarts members one
//! at a time, followers first, the leader last after it handed leadership
//! over; never two members down at once; every acknowledged write kept. The
//! roll is crashed (a panic at a named failpoint, its lock left to expire)
//! between every pair of its steps and resumes from what status records.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use etcd_operator_api::EtcdCluster;
use etcd_operator_common::ClusterRef;
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use system_tests::{pods, real::RealCluster};

const LOCK: Duration = Duration::from_secs(3);
const LIMIT: Duration = Duration::from_secs(120);

/// A new pod template (an annotation), applied by the lifecycle; the pods stay as they are.
async fn new_template(c: &RealCluster, n: usize) -> String {
    let clusters = Api::<EtcdCluster>::namespaced(c.client.clone(), "default");
    let patch = serde_json::json!({"spec": {"podTemplate": {"annotations": {"roll": n.to_string()}}}});
    clusters.patch("demo", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    let sts = Api::<StatefulSet>::namespaced(c.client.clone(), "default");
    // Until the StatefulSet has a new revision: a loaded machine can take a while to reconcile it,
    // and a revision read too early is the current one (every pod would look updated).
    for attempt in 0..300 {
        if attempt % 10 == 0 {
            Box::pin(c.services.lifecycle.update_cluster(&c.r, None)).await.expect("UpdateCluster");
        }
        let s = sts.get("demo").await.expect("sts").status.unwrap_or_default();
        let revision = s.update_revision.unwrap_or_default();
        if s.current_revision.as_deref() != Some(revision.as_str()) {
            return revision;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the StatefulSet never got the template of roll {n}");
}

/// Every member pod's template revision.
async fn revisions(c: &RealCluster) -> Vec<String> {
    let pods = Api::<Pod>::namespaced(c.client.clone(), "default");
    let list = pods.list(&ListParams::default().labels("app.kubernetes.io/instance=demo")).await.unwrap();
    list.items
        .iter()
        .map(|p| p.metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone())
        .collect()
}

/// The name of the member that leads now.
async fn leader(c: &RealCluster) -> String {
    let id = c.etcd().await.status().await.expect("status").leader();
    c.members().await.into_iter().find(|m| m.id == id).expect("leader is a member").name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_restarts_followers_first_and_the_leader_last_and_resumes_after_any_crash() {
    let c = RealCluster::start(3, LOCK).await;
    // Record | MoveLeader | Restart | Restarted: a crash after each, and one plain roll first.
    let points = [
        None,
        Some(("roll::after::Record", 0)),
        Some(("roll::after::Restart", 1)),
        Some(("roll::after::Restarted", 0)),
        Some(("roll::after::MoveLeader", 0)),
    ];
    for (n, point) in points.into_iter().enumerate() {
        // Not the highest ordinal: the StatefulSet's own order would restart it first.
        pods::all_ready(&c.client, "demo", 3).await;
        c.lead_from("demo-1").await;
        let led_by = leader(&c).await;
        let update = new_template(&c, n).await;
        assert!(revisions(&c).await.iter().all(|r| *r != update), "OnDelete: nothing restarted by itself");
        let stop = Arc::new(AtomicBool::new(false));
        let prefix = ["a", "b", "c", "d", "e"][n];
        let (watcher, writer) =
            (pods::watch(&c.client, "demo", 3, stop.clone()), c.write_until(prefix, stop.clone()).await);
        if let Some((point, nth)) = point {
            c.crash_at(point, nth, |s, r| async move { s.roll.roll(&r).await }).await;
        }
        c.converge("the roll", LIMIT, || c.services.roll.roll(&c.r)).await;
        stop.store(true, Ordering::SeqCst);
        let (seen, written) = (watcher.await.unwrap(), writer.await.unwrap());
        let at = point.map_or("no crash", |p| p.0);
        assert!(revisions(&c).await.iter().all(|r| *r == update), "every pod on the new template ({at})");
        c.assert_settled(3).await;
        assert!(seen.most_down <= 1, "{} members down at once ({at})", seen.most_down);
        assert_eq!(seen.restarted.len(), 3, "each member restarted once ({at}): {:?}", seen.restarted);
        assert_eq!(
            seen.restarted.last(),
            Some(&led_by),
            "the leader restarts last ({at}): {:?}",
            seen.restarted
        );
        c.assert_acknowledged_kept(prefix, written, at).await;
        assert!(written > 5, "the workload wrote {written} keys ({at})");
        let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
        assert!(status.operation.is_none(), "the record is cleared ({at}): {:?}", status.operation);
        eprintln!("roll {n} ({at}): order {:?}, {written} writes", seen.restarted);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_first_spec_that_is_fixed_replaces_its_pods_at_once() {
    let c = RealCluster::start(1, LOCK).await;
    let broken = ClusterRef { namespace: "default".into(), name: "broken".into() };
    let mut spec = system_tests::real::spec(3);
    spec.image = Some("registry.invalid/no-such-etcd:v0".into());
    Box::pin(c.services.lifecycle.create_cluster(&broken, Some(spec.clone()))).await.expect("CreateCluster");
    let _ = Box::pin(c.services.lifecycle.update_cluster(&broken, None)).await;
    let pods = Api::<Pod>::namespaced(c.client.clone(), "default");
    let names = |list: &[Pod]| list.iter().map(|p| p.metadata.uid.clone().unwrap()).collect::<Vec<_>>();
    let selector = ListParams::default().labels("app.kubernetes.io/instance=broken");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed = pods.list(&selector).await.unwrap().items;
    let first = names(&listed);
    assert_eq!(first.len(), 3, "the members' pods exist");
    assert!(listed.iter().all(|p| !pods::is_ready(p)), "no member starts from an image that does not exist");
    // Fixed: the lifecycle applies the template; the cluster never formed, so converging replaces
    // every pod at once instead of waiting for healthy members that never come.
    spec.image = None;
    Box::pin(
        c.services
            .lifecycle
            .update_cluster(&broken, Some(etcd_operator_service::SpecUpdate::Replace(Box::new(spec)))),
    )
    .await
    .expect("UpdateCluster");
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        assert!(std::time::Instant::now() < deadline, "the fixed spec never ran");
        let _ = c.services.scaling.converge(&broken).await;
        let _ = Box::pin(c.services.lifecycle.update_cluster(&broken, None)).await;
        let now = pods.list(&selector).await.unwrap().items;
        let replaced = now.len() == 3 && names(&now).iter().all(|u| !first.contains(u));
        if replaced && now.iter().all(pods::is_ready) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut etcd = c.etcd_of("broken", 3).await;
    etcd.put("fixed", "yes", None).await.expect("the fixed cluster serves");
}
