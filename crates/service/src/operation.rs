//! The operations recorded in `status.operation`: their types and the steps
//! of each, defined in the API crate (the wire form of `OperationStatus`) and
//! re-exported here, so that each feature's decisions depend on this
//! vocabulary and not on each other.

pub use etcd_operator_api::cluster::{
    OperationStatus, OperationType,
    operation::step::{self, member as member_step},
};

/// Whether an operation is one of scaling's (membership changes, stop and restart, recoveries).
pub fn is_scaling(op: &OperationStatus) -> bool {
    op.type_.is_scaling()
}

/// Whether an operation adds or removes one member at a time.
pub fn is_membership_change(op: &OperationStatus) -> bool {
    op.type_.is_membership_change()
}
