//! The lifecycle controller: create, update and delete clusters.
//!
//! A finalizer keeps the EtcdCluster until the cluster-service reports every
//! owned object gone (PVCs as the retention policy says).

use std::sync::Arc;

use etcd_operator_api::EtcdCluster;
use etcd_operator_proto::v1alpha1 as pb;
use kube::{
    Api, ResourceExt,
    runtime::{
        controller::Action,
        finalizer::{self, Event, finalizer},
    },
};

use super::{RESYNC, action, cluster_ref, observed};
use crate::{ControllerError, runtime::Context};

/// Finalizer the lifecycle controller puts on every EtcdCluster.
pub const FINALIZER: &str = "etcd.operator.dev/cleanup";

/// Reconciles one cluster.
pub async fn reconcile(cluster: Arc<EtcdCluster>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    observed(&ctx, &cluster.clone(), async {
        let namespace = cluster
            .namespace()
            .ok_or_else(|| ControllerError::InvalidObject("EtcdCluster without namespace".into()))?;
        let api: Api<EtcdCluster> = Api::namespaced(ctx.kube.clone(), &namespace);
        finalizer(&api, FINALIZER, cluster, |event| async {
            match event {
                Event::Apply(c) => apply(&c, &ctx).await,
                Event::Cleanup(c) => cleanup(&c, &ctx).await,
            }
        })
        .await
        .map_err(|e| match e {
            finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
            other => ControllerError::Finalizer(other.to_string()),
        })
    })
    .await
}

/// A cluster never reconciled yet is created; otherwise updated towards its spec.
async fn apply(cluster: &EtcdCluster, ctx: &Context) -> Result<Action, ControllerError> {
    let r = cluster_ref(cluster)?;
    let first_time = cluster.status.as_ref().and_then(|s| s.observed_generation).is_none();
    let requeue = if first_time {
        let req = pb::CreateClusterRequest { cluster: Some(r), spec: None };
        let resp = ctx.rpc.call("ClusterService", "CreateCluster", |c| {
            let req = c.request(req.clone());
            async move { c.clusters().create_cluster(req).await }
        });
        resp.await?.requeue
    } else {
        let req = pb::UpdateClusterRequest { cluster: Some(r), spec: None, update_mask: None };
        let resp = ctx.rpc.call("ClusterService", "UpdateCluster", |c| {
            let req = c.request(req.clone());
            async move { c.clusters().update_cluster(req).await }
        });
        resp.await?.requeue
    };
    Ok(action(requeue.as_ref(), RESYNC))
}

/// Deletion: the finalizer stays until the cluster-service reports everything gone.
async fn cleanup(cluster: &EtcdCluster, ctx: &Context) -> Result<Action, ControllerError> {
    // The EtcdCluster is being deleted: its finalizer's cleanup, never forced.
    let req = pb::DeleteClusterRequest { cluster: Some(cluster_ref(cluster)?), force: false };
    let resp = ctx
        .rpc
        .call("ClusterService", "DeleteCluster", |c| {
            let req = c.request(req.clone());
            async move { c.clusters().delete_cluster(req).await }
        })
        .await?;
    if resp.done {
        if !resp.retained_pvcs.is_empty() {
            tracing::info!(pvcs = ?resp.retained_pvcs, "deleted; volumes retained by policy");
        }
        Ok(Action::await_change())
    } else {
        Err(ControllerError::DeletionInProgress)
    }
}

/// Runs the lifecycle controller until shutdown or loss of leadership.
pub async fn run(ctx: Arc<Context>) {
    super::run_on_clusters(ctx, reconcile, super::Owns::All, super::Exports::Nothing).await;
}
