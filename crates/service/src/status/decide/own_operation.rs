//! The operations the lifecycle records for itself (creating, deleting);
//! scaling, the roll and recovery record their own.

use etcd_operator_api::cluster::{ClusterPhase, EtcdClusterStatus};

use crate::operation::{OperationStatus, OperationType, step::lifecycle as step};

/// The lifecycle's own operations: recorded while creating or deleting.
///
/// A pending size change is not one of them: scaling records its own.
pub(super) fn own_operation(
    phase: ClusterPhase,
    previous: &EtcdClusterStatus,
    now: &str,
) -> Option<OperationStatus> {
    let (type_, step) = match phase {
        ClusterPhase::Pending | ClusterPhase::Creating => (OperationType::Create, step::BOOTSTRAPPING),
        ClusterPhase::Deleting => (OperationType::Delete, step::REMOVING_OBJECTS),
        _ => return None,
    };
    Some(OperationStatus::at_step(type_, step, previous.operation.as_ref(), now))
}
