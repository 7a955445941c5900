//! The per-cluster lock between cluster-service replicas, on kube-sim:
//! racing replicas get exactly one winner, the others ABORTED; a crashed
//! holder's lock expires; two concurrent calls to one replica are kept apart;
//! a call that outlasts the Lease keeps it by renewing it while another
//! replica keeps trying, and a call whose renewal fails is stopped before the
//! lock could expire under it.

use std::time::Duration;

use etcd_operator_api::EtcdCluster;
use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_common::ClusterRef;
use etcd_operator_resource::managers::{Acquired, ClusterLock};
use etcd_operator_service::{ServiceConfig, ServiceError, Services};
use kube::{Api, api::PostParams};
use serde_json::json;
use system_tests::Sim;

async fn with_paused_cluster(sim: &Sim) {
    sim.install_crds().await;
    let client = sim.client().await;
    // Paused: an update records status only, so no etcd is needed to exercise the lock.
    let cluster: EtcdCluster = serde_json::from_value(json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"size": 3, "version": "3.5.17", "paused": true}
    }))
    .unwrap();
    Api::<EtcdCluster>::namespaced(client, "default").create(&PostParams::default(), &cluster).await.unwrap();
}

async fn replica(sim: &Sim, identity: &str, lock: Duration) -> Services {
    let config =
        ServiceConfig { holder_identity: identity.into(), lock_duration: lock, ..ServiceConfig::default() };
    Services::new(sim.client().await, config, EtcdMetrics::default())
}

fn demo() -> ClusterRef {
    ClusterRef { namespace: "default".into(), name: "demo".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replicas_get_exactly_one_winner() {
    let sim = Sim::start().await;
    let mut racers = Vec::new();
    for i in 0..5 {
        let lock = ClusterLock::new(sim.client().await, format!("replica-{i}"), Duration::from_secs(30));
        racers.push(tokio::spawn(async move { lock.try_acquire("default", "demo").await.unwrap() }));
    }
    let mut winners = 0;
    for r in racers {
        if r.await.unwrap() == Acquired::Yes {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_cluster_answers_aborted_until_its_holder_is_done_or_expired() {
    let sim = Sim::start().await;
    with_paused_cluster(&sim).await;
    let b = replica(&sim, "replica-b", Duration::from_secs(30)).await;

    // Replica A is in the middle of a change.
    let a = ClusterLock::new(sim.client().await, "replica-a", Duration::from_secs(30));
    assert_eq!(a.try_acquire("default", "demo").await.unwrap(), Acquired::Yes);
    let err = b.lifecycle.update_cluster(&demo(), None).await.unwrap_err();
    assert!(matches!(err, ServiceError::Aborted(ref m) if m.contains("replica-a")), "{err:?}");
    a.release("default", "demo").await.unwrap();
    let done = b.lifecycle.update_cluster(&demo(), None).await.unwrap();
    assert_eq!(format!("{:?}", done.status.phase), "Paused");
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(sim.client().await, "default");
    assert!(leases.get_opt("demo-etcd-operator-lock").await.unwrap().is_none(), "released after the change");

    // Replica C crashes holding a short lock: B is refused until it expires, then proceeds.
    let crashed = ClusterLock::new(sim.client().await, "replica-c", Duration::from_secs(2));
    assert_eq!(crashed.try_acquire("default", "demo").await.unwrap(), Acquired::Yes);
    assert!(matches!(b.lifecycle.update_cluster(&demo(), None).await, Err(ServiceError::Aborted(_))));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    b.lifecycle.update_cluster(&demo(), None).await.expect("the crashed holder's lock expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_to_one_replica_are_kept_apart_too() {
    let sim = Sim::start().await;
    with_paused_cluster(&sim).await;
    let b = replica(&sim, "replica-b", Duration::from_secs(30)).await;
    // The first call holds the cluster for a while; the Lease's holder is the replica itself.
    fail::cfg("cluster::locked", "1*return(1500)").unwrap();
    let first = tokio::spawn({
        let b = b.clone();
        async move { b.lifecycle.update_cluster(&demo(), None).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = b.lifecycle.update_cluster(&demo(), None).await;
    assert!(
        matches!(second, Err(ServiceError::Aborted(ref m)) if m.contains("another call to this replica")),
        "{second:?}"
    );
    first.await.unwrap().expect("the first call finishes");
    b.lifecycle.update_cluster(&demo(), None).await.expect("free again once the first call left");
    fail::remove("cluster::locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_longer_than_the_lease_keeps_it_while_another_replica_keeps_trying() {
    let sim = Sim::start().await;
    with_paused_cluster(&sim).await;
    let lease = Duration::from_secs(2);
    let a = replica(&sim, "replica-a", lease).await;
    let b = replica(&sim, "replica-b", lease).await;
    // A's step takes 6 s: three lease durations.
    fail::cfg("cluster::locked", "1*return(6000)").unwrap();
    let long = tokio::spawn({
        let a = a.clone();
        async move { a.lifecycle.update_cluster(&demo(), None).await }
    });
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut attempts = 0;
    loop {
        let answer = b.lifecycle.update_cluster(&demo(), None).await;
        attempts += 1;
        match answer {
            Err(ServiceError::Aborted(m)) if m.contains("replica-a") => {}
            // B only ever gets in once A's 6 s step is over: never two holders.
            Ok(_) => {
                assert!(
                    started.elapsed() >= Duration::from_secs(6),
                    "B got the lock after {:?}",
                    started.elapsed()
                );
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(20), "B never got the lock");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    long.await.unwrap().expect("A's long call completes, its writes included");
    assert!(attempts > 15, "B kept trying throughout ({attempts} attempts)");
    fail::remove("cluster::locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_lock_cannot_be_renewed_is_stopped_before_it_could_expire() {
    let sim = Sim::start().await;
    with_paused_cluster(&sim).await;
    let lease = Duration::from_secs(3);
    let a = replica(&sim, "replica-a", lease).await;
    fail::cfg("cluster::locked", "1*return(10000)").unwrap();
    fail::cfg("lease::renew", "return").unwrap();
    let started = std::time::Instant::now();
    let stopped = a.lifecycle.update_cluster(&demo(), None).await;
    assert!(
        matches!(stopped, Err(ServiceError::Aborted(ref m)) if m.contains("renewing the lock failed")),
        "{stopped:?}"
    );
    assert!(started.elapsed() < lease, "stopped after {:?}, within the lease", started.elapsed());
    fail::remove("lease::renew");
    fail::remove("cluster::locked");
}
