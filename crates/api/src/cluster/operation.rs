//! The operations recorded in `status.operation`: their types and steps. The
//! lowest layer holds this vocabulary so that the status type, the service's
//! decisions and tooling share one spelling of each name.

use std::fmt;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::SnapshotRecord;

/// Kind of a multi-step operation; the wire form is the variant name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum OperationType {
    /// Members are starting for the first time.
    #[default]
    Create,
    /// Members restart one at a time on a new pod template, driven by the operator (followers
    /// first, the leader last after leadership moved).
    RollingUpdate,
    /// The cluster's objects are being removed.
    Delete,
    /// Adding members one at a time.
    ScaleUp,
    /// Removing members one at a time.
    ScaleDown,
    /// Stopping every member, keeping the data.
    ScaleToZero,
    /// Starting a stopped cluster again.
    RestartFromZero,
    /// Replacing one failed member with an empty one.
    ReplaceMember,
    /// Recreating a cluster that lost quorum from its most advanced data.
    RecoverQuorum,
}

impl OperationType {
    /// The wire form (as in `status.operation.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::RollingUpdate => "RollingUpdate",
            Self::Delete => "Delete",
            Self::ScaleUp => "ScaleUp",
            Self::ScaleDown => "ScaleDown",
            Self::ScaleToZero => "ScaleToZero",
            Self::RestartFromZero => "RestartFromZero",
            Self::ReplaceMember => "ReplaceMember",
            Self::RecoverQuorum => "RecoverQuorum",
        }
    }

    /// Whether scaling owns the operation (membership changes, stop and restart, the
    /// recoveries, which change membership too, and the roll, which restarts members one at a
    /// time); the lifecycle owns the others.
    pub fn is_scaling(self) -> bool {
        !matches!(self, Self::Create | Self::Delete)
    }

    /// Whether the operation adds or removes one member at a time.
    pub fn is_membership_change(self) -> bool {
        matches!(self, Self::ScaleUp | Self::ScaleDown)
    }
}

impl fmt::Display for OperationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Steps of each operation, as recorded in `status.operation.step` and shown as Progressing
/// reasons. Plain names: a step recorded by another version of the operator still reads.
pub mod step {
    /// Steps of adding or removing one member (scaling and replacement).
    pub mod member {
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

    /// Steps of a replacement beyond the member steps it shares with scaling.
    pub mod replace {
        pub use super::member::{ADDING_LEARNER, PROMOTING_MEMBER, REMOVING_MEMBER, STARTING_MEMBER};
        /// Deleting the member's claim and pod so it starts again with an empty volume.
        pub const RECREATING_VOLUME: &str = "RecreatingVolume";
    }

    /// Steps of a stop or restart.
    pub mod stop {
        /// Streaming, storing and verifying the snapshot.
        pub const TAKING_SNAPSHOT: &str = "TakingSnapshot";
        /// Scaling the StatefulSet to zero.
        pub const STOPPING_MEMBERS: &str = "StoppingMembers";
        /// Starting the recorded members on their claims.
        pub const STARTING_MEMBERS: &str = "StartingMembers";
        /// Starting the recorded members from the stop snapshot (their claims are gone).
        pub const RESTORING_SNAPSHOT: &str = "RestoringSnapshot";
    }

    /// Steps of a quorum-loss recovery.
    pub mod quorum {
        /// Streaming the most advanced survivor's data to snapshot storage and verifying it.
        pub const SAVING_SURVIVOR: &str = "SavingSurvivor";
        /// Scaling the StatefulSet to zero.
        pub const STOPPING_MEMBERS: &str = "StoppingMembers";
        /// Deleting every member's claim.
        pub const DELETING_VOLUMES: &str = "DeletingVolumes";
        /// Verifying the backup again, creating the token, putting the restore agent in the pods.
        pub const PREPARING_RESTORE: &str = "PreparingRestore";
        /// Starting the members, each restoring from the backup.
        pub const RESTORING_MEMBERS: &str = "RestoringMembers";
    }

    /// Steps of a roll: one member restarts on the new pod template.
    pub mod roll {
        pub use super::member::MOVING_LEADER;
        /// The member's pod is deleted; the StatefulSet recreates it on the new template.
        pub const RESTARTING_MEMBER: &str = "RestartingMember";
    }

    /// Steps of the lifecycle's own operations.
    pub mod lifecycle {
        /// Members are starting for the first time.
        pub const BOOTSTRAPPING: &str = "Bootstrapping";
        /// The cluster's objects are being removed.
        pub const REMOVING_OBJECTS: &str = "RemovingObjects";
    }
}

/// A multi-step operation the operator has started and not finished.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// Kind of operation.
    #[serde(rename = "type")]
    pub type_: OperationType,
    /// Step the operation is at.
    #[serde(default)]
    pub step: String,
    /// Target of the operation (for example the size being scaled to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<i32>,
    /// Member the step acts on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// etcd member ID of that member, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// The EtcdBackup the operation restores from (RecoverQuorum), chosen and verified before acting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// The data of the most advanced member that still answered (RecoverQuorum), saved and
    /// verified before any claim is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRecord>,
    /// When the operation started (RFC 3339).
    #[serde(default)]
    pub started_at: String,
}

impl OperationStatus {
    /// An operation of `type_` at `step`. It keeps when it started if `previous` is the same
    /// kind of operation (a step forward), and starts `now` otherwise.
    pub fn at_step(type_: OperationType, step: &str, previous: Option<&OperationStatus>, now: &str) -> Self {
        let started_at = previous
            .filter(|op| op.type_ == type_)
            .map_or_else(|| now.to_owned(), |op| op.started_at.clone());
        Self { type_, step: step.to_owned(), started_at, ..Self::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_the_name_and_reads_back() {
        let all = [
            OperationType::Create,
            OperationType::RollingUpdate,
            OperationType::Delete,
            OperationType::ScaleUp,
            OperationType::ScaleDown,
            OperationType::ScaleToZero,
            OperationType::RestartFromZero,
            OperationType::ReplaceMember,
            OperationType::RecoverQuorum,
        ];
        for t in all {
            let wire = serde_json::to_value(t).unwrap();
            assert_eq!(wire, serde_json::json!(t.as_str()));
            assert_eq!(serde_json::from_value::<OperationType>(wire).unwrap(), t);
        }
        let scaling: Vec<_> = all.into_iter().filter(|t| t.is_scaling()).collect();
        assert_eq!(scaling.len(), 7, "{scaling:?}");
    }

    #[test]
    fn a_step_forward_keeps_when_the_operation_started() {
        let first =
            OperationStatus::at_step(OperationType::ScaleUp, step::member::ADDING_LEARNER, None, "t1");
        let next = OperationStatus::at_step(
            OperationType::ScaleUp,
            step::member::STARTING_MEMBER,
            Some(&first),
            "t2",
        );
        assert_eq!(next.started_at, "t1");
        let other = OperationStatus::at_step(
            OperationType::ScaleDown,
            step::member::REMOVING_MEMBER,
            Some(&first),
            "t3",
        );
        assert_eq!(other.started_at, "t3");
    }
}
