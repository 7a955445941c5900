//! Delete: remove every owned object; PVCs follow the retention policy.

use etcd_operator_common::ClusterRef;
use kube::ResourceExt;

use crate::ServiceError;
use crate::lifecycle::{
    LifecycleService,
    decide::{ClaimPlan, claim_plan, delete_refusal, deletes_claims},
};

/// What a delete call achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Every owned object is gone (or the cluster never existed).
    pub done: bool,
    /// PVCs kept by the retention policy.
    pub retained_pvcs: Vec<String>,
}

impl LifecycleService {
    /// Removes the cluster's objects. Safe to repeat until `done`. Only the objects of an
    /// EtcdCluster that is being deleted (or is gone), unless `force`: a call is not how a
    /// cluster is deleted, the EtcdCluster's deletion is.
    #[tracing::instrument(name = "DeleteCluster", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "DeleteCluster"))]
    pub async fn delete_cluster(&self, r: &ClusterRef, force: bool) -> Result<DeleteOutcome, ServiceError> {
        self.core.locked(r, self.delete_owned(r, force)).await
    }

    async fn delete_owned(&self, r: &ClusterRef, force: bool) -> Result<DeleteOutcome, ServiceError> {
        let names = self.core.names(r);
        let m = self.core.managers(&r.namespace);
        let cluster = self.core.clusters.get(&r.namespace, &r.name).await?;
        if let Some(why) = delete_refusal(cluster.as_ref(), force) {
            return Err(ServiceError::FailedPrecondition(why));
        }
        let delete_pvcs = deletes_claims(cluster.as_ref());

        m.pdbs.delete(&names.pdb()).await?;
        m.statefulsets.delete(&names.statefulset()).await?;
        m.services.delete(&names.client_service()).await?;
        m.services.delete(&names.metrics_service()).await?;
        m.services.delete(&names.peer_service()).await?;
        m.config_maps.delete(&names.config_map()).await?;

        let pvcs = m.pvcs.list(&names.selector_string()).await?;
        let claims: Vec<(String, bool)> =
            pvcs.iter().map(|p| (p.name_any(), p.metadata.deletion_timestamp.is_some())).collect();
        let ClaimPlan { delete, retained: retained_pvcs, left: pvcs_left } = claim_plan(&claims, delete_pvcs);
        for claim in &delete {
            m.pvcs.delete(claim).await?;
        }
        let sts_left = m.statefulsets.get(&names.statefulset()).await?.is_some();
        tracing::info!(cluster = %r, sts_left, pvcs_left, retained = retained_pvcs.len(), "delete");
        Ok(DeleteOutcome { done: !sts_left && !pvcs_left, retained_pvcs })
    }
}
