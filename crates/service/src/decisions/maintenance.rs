//! Maintenance decisions (defragmentation). Pure.

use etcd_operator_common::Violations;

use crate::{
    ServiceError,
    observe::{EtcdState, Observation},
};

/// Whether `member` may be defragmented now: it blocks while defragmenting,
/// so every other voting member must be healthy. Pure.
pub fn may_defragment(observation: &Observation, member: &str) -> Result<(), ServiceError> {
    let EtcdState::Reached(view) = &observation.etcd else {
        return Err(ServiceError::FailedPrecondition(
            "etcd is not reachable; nothing is defragmented".into(),
        ));
    };
    if !view.members.iter().any(|m| m.name() == member) {
        let mut v = Violations::default();
        v.push("member", format!("{member} is not a member of this cluster"));
        return Err(ServiceError::InvalidArgument(v));
    }
    let unhealthy: Vec<String> =
        view.members.iter().filter(|m| m.name() != member && !m.healthy()).map(|m| m.name()).collect();
    if unhealthy.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::FailedPrecondition(format!(
            "members {} are unhealthy; defragmenting {member} now could cost quorum",
            unhealthy.join(", ")
        )))
    }
}
