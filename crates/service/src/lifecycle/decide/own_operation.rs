//! The operations the lifecycle records for itself (creating, rolling out,
//! deleting); scaling and recovery record their own.

use etcd_operator_api::{
    Condition,
    cluster::{ClusterPhase, EtcdClusterStatus, OperationStatus},
};

/// The lifecycle's own operations: recorded while creating or rolling out.
///
/// A pending size change is not one of them: scaling records its own.
pub(super) fn own_operation(
    phase: ClusterPhase,
    progressing: Option<&Condition>,
    previous: &EtcdClusterStatus,
    now: &str,
) -> Option<OperationStatus> {
    let rolling = progressing.is_some_and(|c| c.reason == "RollingUpdate");
    let (type_, step) = match phase {
        ClusterPhase::Pending | ClusterPhase::Creating => ("Create", "Bootstrapping"),
        ClusterPhase::Updating if rolling => ("RollingUpdate", "RestartingMembers"),
        ClusterPhase::Deleting => ("Delete", "RemovingObjects"),
        _ => return None,
    };
    let started_at = previous
        .operation
        .as_ref()
        .filter(|op| op.type_ == type_)
        .map_or_else(|| now.to_owned(), |op| op.started_at.clone());
    Some(OperationStatus { type_: type_.into(), step: step.into(), started_at, ..OperationStatus::default() })
}
