//! Converge: the one call the scaling controller makes. The direction (up,
//! down, stop, restart) is derived here from the membership etcd lists now,
//! not from `status.currentSize`, which a controller reads stale.

use std::time::Duration;

use etcd_operator_api::cluster::OperationType;
use etcd_operator_common::ClusterRef;

use crate::{
    ClusterOutcome, ServiceError,
    config::component,
    observe::EtcdState,
    operation::is_scaling,
    reads::Seen,
    scaling::ScalingService,
    scaling::decide::{Converge, ConvergeInputs, converge},
    status::decide::requeue,
};

/// How soon a cluster that cannot be scaled yet is looked at again.
const NOT_YET: Duration = Duration::from_secs(10);

/// What a convergence did.
#[derive(Clone, Debug)]
pub struct Converged {
    /// The cluster afterwards.
    pub outcome: ClusterOutcome,
    /// The operation it carried on, if any.
    pub operation: Option<OperationType>,
    /// Why it did nothing, when it did nothing.
    pub reason: String,
}

impl ScalingService {
    /// Moves the cluster's membership towards `spec.size`: continues a recorded scaling
    /// operation, or starts the one that the live membership calls for.
    pub async fn converge(&self, r: &ClusterRef) -> Result<Converged, ServiceError> {
        self.converge_seen(r, Seen::default()).await
    }

    /// [`Self::converge`] for a caller that saw generation `seen`: the look may start from the
    /// watch cache (never older than that); a step it starts reads again under the lock.
    #[tracing::instrument(name = "Converge", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "Converge"))]
    pub async fn converge_seen(&self, r: &ClusterRef, seen: Seen) -> Result<Converged, ServiceError> {
        let cluster = self.core.look(r, seen).await?;
        let names = self.core.names(r);
        let sts = self
            .core
            .managers_as(&r.namespace, component::SCALING)
            .statefulsets
            .get(&names.statefulset())
            .await?;
        let (members, rolling, pods) = match sts.as_ref() {
            Some(sts) => {
                let observation = self.core.observe_with(&cluster, Some(sts)).await;
                let rolling = observation.statefulset.as_ref().is_some_and(|s| s.rolling());
                let pods = observation.pods;
                match observation.etcd {
                    EtcdState::Reached(view) => {
                        // A member whose pod runs a template of the other scheme than its peer URL.
                        let names = self.core.names_of(&cluster);
                        let stale = view.members.iter().any(|m| !crate::membership::speaks(m, &names));
                        (Some(view.members.len() as i32), rolling || stale, pods)
                    }
                    EtcdState::Unreachable(_) | EtcdState::NotExpected => (None, rolling, pods),
                }
            }
            None => (None, false, None),
        };
        let status = cluster.status.as_ref();
        let decision = converge(&ConvergeInputs {
            size: cluster.spec.size,
            paused: cluster.spec.paused,
            deleting: cluster.metadata.deletion_timestamp.is_some(),
            formed: cluster.formed(),
            operation: status.and_then(|s| s.operation.as_ref()).filter(|op| is_scaling(op)),
            stopped: status.is_some_and(|s| s.stopped.is_some()),
            members,
            replicas: sts.as_ref().and_then(|s| s.spec.as_ref()?.replicas).unwrap_or(0),
            rolling,
            moving_transport: cluster.transport_move().is_some(),
        });
        // Acting is worth a line; "nothing to do" and "not yet" come at every look (debug).
        match &decision {
            Converge::Nothing(_) | Converge::Later(_) => tracing::debug!(?decision, members, "converging"),
            _ => tracing::info!(?decision, members, "converging"),
        }
        let size = cluster.spec.size;
        let (outcome, operation) = match &decision {
            Converge::Up => (self.scale_up(r, size).await?, OperationType::ScaleUp),
            Converge::Down => (self.scale_down(r, size).await?, OperationType::ScaleDown),
            Converge::ToZero => (self.scale_to_zero(r).await?, OperationType::ScaleToZero),
            Converge::FromZero => (self.restart_from_zero(r, size).await?.0, OperationType::RestartFromZero),
            Converge::Roll => (self.roll.roll(r).await?, OperationType::RollingUpdate),
            Converge::Nothing(reason) => {
                let outcome = ClusterOutcome::recorded(&cluster, None);
                return Ok(Converged { outcome, operation: None, reason: reason.clone() });
            }
            Converge::Later(reason) => {
                // Nothing moves until a member pod runs; its StatefulSet's events say when.
                let later = requeue::unless_no_member_runs(NOT_YET, pods.as_deref());
                let outcome = ClusterOutcome::recorded(&cluster, Some(later));
                return Ok(Converged { outcome, operation: None, reason: reason.clone() });
            }
        };
        Ok(Converged { outcome, operation: Some(operation), reason: String::new() })
    }
}
