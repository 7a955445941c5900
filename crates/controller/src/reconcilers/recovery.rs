//! The recovery controller: asks the cluster-service, for every cluster and
//! periodically, first to recover a lost quorum (which it only does when the
//! cluster opted in and the loss outlasted its grace period), then to replace
//! a member etcd has not heard from for longer than the service's grace
//! period; while either runs it comes back as the answer says. Whether and
//! what to recover, and whether it is safe, the service decides.

use std::sync::Arc;

use etcd_operator_api::EtcdCluster;
use etcd_operator_proto::v1alpha1 as pb;
use kube::runtime::controller::Action;

use super::{at_least_every, cluster_ref, health::jittered, observed, seen_generation};
use crate::{ControllerError, runtime::Context};

/// Checks one cluster.
pub async fn reconcile(cluster: Arc<EtcdCluster>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    if cluster.metadata.deletion_timestamp.is_some() || cluster.spec.paused || cluster.spec.size == 0 {
        return Ok(Action::await_change());
    }
    observed(&ctx, &cluster, async {
        let r = cluster_ref(&cluster)?;
        let next = jittered(ctx.config.probe_interval, &format!("{}/{}", r.namespace, r.name));
        let req =
            pb::RecoverQuorumRequest { cluster: Some(r.clone()), seen_generation: seen_generation(&cluster) };
        let quorum = ctx
            .rpc
            .call("RecoveryService", "RecoverQuorum", |c| {
                let req = c.request(req.clone());
                async move { c.recovery().recover_quorum(req).await }
            })
            .await?;
        // A recovery in progress (or a loss within its grace period) comes first; the service says
        // whether quorum holds, which replacing a member needs.
        if !quorum.quorum_holds {
            tracing::info!(decision = quorum.decision, "quorum recovery");
            return Ok(at_least_every(quorum.requeue.as_ref(), next));
        }
        let req = pb::ReplaceMemberRequest { cluster: Some(r), member: String::new() };
        let resp = ctx
            .rpc
            .call("RecoveryService", "ReplaceMember", |c| {
                let req = c.request(req.clone());
                async move { c.recovery().replace_member(req).await }
            })
            .await?;
        Ok(at_least_every(resp.requeue.as_ref(), next))
    })
    .await
}

/// Runs the recovery controller until shutdown or loss of leadership.
pub async fn run(ctx: Arc<Context>) {
    super::run_on_clusters(ctx, reconcile, super::Owns::Nothing, super::Exports::Nothing).await;
}
