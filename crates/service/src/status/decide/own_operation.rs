//! The operations the lifecycle records for itself (creating, rolling out,
//! deleting); scaling and recovery record their own.

use etcd_operator_api::{
    Condition,
    cluster::{ClusterPhase, EtcdClusterStatus},
};

use crate::operation::{OperationStatus, OperationType, step::lifecycle as step};

/// The lifecycle's own operations: recorded while creating or rolling out.
///
/// A pending size change is not one of them: scaling records its own.
pub(super) fn own_operation(
    phase: ClusterPhase,
    progressing: Option<&Condition>,
    previous: &EtcdClusterStatus,
    now: &str,
) -> Option<OperationStatus> {
    let rolling = progressing.is_some_and(|c| c.reason == OperationType::RollingUpdate.as_str());
    let (type_, step) = match phase {
        ClusterPhase::Pending | ClusterPhase::Creating => (OperationType::Create, step::BOOTSTRAPPING),
        ClusterPhase::Updating if rolling => (OperationType::RollingUpdate, step::RESTARTING_MEMBERS),
        ClusterPhase::Deleting => (OperationType::Delete, step::REMOVING_OBJECTS),
        _ => return None,
    };
    Some(OperationStatus::at_step(type_, step, previous.operation.as_ref(), now))
}
