//! The scaling controller: on every change of an EtcdCluster (and at each
//! resync) it asks the cluster-service to converge the membership towards
//! spec.size, and comes back when the answer says. The service picks the
//! direction from the live membership; this controller decides nothing, so a
//! stale status.currentSize (or a pod that is gone for a while) never makes it
//! shrink a cluster.

use std::sync::Arc;

use etcd_operator_api::EtcdCluster;
use etcd_operator_proto::v1alpha1 as pb;
use kube::runtime::controller::Action;

use super::{RESYNC, action, cluster_ref, observed, seen_generation};
use crate::{ControllerError, runtime::Context};

/// Reconciles one cluster.
pub async fn reconcile(cluster: Arc<EtcdCluster>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    observed(&ctx, &cluster, async {
        let req = pb::ConvergeRequest {
            cluster: Some(cluster_ref(&cluster)?),
            seen_generation: seen_generation(&cluster),
        };
        let resp = ctx.rpc.call("ScalingService", "Converge", |c| {
            let req = c.request(req.clone());
            async move { c.scaling().converge(req).await }
        });
        let resp = resp.await?;
        if !resp.reason.is_empty() {
            tracing::debug!(reason = resp.reason, "nothing to scale");
        }
        Ok(action(resp.requeue.as_ref(), RESYNC))
    })
    .await
}

/// Runs the scaling controller until shutdown or loss of leadership.
pub async fn run(ctx: Arc<Context>) {
    super::run_on_clusters(ctx, reconcile, super::Owns::StatefulSets, super::Exports::Nothing).await;
}
