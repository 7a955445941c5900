//! The core every capability's service holds: the Kubernetes client and
//! settings, the per-cluster lock, the managers and names of a cluster's
//! objects, the observation of a cluster, and this replica's long-running
//! tasks. Shared effects extend it in their own modules (`status` writes the
//! status, `steps` runs the state machines, `saved_snapshot` saves snapshots);
//! it depends on no capability.

use std::time::Duration;

use etcd_operator_api::{EtcdCluster, EtcdClusterStatus, cluster::SnapshotRecord};
use etcd_operator_client::{
    etcd::EtcdPool, kubernetes::field_manager, metrics::EtcdMetrics, storage::ObjectVersion,
};
use etcd_operator_common::ClusterRef;
use etcd_operator_resource::{
    managers::{
        ClusterLock, ConfigMapManager, EtcdClusterManager, NetworkPolicyManager, PdbManager, PvcManager,
        SecretManager, ServiceManager, StatefulSetManager,
    },
    names::ClusterNames,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Client;

use crate::{
    ServiceConfig, ServiceError,
    config::component,
    in_flight,
    observe::{Observation, PodState, StatefulSetState, observe_etcd},
    tasks::{BoundedCache, Tasks},
};

/// Result of a call that moves a cluster towards its spec.
#[derive(Clone, Debug)]
pub struct ClusterOutcome {
    /// Status as recorded.
    pub status: EtcdClusterStatus,
    /// Spec generation the status describes.
    pub generation: i64,
    /// Desired size.
    pub desired_size: i32,
    /// When to call again, if the cluster has not converged.
    pub requeue_after: Option<Duration>,
}

impl ClusterOutcome {
    /// The cluster as recorded, nothing changed; call again after `requeue_after`.
    pub(crate) fn recorded(cluster: &EtcdCluster, requeue_after: Option<Duration>) -> Self {
        Self {
            status: cluster.status.clone().unwrap_or_default(),
            generation: cluster.metadata.generation.unwrap_or_default(),
            desired_size: cluster.spec.size,
            requeue_after,
        }
    }
}

/// Finished verifications kept per replica.
const VERIFIED_ENTRIES: usize = 256;

/// What every capability's service shares: one per replica, behind an `Arc`.
pub(crate) struct Core {
    client: Client,
    config: ServiceConfig,
    metrics: EtcdMetrics,
    /// Connections to etcd kept between observations (health probes every interval).
    etcd_pool: EtcdPool,
    /// EtcdCluster reads, and the lifecycle's status writes.
    pub(crate) clusters: EtcdClusterManager,
    /// Status writes of scaling (the operation record).
    pub(crate) scaling_writer: EtcdClusterManager,
    /// Spec writes on behalf of API callers.
    pub(crate) api_writer: EtcdClusterManager,
    pub(crate) lock: ClusterLock,
    /// EtcdCluster reads for looks: the watch cache, and what this process last read or wrote.
    pub(crate) reads: crate::reads::Reads,
    in_flight: in_flight::InFlight,
    /// Verifications of stored copies running here, by location.
    pub(crate) verifications: Tasks<(ObjectVersion, String)>,
    /// Finished verifications, by location and object version: the sha256 read.
    pub(crate) verified: BoundedCache<(String, ObjectVersion), String>,
    /// When this process last wrote each cluster's status (by namespace and name): members'
    /// counters alone are recorded at most every `status::decide::counters::REFRESH`.
    pub(crate) status_written: BoundedCache<(String, String), std::time::Instant>,
    /// The operator's own snapshots being saved here, by key.
    pub(crate) saved_snapshots: Tasks<SnapshotRecord>,
}

/// The managers of one namespace, writing as the lifecycle component.
pub(crate) struct Managers {
    pub statefulsets: StatefulSetManager,
    pub services: ServiceManager,
    pub config_maps: ConfigMapManager,
    pub pdbs: PdbManager,
    pub pvcs: PvcManager,
    pub secrets: SecretManager,
    pub network_policies: NetworkPolicyManager,
}

impl Core {
    /// A service using `client` for Kubernetes.
    pub fn new(client: Client, config: ServiceConfig, metrics: EtcdMetrics) -> Self {
        let lifecycle = field_manager(component::LIFECYCLE);
        Self {
            clusters: EtcdClusterManager::new(client.clone(), &lifecycle),
            scaling_writer: EtcdClusterManager::new(client.clone(), &field_manager(component::SCALING)),
            api_writer: EtcdClusterManager::new(client.clone(), &field_manager(component::API)),
            lock: ClusterLock::new(client.clone(), config.holder_identity.clone(), config.lock_duration),
            reads: crate::reads::Reads::new(),
            in_flight: in_flight::InFlight::default(),
            verifications: Tasks::default(),
            verified: BoundedCache::new(VERIFIED_ENTRIES),
            status_written: BoundedCache::new(8192),
            saved_snapshots: Tasks::default(),
            etcd_pool: EtcdPool::new(config.etcd_idle, metrics.clone()),
            client,
            config,
            metrics,
        }
    }

    pub(crate) fn managers(&self, namespace: &str) -> Managers {
        self.managers_as(namespace, component::LIFECYCLE)
    }

    /// The managers of one namespace, writing as `component`.
    pub(crate) fn managers_as(&self, namespace: &str, component: &str) -> Managers {
        let fm = field_manager(component);
        Managers {
            statefulsets: StatefulSetManager::new(self.client.clone(), namespace, &fm),
            services: ServiceManager::new(self.client.clone(), namespace, &fm),
            config_maps: ConfigMapManager::new(self.client.clone(), namespace, &fm),
            pdbs: PdbManager::new(self.client.clone(), namespace, &fm),
            pvcs: PvcManager::new(self.client.clone(), namespace, &fm),
            secrets: SecretManager::new(self.client.clone(), namespace, &fm),
            network_policies: NetworkPolicyManager::new(self.client.clone(), namespace, &fm),
        }
    }

    pub(crate) fn lock_duration(&self) -> Duration {
        self.config.lock_duration
    }

    pub(crate) fn snapshot_store(&self) -> Option<etcd_operator_client::storage::ObjectStorage> {
        self.config.snapshots.clone()
    }

    /// The template context of a cluster, with this replica's restore agent settings.
    pub(crate) fn template<'a>(
        &self,
        cluster: &'a EtcdCluster,
    ) -> etcd_operator_resource::templates::TemplateContext<'a> {
        etcd_operator_resource::templates::TemplateContext::new(cluster, &self.config.cluster_domain)
            .with_restore_agent(self.config.restore_agent.clone())
            .with_network_policy(self.config.member_network_policy, self.config.operator_pods.clone())
    }

    pub(crate) fn identity(&self) -> String {
        self.config.holder_identity.clone()
    }

    pub(crate) fn kube(&self) -> Client {
        self.client.clone()
    }

    /// Settings of etcd connections before a cluster's TLS is added (`etcd_options` adds it).
    pub(crate) fn plain_etcd_options(&self) -> etcd_operator_client::etcd::EtcdOptions {
        self.config.etcd.clone()
    }

    pub(crate) fn cluster_domain(&self) -> String {
        self.config.cluster_domain.clone()
    }

    pub(crate) fn etcd_metrics(&self) -> EtcdMetrics {
        self.metrics.clone()
    }

    pub(crate) fn etcd_pool(&self) -> &EtcdPool {
        &self.etcd_pool
    }

    pub(crate) fn names(&self, r: &ClusterRef) -> ClusterNames {
        ClusterNames::new(&r.namespace, &r.name, &self.config.cluster_domain)
    }

    pub(crate) fn maintenance_policy(&self) -> crate::config::MaintenancePolicy {
        self.config.maintenance
    }

    pub(crate) fn replace_grace(&self) -> Duration {
        self.config.replace_grace
    }

    pub(crate) fn s3_endpoints(&self) -> &[crate::backup::decide::endpoint::AllowedEndpoint] {
        &self.config.s3_endpoints
    }

    pub(crate) fn backup_volume_root(&self) -> Option<&std::path::Path> {
        self.config.backup_volume_root.as_deref()
    }

    /// Reads a cluster; `None` when it does not exist.
    pub(crate) async fn find(&self, r: &ClusterRef) -> Result<Option<EtcdCluster>, ServiceError> {
        let began = std::time::Instant::now();
        let found = self.clusters.get(&r.namespace, &r.name).await?;
        if let Some(cluster) = &found {
            self.reads.saw(began, cluster);
        }
        Ok(found)
    }

    /// Reads a cluster for a look that acts on nothing without the lock: from the watch cache
    /// when it may answer (see `reads`), else from the API server.
    pub(crate) async fn look(
        &self,
        r: &ClusterRef,
        seen: crate::reads::Seen,
    ) -> Result<EtcdCluster, ServiceError> {
        match self.reads.for_look(r, seen) {
            Some(cluster) => {
                tracing::debug!(version = cluster.metadata.resource_version, "look from the watch cache");
                Ok(cluster)
            }
            None => self.get(r).await,
        }
    }

    pub(crate) async fn get(&self, r: &ClusterRef) -> Result<EtcdCluster, ServiceError> {
        self.find(r).await?.ok_or_else(|| ServiceError::NotFound { kind: "EtcdCluster", name: r.to_string() })
    }

    /// Runs `change` while holding the cluster's lock; ABORTED when another replica holds it.
    ///
    /// `change` is boxed before any state machine holds it: an async fn keeps its arguments in
    /// its own state, and each layer (this one, the lease's `select!`) kept another copy of the
    /// call's whole state (an UpdateCluster in flight was 212 KB; the work itself is 38 KB).
    pub(crate) fn locked<'a, T: Send + 'a>(
        &'a self,
        r: &'a ClusterRef,
        change: impl Future<Output = Result<T, ServiceError>> + Send + 'a,
    ) -> impl Future<Output = Result<T, ServiceError>> + Send + 'a {
        let change = Box::pin(change);
        async move {
            let Some(_entered) = self.in_flight.enter(&r.to_string()) else {
                return Err(ServiceError::Aborted(format!(
                    "EtcdCluster {r} is being changed by another call to this replica; retry later"
                )));
            };
            let what = format!("EtcdCluster {r}");
            let change = async {
                // A step that takes long (tests): an asynchronous delay, so renewal goes on meanwhile.
                if let Some(ms) = locked_delay_ms() {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                change.await
            };
            crate::lease::hold(
                &self.lock,
                &r.namespace,
                &etcd_operator_resource::managers::lock_name(&r.name),
                &what,
                change,
            )
            .await
        }
    }

    /// Reads what Kubernetes and etcd say about a cluster.
    pub(crate) async fn observe(&self, cluster: &EtcdCluster) -> Result<Observation, ServiceError> {
        let r = cluster_ref(cluster);
        let sts = self.managers(&r.namespace).statefulsets.get(&self.names(&r).statefulset()).await?;
        Ok(self.observe_with(cluster, sts.as_ref()).await)
    }

    /// Asks etcd about a cluster whose StatefulSet was already read.
    pub(crate) async fn observe_with(&self, cluster: &EtcdCluster, sts: Option<&StatefulSet>) -> Observation {
        let statefulset = sts.map(StatefulSetState::of);
        let replicas = statefulset.as_ref().map_or(0, |s| s.replicas);
        let names = self.names_of(cluster);
        let certificates = self
            .certificates(cluster)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "certificate Secrets could not be read"))
            .ok()
            .flatten();
        let (etcd, pods) = if replicas > 0 && statefulset.as_ref().is_some_and(|s| s.ready == 0) {
            // No member passes readiness (starting, Pending, or in trouble): the pods first, and
            // etcd only when one of them may answer. A Ready member means the common case: both at once.
            let pods = self.member_pod_states(&names).await;
            let etcd = match pods.as_deref().and_then(crate::observe::none_can_answer) {
                Some(why) => crate::observe::EtcdState::Unreachable(why),
                None => self.etcd_state(cluster, &names, replicas).await,
            };
            (etcd, pods)
        } else {
            // Pods only matter where members are expected (evidence for a quorum that looks lost).
            let listed = async { if replicas > 0 { self.member_pod_states(&names).await } else { None } };
            tokio::join!(self.etcd_state(cluster, &names, replicas), listed)
        };
        Observation { statefulset, etcd, pods, certificates, auth: None }
    }

    /// What etcd says about the cluster's members (every member asked at once).
    async fn etcd_state(
        &self,
        cluster: &EtcdCluster,
        names: &ClusterNames,
        replicas: i32,
    ) -> crate::observe::EtcdState {
        match self.etcd_options(cluster).await {
            Ok(options) => {
                let moving = cluster.transport_move().is_some();
                // Boxed: the observation nests deep enough to overflow the compiler's layout limit.
                Box::pin(observe_etcd(names, replicas, &options, &self.etcd_pool, moving)).await
            }
            Err(e) if replicas > 0 => crate::observe::EtcdState::Unreachable(e.to_string()),
            Err(_) => crate::observe::EtcdState::NotExpected,
        }
    }

    /// The member pods as their kubelet reports them; `None` when they could not be listed
    /// (unknown corroborates nothing).
    async fn member_pod_states(&self, names: &ClusterNames) -> Option<Vec<PodState>> {
        let listed = self.member_pods(&names.namespace).list_members(&names.selector_string()).await;
        let pods =
            listed.inspect_err(|e| tracing::warn!(error = %e, "member pods could not be listed")).ok()?;
        Some(pods.iter().map(PodState::of).collect())
    }
}

impl Core {
    /// Member pods (read by observations; deleted only by member replacement).
    pub(crate) fn member_pods(
        &self,
        namespace: &str,
    ) -> etcd_operator_resource::managers::Manager<k8s_openapi::api::core::v1::Pod> {
        etcd_operator_resource::managers::Manager::new(
            self.kube(),
            namespace,
            &field_manager(component::RECOVERY),
        )
    }

    /// Names of the cluster's claims that are not being deleted (a claim being deleted holds no
    /// data anyone will use again).
    pub(crate) async fn live_claims(&self, r: &ClusterRef) -> Result<Vec<String>, ServiceError> {
        let pvcs = self.managers(&r.namespace).pvcs.list(&self.names(r).selector_string()).await?;
        Ok(pvcs
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.name)
            .collect())
    }
}

/// `spec.paused` means nothing changes: every call that would change the cluster (scaling, stop,
/// restart, replacement, quorum recovery, defragmentation) is refused naming the field.
pub(crate) fn ensure_not_paused(cluster: &EtcdCluster) -> Result<(), ServiceError> {
    if !cluster.spec.paused {
        return Ok(());
    }
    Err(ServiceError::FailedPrecondition(format!(
        "EtcdCluster {} has spec.paused: true: nothing is changed (no scaling, stop, restart, member \
         replacement, quorum recovery or maintenance) until it is unpaused",
        cluster_ref(cluster)
    )))
}

/// The reference of a cluster object read from the API server.
pub(crate) fn cluster_ref(cluster: &EtcdCluster) -> ClusterRef {
    ClusterRef {
        namespace: cluster.metadata.namespace.clone().unwrap_or_default(),
        name: cluster.metadata.name.clone().unwrap_or_default(),
    }
}

/// A delay asked for by failpoint `cluster::locked` (`return(ms)`; tests).
fn locked_delay_ms() -> Option<u64> {
    fail::fail_point!("cluster::locked", |ms| ms.and_then(|m| m.parse::<u64>().ok()));
    None
}
