//! The lifecycle: create, update, delete and observe clusters.

pub(crate) mod apply;
pub mod decide;
mod delete;
mod record;

pub use delete::DeleteOutcome;

use std::time::Duration;

use etcd_operator_api::{EtcdCluster, EtcdClusterSpec};
use etcd_operator_common::ClusterRef;

use crate::{
    ClusterOutcome, ClusterService, ServiceError, lifecycle::decide::status::ScalingRecord,
    observe::Observation, plan::RolloutDecision, validation::validate_spec,
};

/// How soon to look again while a cluster is converging.
const CONVERGING_REQUEUE: Duration = Duration::from_secs(5);

impl ClusterService {
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
        self.locked(r, async {
            if let Some(spec) = spec {
                match self.clusters.get(&r.namespace, &r.name).await? {
                    Some(existing) if existing.spec != spec => {
                        return Err(ServiceError::AlreadyExists(format!(
                            "EtcdCluster {r} already exists with a different spec; use UpdateCluster"
                        )));
                    }
                    Some(_) => {}
                    None => {
                        self.api_writer.apply_spec(&r.namespace, &r.name, &spec).await?;
                    }
                }
            }
            self.reconcile(r).await
        })
        .await
    }

    /// Moves the cluster towards its spec; with a spec, first replaces the EtcdCluster's spec.
    #[tracing::instrument(name = "UpdateCluster", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "UpdateCluster"))]
    pub async fn update_cluster(
        &self,
        r: &ClusterRef,
        spec: Option<EtcdClusterSpec>,
    ) -> Result<ClusterOutcome, ServiceError> {
        if let Some(spec) = &spec {
            validate_spec(spec)?;
        }
        self.locked(r, async {
            if let Some(spec) = spec {
                let existing = self.get(r).await?;
                self.check_immutable(&existing, &spec).await?;
                self.api_writer.apply_spec(&r.namespace, &r.name, &spec).await?;
            }
            self.reconcile(r).await
        })
        .await
    }

    /// Observes the cluster, records the status and returns it.
    #[tracing::instrument(name = "GetClusterStatus", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "GetClusterStatus"))]
    pub async fn get_cluster_status(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        Ok(self.status_and_observation(r).await?.0)
    }

    /// [`Self::get_cluster_status`], also returning what was observed (for decisions that follow).
    pub(crate) async fn status_and_observation(
        &self,
        r: &ClusterRef,
    ) -> Result<(ClusterOutcome, Observation), ServiceError> {
        // NOT_FOUND for an unknown cluster before anything is observed.
        self.get(r).await?;
        let m = self.managers(&r.namespace);
        let names = self.names(r);
        let sts = m.statefulsets.get(&names.statefulset()).await?;
        let existing_cm = m.config_maps.get(&names.config_map()).await?;
        let observation = self.observe_with(r, sts.as_ref()).await;
        // Observing takes seconds while members are down: decide from what was recorded meanwhile,
        // and write only onto that (ABORTED if another writer came in between, instead of undoing it).
        let cluster = self.get(r).await?;
        let spec_check = validate_spec(&cluster.spec);
        // The same rollout decision the lifecycle makes, so both report the same progress.
        let rollout = match (&sts, &spec_check) {
            (Some(sts), Ok(())) => {
                self.rollout_decision(&cluster, sts, existing_cm.as_ref(), &observation)?
            }
            _ => RolloutDecision::Proceed,
        };
        let restore = cluster.status.as_ref().and_then(|s| s.restore.as_ref());
        let write = record::StatusWrite {
            spec_check: &spec_check,
            rollout: &rollout,
            scaling: ScalingRecord::Unchanged,
            restore,
            only_onto_read: true,
        };
        let out = self.write_status(&cluster, &observation, write).await?;
        Ok((out, observation))
    }

    /// Recorded status of every cluster in a namespace (all when empty); no etcd calls.
    #[tracing::instrument(name = "ListClusters", skip(self), fields(operation = "ListClusters"))]
    pub async fn list_clusters(&self, namespace: &str) -> Result<Vec<EtcdCluster>, ServiceError> {
        Ok(self.clusters.list(namespace).await?)
    }
}
