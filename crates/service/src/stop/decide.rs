//! Stopping a cluster keeping its data (ScaleToZero) and bringing it back
//! (RestartFromZero). Pure, and resumable from the record like scaling:
//!
//! stop: check quorum → record → take a snapshot, store and verify it, record
//! it with the members and cluster ID → scale the StatefulSet to 0 (claims
//! kept) → wait for the pods to go → done (phase Stopped).
//!
//! restart: check every member's claim is still there → record → start the
//! recorded members on their claims → wait until they all answer healthy
//! with the same cluster ID → done; scaling then takes the size to the spec.
//!
//! restart when every claim is gone: record → verify the stop snapshot and
//! prepare the restore (token, status.restore) → start the members, each
//! restoring from the snapshot → wait until they all answer healthy (a new
//! cluster ID) → done. Some claims gone but not all is refused: the members
//! with data would form a cluster the restored ones cannot join.

use std::time::Duration;

use etcd_operator_api::cluster::{OperationStatus, StoppedStatus};
use etcd_operator_resource::names::ClusterNames;

use crate::membership::quorum;

use crate::observe::EtcdState;
use crate::operation::OperationType;

/// Steps of a stop or restart (the vocabulary lives with `status.operation`).
pub use crate::operation::step::stop as step;

/// What a stop or restart decides from.
pub struct StopInputs<'a> {
    /// Recorded operation (any of scaling's).
    pub operation: Option<&'a OperationStatus>,
    /// Recorded stop.
    pub stopped: Option<&'a StoppedStatus>,
    /// StatefulSet `spec.replicas`.
    pub replicas: i32,
    /// Pods the StatefulSet has.
    pub pods: i32,
    /// What etcd said.
    pub etcd: &'a EtcdState,
    /// Claims that exist.
    pub claims: &'a [String],
    /// Names of the cluster's objects.
    pub names: &'a ClusterNames,
    /// Now, RFC 3339.
    pub now: &'a str,
    /// Whether a restore from the stop snapshot is prepared (status.restore Restoring or Completed).
    pub restore_prepared: bool,
}

/// The one step to take now.
#[derive(Clone, Debug, PartialEq)]
pub enum StopAction {
    /// Write this record first.
    Record(OperationStatus),
    /// Take, store and verify a snapshot; record it with the members.
    TakeSnapshot,
    /// Verify the stop snapshot and prepare the members to restore from it.
    PrepareRestore,
    /// Set StatefulSet replicas (starting `members` on their claims when growing).
    SetReplicas { replicas: i32, members: Vec<String> },
    /// Look again later.
    Wait { reason: String, after: Duration },
    /// Finished: clear the record (and, after a restart, the stop record).
    Done,
    /// Unsafe or impossible now; nothing was done.
    Refuse(String),
}

fn record(
    type_: OperationType,
    step: &str,
    target: i32,
    now: &str,
    previous: Option<&OperationStatus>,
) -> StopAction {
    StopAction::Record(OperationStatus {
        target: Some(target),
        ..OperationStatus::at_step(type_, step, previous, now)
    })
}

fn other_operation(i: &StopInputs<'_>, mine: OperationType) -> Option<StopAction> {
    i.operation
        .filter(|op| op.type_ != mine)
        .map(|op| StopAction::Refuse(format!("a {} is in progress; it finishes first", op.type_)))
}

/// Next step of ScaleToZero.
pub fn next_stop_action(i: &StopInputs<'_>) -> StopAction {
    if let Some(refusal) = other_operation(i, OperationType::ScaleToZero) {
        return refusal;
    }
    let Some(op) = i.operation else {
        if i.replicas == 0 && i.stopped.is_some() {
            return StopAction::Done;
        }
        return match i.etcd {
            EtcdState::Reached(view) => {
                let voters = view.members.iter().filter(|m| !m.info.is_learner).count() as i32;
                let healthy =
                    view.members.iter().filter(|m| !m.info.is_learner && m.healthy()).count() as i32;
                if healthy < quorum(voters) {
                    StopAction::Refuse(format!(
                        "only {healthy} of {voters} voting members are healthy: no consistent snapshot can be taken"
                    ))
                } else {
                    record(OperationType::ScaleToZero, step::TAKING_SNAPSHOT, 0, i.now, None)
                }
            }
            EtcdState::Unreachable(e) => {
                StopAction::Refuse(format!("etcd does not answer ({e}): no snapshot can be taken"))
            }
            EtcdState::NotExpected => StopAction::Refuse("the cluster has no members to stop".into()),
        };
    };
    match op.step.as_str() {
        step::TAKING_SNAPSHOT if i.stopped.is_some_and(|s| s.snapshot.is_some()) => {
            record(OperationType::ScaleToZero, step::STOPPING_MEMBERS, 0, i.now, Some(op))
        }
        step::TAKING_SNAPSHOT => StopAction::TakeSnapshot,
        _ if i.replicas > 0 => StopAction::SetReplicas { replicas: 0, members: vec![] },
        _ if i.pods > 0 => StopAction::Wait {
            reason: format!("{} pods are stopping", i.pods),
            after: Duration::from_secs(1),
        },
        _ => StopAction::Done,
    }
}

/// Next step of RestartFromZero.
pub fn next_restart_action(i: &StopInputs<'_>, target: i32) -> StopAction {
    if let Some(refusal) = other_operation(i, OperationType::RestartFromZero) {
        return refusal;
    }
    let Some(stopped) = i.stopped else {
        return match (i.operation, i.etcd) {
            // The stop record was cleared with the restart's last step: only the operation is left.
            (Some(_), _) => StopAction::Done,
            // Running already (a repeated call): nothing to do.
            (None, EtcdState::Reached(_)) => StopAction::Done,
            (None, _) => {
                StopAction::Refuse("the cluster is not stopped and not running: nothing to restart".into())
            }
        };
    };
    let n = stopped.members.len() as i32;
    let missing: Vec<String> = (0..n).map(|o| i.names.pvc(o)).filter(|c| !i.claims.contains(c)).collect();
    let from_snapshot =
        i.operation.map_or(missing.len() as i32 == n, |op| op.step == step::RESTORING_SNAPSHOT);
    if i.operation.is_none() {
        let snapshot = stopped.snapshot.as_ref();
        if missing.is_empty() {
            return record(OperationType::RestartFromZero, step::STARTING_MEMBERS, target, i.now, None);
        }
        if from_snapshot && snapshot.is_some() {
            return record(OperationType::RestartFromZero, step::RESTORING_SNAPSHOT, target, i.now, None);
        }
        let where_ = snapshot.map_or_else(
            || "no snapshot was recorded".to_owned(),
            |s| format!("the stop snapshot {} (sha256 {}) holds the data", s.location, s.sha256),
        );
        return StopAction::Refuse(format!(
            "claims {} are gone but others remain: restarting would mix members with and without data; {where_}. Restore the claims, or delete the remaining ones to restart every member from the snapshot",
            missing.join(", ")
        ));
    }
    if from_snapshot && !i.restore_prepared {
        return StopAction::PrepareRestore;
    }
    if i.replicas < n {
        return StopAction::SetReplicas { replicas: n, members: stopped.members.clone() };
    }
    match i.etcd {
        EtcdState::Reached(view) => {
            let id = format!("{:x}", view.cluster_id);
            // Restored members form a new cluster; members on their claims must be the old one.
            if id != stopped.cluster_id && !from_snapshot {
                return StopAction::Refuse(format!(
                    "members came back as cluster {id}, not {}: stopping here",
                    stopped.cluster_id
                ));
            }
            let healthy = view.members.iter().filter(|m| m.healthy()).count() as i32;
            if healthy < n {
                return StopAction::Wait {
                    reason: format!("{healthy} of {n} members are back"),
                    after: Duration::from_secs(1),
                };
            }
            StopAction::Done
        }
        _ => StopAction::Wait { reason: "members are starting".into(), after: Duration::from_secs(1) },
    }
}

/// Where a restart's members got their data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartSource {
    /// Their own claims, kept while stopped.
    RetainedVolumes,
    /// The verified stop snapshot (the claims were gone).
    Snapshot,
}

impl RestartSource {
    /// The name the API answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetainedVolumes => "RetainedVolumes",
            Self::Snapshot => "Snapshot",
        }
    }
}

/// Where a restart's members get their data, as the step at hand says: none while no restart
/// step is recorded.
pub fn restart_source(action: &StopAction, operation: Option<&OperationStatus>) -> Option<RestartSource> {
    let step = match action {
        StopAction::Record(op) => Some(op.step.as_str()),
        _ => operation.filter(|op| op.type_ == OperationType::RestartFromZero).map(|op| op.step.as_str()),
    };
    match step? {
        step::RESTORING_SNAPSHOT => Some(RestartSource::Snapshot),
        _ => Some(RestartSource::RetainedVolumes),
    }
}
