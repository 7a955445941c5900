//! Leader election of a controller: several instances contend on one Lease
//! in kube-sim; exactly one reconciles at any moment; a stopped leader hands
//! over at once, a killed one within the lease duration; an instance that
//! lost the lease stops reconciling.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use etcd_operator_controller::leader::{Election, run_while_leader};
use etcd_operator_telemetry::metrics::ControllerMetrics;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use system_tests::Sim;
use tokio::{sync::watch, task::JoinHandle};

const LEASE: &str = "etcd-operator-lifecycle-controller";
const DURATION: Duration = Duration::from_secs(3);

/// One controller instance: counts itself in `active` while it "reconciles".
struct Instance {
    identity: String,
    metrics: ControllerMetrics,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), String>>,
}

/// Decrements the active count when the reconcile task ends, aborted or not.
struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn spawn(sim: &Sim, identity: &str, active: Arc<AtomicUsize>, max_seen: Arc<AtomicUsize>) -> Instance {
    let client = sim.client().await;
    let metrics = ControllerMetrics::register(&mut Default::default());
    let (stop, shutdown) = watch::channel(false);
    let election = Election {
        lease_name: LEASE.into(),
        namespace: "default".into(),
        identity: identity.into(),
        duration: DURATION,
        grace: Duration::from_secs(1),
    };
    let m = metrics.clone();
    let task = tokio::spawn(async move {
        run_while_leader(client, election, m, shutdown, move || {
            let active = active.clone();
            let max_seen = max_seen.clone();
            async move {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                let _guard = Active(active);
                std::future::pending::<()>().await;
            }
        })
        .await
    });
    Instance { identity: identity.into(), metrics, stop, task }
}

async fn wait_for_leader(instances: &[Instance], limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let leaders: Vec<usize> =
            (0..instances.len()).filter(|&i| instances[i].metrics.is_leader()).collect();
        if leaders.len() == 1 {
            return leaders[0];
        }
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        assert!(Instant::now() < deadline, "no leader within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_handover_on_stop_and_on_crash() {
    let sim = Sim::start().await;
    let active = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let mut instances = Vec::new();
    for id in ["controller-a", "controller-b", "controller-c"] {
        instances.push(spawn(&sim, id, active.clone(), max_seen.clone()).await);
    }
    let first = wait_for_leader(&instances, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(active.load(Ordering::SeqCst), 1, "exactly one instance reconciles");

    // Graceful stop: the lease is released, a standby takes over well before it would expire.
    let leader = instances.remove(first);
    let stopped_at = Instant::now();
    leader.stop.send(true).unwrap();
    leader.task.await.unwrap().unwrap();
    assert!(!leader.metrics.is_leader());
    let second = wait_for_leader(&instances, DURATION * 3).await;
    eprintln!("handover after stop of {} took {:?}", leader.identity, stopped_at.elapsed());

    // Crash: the leader vanishes without releasing; a standby takes over after expiry.
    let crashed = instances.remove(second);
    let crashed_at = Instant::now();
    crashed.task.abort();
    let _ = crashed.task.await;
    let third = wait_for_leader(&instances, DURATION * 4).await;
    let took = crashed_at.elapsed();
    eprintln!("handover after crash of {} took {took:?}", crashed.identity);
    assert!(took <= DURATION * 4, "standby took {took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(active.load(Ordering::SeqCst), 1);
    assert_eq!(max_seen.load(Ordering::SeqCst), 1, "never two reconciling instances at once");
    let _ = third;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_loses_its_lease_stops_reconciling_at_once() {
    let sim = Sim::start().await;
    let active = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let instances = vec![spawn(&sim, "controller-a", active.clone(), max_seen.clone()).await];
    wait_for_leader(&instances, Duration::from_secs(10)).await;
    // Leadership is reported as the lease is won; its Controller starts an instant later.
    let started = Instant::now();
    while active.load(Ordering::SeqCst) != 1 {
        assert!(started.elapsed() < Duration::from_secs(5), "the leader never started reconciling");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Someone else now holds the Lease (as after an expiry this instance missed).
    let leases: Api<Lease> = Api::namespaced(sim.client().await, "default");
    let takeover = serde_json::json!({"spec": {"holderIdentity": "intruder", "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::jiff::Timestamp::now())}});
    leases.patch(LEASE, &PatchParams::default(), &Patch::Merge(takeover)).await.unwrap();
    let seen = Instant::now();
    while active.load(Ordering::SeqCst) != 0 {
        assert!(seen.elapsed() < Duration::from_secs(3), "still reconciling after losing the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!instances[0].metrics.is_leader());
    eprintln!("stopped {:?} after the lease changed hands", seen.elapsed());
}
