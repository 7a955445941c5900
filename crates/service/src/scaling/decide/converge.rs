//! Which way a cluster's membership moves now (up, down, stop, restart, roll, or wait): pure,
//! from the live membership and the recorded operation.

use etcd_operator_api::cluster::OperationStatus;

use crate::operation::OperationType;

/// What deciding the direction of a convergence reads.
pub struct ConvergeInputs<'a> {
    /// `spec.size`.
    pub size: i32,
    /// `spec.paused`.
    pub paused: bool,
    /// The object is being deleted.
    pub deleting: bool,
    /// etcd reported a cluster ID once.
    pub formed: bool,
    /// The operation recorded in status, if any.
    pub operation: Option<&'a OperationStatus>,
    /// The cluster is stopped (a stop record).
    pub stopped: bool,
    /// Members etcd lists now (learners included); `None` when it did not answer.
    pub members: Option<i32>,
    /// StatefulSet `spec.replicas` (0 without a StatefulSet).
    pub replicas: i32,
    /// Pods are not all on the StatefulSet's newest template (or a member's peer URL is not in
    /// the scheme it runs).
    pub rolling: bool,
    /// A move between plaintext and TLS is in progress: new members would join in one scheme
    /// while the others move, so the size waits.
    pub moving_transport: bool,
}

/// Which way a cluster's membership moves now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Converge {
    /// Nothing to do; why.
    Nothing(String),
    /// Not yet; why, and look again later.
    Later(String),
    /// ScaleUp to `spec.size`.
    Up,
    /// ScaleDown to `spec.size`.
    Down,
    /// ScaleToZero.
    ToZero,
    /// RestartFromZero with `spec.size` members.
    FromZero,
    /// Restart members one at a time on the new pod template.
    Roll,
}

/// The direction from the live membership, not from `status.currentSize` (which may be stale):
/// a recorded operation of scaling's goes on as itself; a recovery in progress goes first. A roll
/// onto a new pod template waits until the membership is what `spec.size` asks.
pub fn converge(i: &ConvergeInputs<'_>) -> Converge {
    if i.deleting {
        return Converge::Nothing("the cluster is being deleted".into());
    }
    if i.paused {
        return Converge::Nothing("spec.paused: nothing changes until it is unpaused".into());
    }
    if !i.formed {
        // No data to protect yet, and a broken first spec must stay fixable: its pods go at once.
        if i.rolling {
            return Converge::Roll;
        }
        return Converge::Later("the cluster has not formed yet".into());
    }
    match i.operation.map(|op| op.type_) {
        Some(OperationType::ScaleUp) => return Converge::Up,
        Some(OperationType::ScaleDown) => return Converge::Down,
        Some(OperationType::ScaleToZero) => return Converge::ToZero,
        Some(OperationType::RestartFromZero) => return Converge::FromZero,
        Some(OperationType::RollingUpdate) => return Converge::Roll,
        Some(t @ (OperationType::ReplaceMember | OperationType::RecoverQuorum)) => {
            return Converge::Later(format!("a {t} is in progress; it finishes first"));
        }
        _ => {}
    }
    let resize = i.stopped || i.size == 0 || i.members.is_some_and(|n| n != i.size || i.replicas > n);
    if i.moving_transport && resize {
        if i.rolling {
            return Converge::Roll;
        }
        return Converge::Later(
            "a move between plaintext and TLS is in progress; spec.size is applied when it ends".into(),
        );
    }
    match (i.size, i.stopped, i.members) {
        (0, true, _) => Converge::Nothing("stopped, as spec.size 0 asks".into()),
        (0, false, _) => Converge::ToZero,
        (_, true, _) => Converge::FromZero,
        (_, false, None) => Converge::Later("etcd did not answer: the membership is unknown".into()),
        (size, false, Some(n)) if size > n => Converge::Up,
        (size, false, Some(n)) if size < n => Converge::Down,
        // Pods no member stands for (a replacement given up at the top): the scale down takes
        // them away.
        (_, false, Some(n)) if i.replicas > n => Converge::Down,
        (_, false, Some(_)) if i.rolling => Converge::Roll,
        (size, false, Some(_)) => Converge::Nothing(format!("{size} members, as spec.size asks")),
    }
}
