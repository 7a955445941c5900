//! A real etcd cluster for service-level tests: kube-sim with its node runs
//! the member pods (real etcd processes, their own IPs, cluster DNS), and an
//! in-process Services reaches them through the node's hosts file.

use std::time::{Duration, Instant};

use etcd_operator_api::EtcdClusterSpec;
use etcd_operator_client::{
    etcd::{EndpointRewrite, MemberInfo},
    metrics::EtcdMetrics,
    storage::ObjectStorage,
};
use etcd_operator_common::ClusterRef;
use etcd_operator_resource::templates::RestoreAgent;
use etcd_operator_service::backup::decide::endpoint::AllowedEndpoint;
use etcd_operator_service::{ClusterOutcome, ServiceConfig, ServiceError, Services};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{Api, Client};
use kube_sim::KubeSim;

mod writes;
/// kube-sim with a node, the CRDs, a Services, and one cluster `default/demo`.
pub struct RealCluster {
    /// The API server and node.
    pub sim: KubeSim,
    /// A client for the test's own reads.
    pub client: Client,
    /// The services under test (one replica).
    pub services: Services,
    /// The cluster.
    pub r: ClusterRef,
    /// How cluster DNS names reach the pods from the test process.
    pub rewrite: EndpointRewrite,
    /// The service's gRPC API, as controllers call it.
    pub grpc_endpoint: String,
    dir: tempfile::TempDir,
}

/// Spec of the test cluster: etcd 3.4.23 (the local binary), claims kept on scale down.
/// With operator-managed TLS in the TLS variant ([`crate::secure`]).
pub fn spec(size: i32) -> EtcdClusterSpec {
    crate::secure::variant(
        serde_json::from_value(serde_json::json!({
            "size": size, "version": "3.4.23", "storage": {"size": "1Gi"},
            "pvcRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"}
        }))
        .expect("spec"),
    )
}

/// `spec(size)` with `spec.tls` as given (whatever the variant).
pub fn tls_spec(size: i32, tls: serde_json::Value) -> EtcdClusterSpec {
    let mut s = serde_json::to_value(spec(size)).expect("spec");
    s["tls"] = tls;
    serde_json::from_value(s).expect("spec with tls")
}

impl RealCluster {
    /// Starts everything and waits until a cluster of `size` members runs.
    pub async fn start(size: i32, lock_duration: Duration) -> Self {
        Self::start_with(spec(size), lock_duration).await
    }

    /// [`RealCluster::start`] with a spec of the test's own.
    pub async fn start_with(spec: EtcdClusterSpec, lock_duration: Duration) -> Self {
        let spec = crate::secure::variant(spec);
        let dir = tempfile::tempdir().expect("temp dir");
        let (sim, client) = crate::sim_with_node(dir.path()).await;
        let hosts = sim.node().expect("node").hosts_file().to_path_buf();
        let rewrite = EndpointRewrite::default().with_hosts_file(Some(hosts));
        let snapshots = ObjectStorage::local(&dir.path().join("snapshots")).expect("snapshot dir");
        // The gRPC API on every address, so pods (restore agents) reach it through the node's bridge.
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.expect("gRPC port");
        let port = listener.local_addr().expect("address").port();
        let host = sim.node().expect("node").host_ip();
        let mut config = ServiceConfig {
            lock_duration,
            snapshots: Some(snapshots),
            backup_volume_root: Some(dir.path().join("backup-volumes")),
            restore_agent: RestoreAgent {
                endpoint: format!("http://{host}:{port}"),
                ..RestoreAgent::default()
            },
            // Tests replace a dead member after seconds, not minutes.
            // Longer than observing a member that is gone can take (a connect and a request
            // timeout), so a call right after a member is seen down is still within it.
            replace_grace: Duration::from_secs(6),
            // And defragment databases of a few MiB.
            maintenance: etcd_operator_service::health::MaintenancePolicy {
                min_db_size: 1 << 20,
                ..Default::default()
            },
            // The tests' S3 servers (moto) listen on loopback ports.
            s3_endpoints: vec![AllowedEndpoint::parse("http://127.0.0.1").expect("origin")],
            ..ServiceConfig::default()
        };
        config.etcd.rewrite = rewrite.clone();
        config.etcd.connect_timeout = Duration::from_secs(1);
        config.etcd.request_timeout = Duration::from_secs(3);
        let service = Services::new(client.clone(), config, EtcdMetrics::default());
        let metrics = etcd_operator_telemetry::metrics::RpcMetrics::register(
            &mut prometheus_client::registry::Registry::default(),
        );
        // Plaintext: these tests are about etcd; the API's TLS is tested in api_access and e2e.
        tokio::spawn(cluster_service::grpc::serve(
            listener,
            cluster_service::grpc::Transport::Plaintext,
            service.clone(),
            crate::identity::auth(&client, None),
            Default::default(),
            metrics,
            std::future::pending(),
        ));
        let r = ClusterRef { namespace: "default".into(), name: "demo".into() };
        let grpc_endpoint = format!("http://127.0.0.1:{port}");
        let this = Self { sim, client, services: service, r, rewrite, grpc_endpoint, dir };
        Box::pin(this.services.lifecycle.create_cluster(&this.r, Some(spec))).await.expect("CreateCluster");
        this.converge("the cluster running", Duration::from_secs(60), || {
            this.services.lifecycle.update_cluster(&this.r, None)
        })
        .await;
        this.wait_for_auth(&this.r.clone()).await;
        this
    }

    /// With spec.auth, probes health (which turns authentication on) until AuthReady is True.
    pub async fn wait_for_auth(&self, r: &ClusterRef) {
        let clusters = Api::<etcd_operator_api::EtcdCluster>::namespaced(self.client.clone(), &r.namespace);
        let cluster = clusters.get(&r.name).await.expect("cluster");
        if !cluster.spec.auth.is_some_and(|a| a.enabled) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.services.health.check_health(r).await;
            let ready = out.as_ref().ok().and_then(|o| {
                o.status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == etcd_operator_api::cluster::CONDITION_AUTH_READY)
            });
            if ready.is_some_and(|c| c.status == etcd_operator_api::ConditionStatus::True) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "authentication of {r} not ready: {ready:?} {:?}",
                out.as_ref().err()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Calls `call` (retrying ABORTED and UNAVAILABLE) until it answers without a requeue.
    pub async fn converge<F, Fut>(&self, what: &str, limit: Duration, mut call: F) -> ClusterOutcome
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<ClusterOutcome, ServiceError>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            // Boxed: service futures are large, and tests hold several at once.
            let result = Box::pin(call()).await;
            let wait = match &result {
                Ok(out) if out.requeue_after.is_none() => return result.expect("checked"),
                Ok(out) => out.requeue_after.unwrap_or_default().min(Duration::from_secs(1)),
                Err(e) if e.is_retryable() => Duration::from_millis(300),
                // A refusal for the cluster's health now (a member not answering) is retried, as the controller does.
                Err(ServiceError::FailedPrecondition(why)) => {
                    let members =
                        self.services.lifecycle.get_cluster_status(&self.r).await.map(|o| o.status.members);
                    eprintln!("{what}: refused: {why}; members: {members:?}");
                    Duration::from_secs(1)
                }
                Err(e) => panic!("{what}: {e}"),
            };
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; last answer {result:?}"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Where the service finds the claims mounted for namespace `default`
    /// (`<--backup-volume-root>/default/<claimName>`).
    pub fn backup_volume_root(&self) -> std::path::PathBuf {
        self.dir.path().join("backup-volumes/default")
    }

    /// UIDs of every claim in namespace `default`, sorted: equal before and after means no claim
    /// was deleted or recreated.
    pub async fn claim_uids(&self) -> Vec<String> {
        use k8s_openapi::api::core::v1::PersistentVolumeClaim;
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), "default");
        let list = pvcs.list(&kube::api::ListParams::default()).await.expect("list claims");
        let mut uids: Vec<String> = list.items.into_iter().filter_map(|p| p.metadata.uid).collect();
        uids.sort();
        uids
    }

    /// Where ScaleToZero's snapshots are stored.
    pub fn snapshot_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("snapshots")
    }

    /// An etcd-client connection to every member the StatefulSet runs (through cluster DNS).
    pub async fn etcd(&self) -> etcd_client::Client {
        self.etcd_of("demo", self.replicas().await).await
    }

    /// An etcd-client connection to `members` members of cluster `name` in `default`.
    pub async fn etcd_of(&self, name: &str, members: i32) -> etcd_client::Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        let scheme = crate::secure::scheme(&self.client, name).await;
        loop {
            let endpoints: Vec<String> = (0..members)
                .map(|i| {
                    self.rewrite
                        .apply(&format!("{scheme}://{name}-{i}.{name}.default.svc.cluster.local:2379"))
                })
                // A pod without an address yet maps to a refusing port; the balanced client would pick it.
                .filter(|e| !e.ends_with("127.0.0.1:1"))
                .collect();
            // Right after pods restart none may have an address yet: wait for one.
            if !endpoints.is_empty() {
                return self.connect(name, endpoints).await.expect("etcd connects");
            }
            assert!(Instant::now() < deadline, "no member of {name} got an address");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A connection to `endpoints` of cluster `name`, over TLS with the operator's client
    /// certificate when the cluster has spec.tls.
    pub async fn connect(
        &self,
        name: &str,
        endpoints: Vec<String>,
    ) -> Result<etcd_client::Client, etcd_client::Error> {
        let options = crate::secure::connect_options(&self.client, name).await;
        etcd_client::Client::connect(endpoints, options).await
    }

    /// The client endpoint of `member` of cluster `name`, rewritten to its pod's address.
    pub async fn member_endpoint(&self, name: &str, member: &str) -> String {
        let scheme = crate::secure::scheme(&self.client, name).await;
        self.rewrite.apply(&format!("{scheme}://{member}.{name}.default.svc.cluster.local:2379"))
    }

    /// Moves leadership to member `name` of `demo`, if another member leads (etcd moves it only
    /// when asked through the leader).
    pub async fn lead_from(&self, name: &str) {
        let to = self.members().await.iter().find(|m| m.name == name).map(|m| m.id).expect("member");
        let leader = self.etcd().await.status().await.expect("status").leader();
        if leader == to {
            return;
        }
        let members = self.members().await;
        let leader_name = &members.iter().find(|m| m.id == leader).expect("the leader is a member").name;
        let endpoint = self.member_endpoint("demo", leader_name).await;
        let mut on_leader = self.connect("demo", vec![endpoint]).await.expect("leader connects");
        on_leader.move_leader(to).await.expect("leadership moves");
    }

    /// Membership as etcd reports it.
    pub async fn members(&self) -> Vec<MemberInfo> {
        let mut etcd = self.etcd().await;
        let list = etcd.member_list().await.expect("member list");
        let mut out: Vec<MemberInfo> = list.members().iter().map(MemberInfo::from).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// StatefulSet replicas.
    pub async fn replicas(&self) -> i32 {
        let sts =
            Api::<StatefulSet>::namespaced(self.client.clone(), "default").get("demo").await.expect("sts");
        sts.spec.and_then(|s| s.replicas).unwrap_or_default()
    }

    /// Asserts the invariants scaling must keep: `size` voting members, no learners, one pod per member.
    pub async fn assert_settled(&self, size: usize) {
        let members = self.members().await;
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(members.len(), size, "members {names:?}");
        assert!(members.iter().all(|m| !m.is_learner), "no learner may be left: {members:?}");
        let expected: Vec<String> = (0..size).map(|i| format!("demo-{i}")).collect();
        assert_eq!(names, expected, "members are the lowest ordinals");
        assert_eq!(self.replicas().await, size as i32, "one pod per member");
    }
}

/// How an injected crash's panic message starts.
const INJECTED: &str = "injected crash at";

/// Injected crashes are expected: their backtraces would bury a real failure's message in the
/// test output (CI keeps only part of it), so they print one line; every other panic as before.
fn quiet_injected_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload().downcast_ref::<String>().map(String::as_str);
            match message {
                Some(m) if m.starts_with(INJECTED) => eprintln!("{m}"),
                _ => default(info),
            }
        }));
    });
}

impl RealCluster {
    /// Calls `call` until the `nth` (0-based) evaluation of failpoint `point` crashes it (a panic,
    /// leaving the cluster lock to expire as a dead replica's would); fails if it converges first.
    pub async fn crash_at<F, Fut>(&self, point: &str, nth: usize, call: F)
    where
        F: Fn(Services, ClusterRef) -> Fut,
        Fut: Future<Output = Result<ClusterOutcome, ServiceError>> + Send + 'static,
    {
        let skip = if nth > 0 { format!("{nth}*off->") } else { String::new() };
        quiet_injected_crashes();
        fail::cfg(point, &format!("{skip}1*panic({INJECTED} {point})")).expect("failpoint");
        loop {
            let task = tokio::spawn(call(self.services.clone(), self.r.clone()));
            match task.await {
                Err(e) if e.is_panic() => break,
                Ok(Ok(out)) if out.requeue_after.is_none() => {
                    panic!("converged without passing {point} #{nth}")
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        fail::remove(point);
    }
}

impl RealCluster {
    /// The context controller `name` would run with against this service's gRPC API, its calls
    /// bounded by `rpc_timeout`.
    pub async fn controller_context(
        &self,
        name: &'static str,
        rpc_timeout: Duration,
    ) -> std::sync::Arc<etcd_operator_controller::runtime::Context> {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        // Never asked to stop: a dropped sender would read as shutdown.
        std::mem::forget(stop);
        let (client, dir) = (self.client.clone(), self.dir.path());
        crate::controller_context(name, client, dir, &self.grpc_endpoint, rpc_timeout, shutdown).await
    }

    /// Takes backup `name` of `demo` into claim directory `backups` and waits until it succeeded.
    pub async fn backup(&self, name: &str) -> etcd_operator_api::EtcdBackupStatus {
        use etcd_operator_api::{EtcdBackup, backup::BackupPhase};
        std::fs::create_dir_all(self.backup_volume_root().join("backups")).expect("backup claim dir");
        let backup: EtcdBackup = serde_json::from_value(serde_json::json!({
            "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackup",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterName": "demo", "storage": {"volume": {"claimName": "backups"}}}
        }))
        .expect("backup");
        Api::<EtcdBackup>::namespaced(self.client.clone(), "default")
            .create(&kube::api::PostParams::default(), &backup)
            .await
            .expect("create EtcdBackup");
        let service = self.services.backup.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match Box::pin(service.run_backup("default", name)).await {
                Ok(out) if out.requeue_after.is_none() => {
                    assert_eq!(out.status.phase, BackupPhase::Succeeded, "{out:?}");
                    return out.status;
                }
                Ok(_) => {}
                Err(e) if e.is_retryable() => {}
                Err(e) => panic!("backup: {e}"),
            }
            assert!(Instant::now() < deadline, "backup did not finish");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
