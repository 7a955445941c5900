//! Delete: remove every owned object; PVCs follow the retention policy.

use etcd_operator_api::cluster::{PvcRetention, StorageType};
use etcd_operator_common::ClusterRef;
use kube::ResourceExt;

use crate::ServiceError;
use crate::lifecycle::LifecycleService;

/// What a delete call achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Every owned object is gone (or the cluster never existed).
    pub done: bool,
    /// PVCs kept by the retention policy.
    pub retained_pvcs: Vec<String>,
}

impl LifecycleService {
    /// Removes the cluster's objects. Safe to repeat until `done`.
    #[tracing::instrument(name = "DeleteCluster", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "DeleteCluster"))]
    pub async fn delete_cluster(&self, r: &ClusterRef) -> Result<DeleteOutcome, ServiceError> {
        self.core.locked(r, self.delete_owned(r)).await
    }

    async fn delete_owned(&self, r: &ClusterRef) -> Result<DeleteOutcome, ServiceError> {
        let names = self.core.names(r);
        let m = self.core.managers(&r.namespace);
        let cluster = self.core.clusters.get(&r.namespace, &r.name).await?;
        // Without the object the policy is unknown: keep the data (the safe default).
        let delete_pvcs = cluster.as_ref().is_some_and(|c| {
            c.spec.storage.type_ == StorageType::Persistent
                && c.spec.pvc_retention_policy.when_deleted == PvcRetention::Delete
        });

        m.pdbs.delete(&names.pdb()).await?;
        m.statefulsets.delete(&names.statefulset()).await?;
        m.services.delete(&names.client_service()).await?;
        m.services.delete(&names.peer_service()).await?;
        m.config_maps.delete(&names.config_map()).await?;

        let pvcs = m.pvcs.list(&names.selector_string()).await?;
        let mut retained_pvcs = Vec::new();
        let mut pvcs_left = false;
        for pvc in pvcs {
            if delete_pvcs {
                if pvc.metadata.deletion_timestamp.is_none() {
                    m.pvcs.delete(&pvc.name_any()).await?;
                }
                pvcs_left = true;
            } else {
                retained_pvcs.push(pvc.name_any());
            }
        }
        retained_pvcs.sort();
        let sts_left = m.statefulsets.get(&names.statefulset()).await?.is_some();
        tracing::info!(cluster = %r, sts_left, pvcs_left, retained = retained_pvcs.len(), "delete");
        Ok(DeleteOutcome { done: !sts_left && !pvcs_left, retained_pvcs })
    }
}
