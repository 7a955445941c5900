//! The scaling controller: when spec.size differs from the membership etcd
//! reports (status.currentSize), or a scaling operation is recorded as in
//! progress, it asks the cluster-service to take the next steps, and comes
//! back when the answer says. A pod that is gone for a while changes neither
//! number, so it never shrinks a cluster.

use std::{sync::Arc, time::Duration};

use etcd_operator_api::EtcdCluster;
use etcd_operator_proto::v1alpha1 as pb;
use kube::runtime::controller::Action;

use super::{RESYNC, action, cluster_ref, observed};
use crate::{ControllerError, runtime::Context};

/// How often a cluster whose size differs but cannot be scaled yet is looked at again.
const NOT_READY: Duration = Duration::from_secs(10);

/// Which call a cluster needs now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Nothing to do.
    None,
    /// ScaleUp to the spec's size.
    Up,
    /// ScaleDown to the spec's size.
    Down,
    /// ScaleToZero: size 0 asked of a running cluster.
    ToZero,
    /// RestartFromZero: a stopped cluster asked to run again.
    FromZero,
    /// Not yet: the cluster has not formed.
    Later,
}

/// Translates the object into the call: a recorded operation continues as itself; otherwise the
/// spec's size against the membership.
pub fn call_for(cluster: &EtcdCluster) -> Call {
    let spec = &cluster.spec;
    if cluster.metadata.deletion_timestamp.is_some() || spec.paused {
        return Call::None;
    }
    if !cluster.formed() {
        return Call::Later;
    }
    let Some(status) = cluster.status.as_ref() else { return Call::Later };
    match status.operation.as_ref().map(|op| op.type_.as_str()) {
        Some("ScaleUp") => return Call::Up,
        Some("ScaleDown") => return Call::Down,
        Some("ScaleToZero") => return Call::ToZero,
        Some("RestartFromZero") => return Call::FromZero,
        _ => {}
    }
    let stopped = status.stopped.is_some();
    match spec.size.cmp(&status.current_size) {
        _ if spec.size == 0 && stopped => Call::None,
        _ if spec.size == 0 => Call::ToZero,
        _ if stopped => Call::FromZero,
        std::cmp::Ordering::Greater => Call::Up,
        std::cmp::Ordering::Less => Call::Down,
        std::cmp::Ordering::Equal => Call::None,
    }
}

/// Reconciles one cluster.
pub async fn reconcile(cluster: Arc<EtcdCluster>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    observed(&ctx, &cluster, async {
        let target = cluster.spec.size;
        let requeue = match call_for(&cluster) {
            Call::None => return Ok(Action::requeue(RESYNC)),
            Call::Later => return Ok(Action::requeue(NOT_READY)),
            Call::Up => {
                let req = pb::ScaleUpRequest { cluster: Some(cluster_ref(&cluster)?), target };
                let resp = ctx.rpc.call("ScalingService", "ScaleUp", |c| {
                    let req = c.request(req.clone());
                    async move { c.scaling().scale_up(req).await }
                });
                resp.await?.requeue
            }
            Call::Down => {
                let req = pb::ScaleDownRequest { cluster: Some(cluster_ref(&cluster)?), target };
                let resp = ctx.rpc.call("ScalingService", "ScaleDown", |c| {
                    let req = c.request(req.clone());
                    async move { c.scaling().scale_down(req).await }
                });
                resp.await?.requeue
            }
            Call::ToZero => {
                let req = pb::ScaleToZeroRequest { cluster: Some(cluster_ref(&cluster)?) };
                let resp = ctx.rpc.call("ScalingService", "ScaleToZero", |c| {
                    let req = c.request(req.clone());
                    async move { c.scaling().scale_to_zero(req).await }
                });
                resp.await?.requeue
            }
            Call::FromZero => {
                let req = pb::RestartFromZeroRequest { cluster: Some(cluster_ref(&cluster)?), target };
                let resp = ctx.rpc.call("ScalingService", "RestartFromZero", |c| {
                    let req = c.request(req.clone());
                    async move { c.scaling().restart_from_zero(req).await }
                });
                resp.await?.requeue
            }
        };
        Ok(action(requeue.as_ref(), RESYNC))
    })
    .await
}

/// Runs the scaling controller until shutdown or loss of leadership.
pub async fn run(ctx: Arc<Context>) {
    super::run_on_clusters(ctx, reconcile, false).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(size: i32, current: i32, op: Option<&str>, formed: bool) -> EtcdCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
            "metadata": {"name": "demo", "namespace": "prod"},
            "spec": {"size": size, "version": "3.5.17"},
            "status": {"currentSize": current, "clusterId": if formed { Some("abc") } else { None },
                       "operation": op.map(|t| serde_json::json!({"type": t, "step": "AddingLearner"}))}
        }))
        .unwrap()
    }

    #[test]
    fn size_against_membership_and_recorded_operations_choose_the_call() {
        assert_eq!(call_for(&cluster(3, 1, None, true)), Call::Up);
        assert_eq!(call_for(&cluster(1, 3, None, true)), Call::Down);
        assert_eq!(call_for(&cluster(3, 3, None, true)), Call::None);
        // An operation in flight continues, whatever the sizes say now.
        assert_eq!(call_for(&cluster(1, 3, Some("ScaleUp"), true)), Call::Up);
        assert_eq!(call_for(&cluster(5, 3, Some("ScaleDown"), true)), Call::Down);
        // Lifecycle operations are not scaling's.
        assert_eq!(call_for(&cluster(3, 3, Some("RollingUpdate"), true)), Call::None);
        // Not formed yet: later. Size 0 stops; a stop or restart in flight continues.
        assert_eq!(call_for(&cluster(3, 1, None, false)), Call::Later);
        assert_eq!(call_for(&cluster(0, 3, None, true)), Call::ToZero);
        assert_eq!(call_for(&cluster(0, 3, Some("ScaleToZero"), true)), Call::ToZero);
        assert_eq!(call_for(&cluster(3, 0, Some("RestartFromZero"), true)), Call::FromZero);
    }
}
