//! The lifecycle: create, update, delete and observe clusters.

pub(crate) mod apply;
pub mod decide;
mod delete;
mod unchanged;
mod update;

pub use delete::DeleteOutcome;
pub use update::{SpecPatch, SpecUpdate};

use std::sync::Arc;

use crate::core::Core;
use crate::restore::RestoreService;
use crate::security::SecurityService;

use etcd_operator_api::{EtcdCluster, EtcdClusterSpec};
use etcd_operator_common::ClusterRef;

use crate::{ClusterOutcome, ServiceError, validation::validate_spec};

/// The lifecycle of clusters (the design's ClusterService): create, update, delete, and the
/// status they report.
#[derive(Clone)]
pub struct LifecycleService {
    pub(crate) core: Arc<Core>,
    /// Restoring from a backup or snapshot, which this service hands work to.
    pub(crate) restore: RestoreService,
    /// Certificates, issued before the members that mount them.
    pub(crate) security: SecurityService,
    /// What this process applied last, so that applies which would change nothing are skipped.
    applied: unchanged::AppliedMemo,
}

impl LifecycleService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self {
            restore: RestoreService::new(core.clone()),
            security: SecurityService::new(core.clone()),
            applied: unchanged::memo(),
            core,
        }
    }
}

impl LifecycleService {
    /// Creates the cluster's objects; with a spec, first creates the EtcdCluster itself.
    #[tracing::instrument(name = "CreateCluster", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "CreateCluster"))]
    pub async fn create_cluster(
        &self,
        r: &ClusterRef,
        spec: Option<EtcdClusterSpec>,
    ) -> Result<ClusterOutcome, ServiceError> {
        if let Some(spec) = &spec {
            validate_spec(spec)?;
        }
        self.core
            .locked(r, async {
                if let Some(spec) = spec {
                    match self.core.clusters.get(&r.namespace, &r.name).await? {
                        Some(existing) if existing.spec != spec => {
                            return Err(ServiceError::AlreadyExists(format!(
                                "EtcdCluster {r} already exists with a different spec; use UpdateCluster"
                            )));
                        }
                        Some(_) => {}
                        None => {
                            let began = std::time::Instant::now();
                            let created = self.core.api_writer.apply_spec(&r.namespace, &r.name, &spec, None);
                            self.core.reads.saw(began, &created.await?);
                        }
                    }
                }
                self.reconcile(r).await
            })
            .await
    }

    /// Moves the cluster towards its spec; with an update, first changes the EtcdCluster's spec
    /// (the whole of it, or the fields a patch names) and validates the result.
    #[tracing::instrument(name = "UpdateCluster", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "UpdateCluster"))]
    pub async fn update_cluster(
        &self,
        r: &ClusterRef,
        update: Option<SpecUpdate>,
    ) -> Result<ClusterOutcome, ServiceError> {
        if let Some(SpecUpdate::Replace(spec)) = &update {
            validate_spec(spec)?;
        }
        self.core
            .locked(r, async {
                if let Some(update) = update {
                    let existing = self.core.get(r).await?;
                    let read_at =
                        update.merged().then(|| existing.metadata.resource_version.clone()).flatten();
                    let spec = update.applied_to(&existing.spec);
                    validate_spec(&spec)?;
                    self.check_immutable(&existing, &spec).await?;
                    let began = std::time::Instant::now();
                    let writer = &self.core.api_writer;
                    let written = writer.apply_spec(&r.namespace, &r.name, &spec, read_at.as_deref()).await?;
                    self.core.reads.saw(began, &written);
                }
                self.reconcile(r).await
            })
            .await
    }

    /// The status as recorded by the last reconcile or probe (GetClusterStatus's default): from
    /// the watch cache when it has the cluster, else one read. Nothing is observed or written.
    #[tracing::instrument(name = "GetClusterStatus", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "GetClusterStatus", fresh = false))]
    pub async fn recorded_cluster_status(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        let cluster = match self.core.reads.cached(r) {
            Some(cluster) => cluster,
            None => Arc::new(self.core.get(r).await?),
        };
        Ok(crate::status::outcome(&cluster, cluster.status.clone().unwrap_or_default()))
    }

    /// Observes the cluster, records the status and returns it (GetClusterStatus with `fresh`).
    #[tracing::instrument(name = "GetClusterStatus", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "GetClusterStatus", fresh = true))]
    pub async fn get_cluster_status(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        Ok(self.core.status_and_observation(r).await?.0)
    }

    /// Recorded status of every cluster in a namespace (all when empty); no etcd calls.
    #[tracing::instrument(name = "ListClusters", skip(self), fields(operation = "ListClusters"))]
    pub async fn list_clusters(&self, namespace: &str) -> Result<Vec<EtcdCluster>, ServiceError> {
        Ok(self.core.clusters.list(namespace).await?)
    }
}
