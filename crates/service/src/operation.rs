//! The operations recorded in `status.operation`: their type names (the wire
//! form of `OperationStatus.type_`) and the member steps several share. One
//! home, so that each feature's decisions depend on this vocabulary and not
//! on each other.

use etcd_operator_api::cluster::OperationStatus;

/// Operation type of a member replacement.
pub const REPLACE_MEMBER: &str = "ReplaceMember";
/// Operation type of a quorum-loss recovery.
pub const RECOVER_QUORUM: &str = "RecoverQuorum";
/// Operation type of a scale up.
pub const SCALE_UP: &str = "ScaleUp";
/// Operation type of a scale down.
pub const SCALE_DOWN: &str = "ScaleDown";

/// Steps of adding or removing one member (scaling and replacement), as recorded in
/// `status.operation.step` and shown as Progressing reasons.
pub mod member_step {
    /// Adding the member to etcd as a learner.
    pub const ADDING_LEARNER: &str = "AddingLearner";
    /// The learner's pod is starting and catching up.
    pub const STARTING_MEMBER: &str = "StartingMember";
    /// Promoting the learner to a voting member.
    pub const PROMOTING_MEMBER: &str = "PromotingMember";
    /// Moving leadership away from the member being removed.
    pub const MOVING_LEADER: &str = "MovingLeader";
    /// Removing the member from etcd, then its pod.
    pub const REMOVING_MEMBER: &str = "RemovingMember";
}

/// Operation type of a stop keeping the data.
pub const SCALE_TO_ZERO: &str = "ScaleToZero";
/// Operation type of a restart of a stopped cluster.
pub const RESTART_FROM_ZERO: &str = "RestartFromZero";

/// Whether an operation is one of scaling's (membership changes, stop and restart).
pub fn is_scaling(op: &OperationStatus) -> bool {
    is_membership_change(op)
        || op.type_ == SCALE_TO_ZERO
        || op.type_ == RESTART_FROM_ZERO
        || op.type_ == REPLACE_MEMBER
        || op.type_ == RECOVER_QUORUM
}

/// Whether an operation adds or removes one member at a time.
pub fn is_membership_change(op: &OperationStatus) -> bool {
    op.type_ == SCALE_UP || op.type_ == SCALE_DOWN
}
