//! Status from observations: phase, conditions, members. Pure.

mod conditions;
pub mod counters;
pub mod members;
mod own_operation;
pub(crate) mod quorum_conditions;
pub mod requeue;
#[cfg(test)]
mod tests;

use conditions::{reached, spec_warning};

use etcd_operator_api::{
    Condition, ConditionStatus, EtcdCluster, EtcdClusterStatus,
    cluster::{
        CONDITION_AUTH_READY, CONDITION_AVAILABLE, CONDITION_CERTIFICATES_READY, CONDITION_DEGRADED,
        CONDITION_PROGRESSING, CONDITION_RESTORED, ClusterPhase, MemberStatus, OperationStatus, RestorePhase,
        RestoreStatus, RestoreTrigger, StoppedStatus,
    },
    condition::merge_conditions,
    version::EtcdVersion,
};
use etcd_operator_common::Violations;
use etcd_operator_resource::names::ClusterNames;

use crate::membership::{Quorum, quorum};

use crate::observe::{EtcdState, Observation};
use crate::plan::RolloutDecision;

/// Condition type: the spec is accepted but not advisable (old version, even size).
pub const CONDITION_SPEC_WARNING: &str = "SpecWarning";

/// Everything the status is computed from.
pub struct StatusInputs<'a> {
    /// The cluster as read (spec, generation, previous status).
    pub cluster: &'a EtcdCluster,
    /// Its names.
    pub names: &'a ClusterNames,
    /// What Kubernetes and etcd reported.
    pub observation: &'a Observation,
    /// Result of validating the spec.
    pub spec_check: &'a Result<(), Violations>,
    /// Whether a rollout may proceed.
    pub rollout: &'a RolloutDecision,
    /// Now, RFC 3339.
    pub now: &'a str,
    /// The scaling operation to record.
    pub scaling: ScalingRecord<'a>,
    /// The restore record (lifecycle's; `None` when the cluster is not restored from a backup).
    pub restore: Option<&'a RestoreStatus>,
}

/// What a status write says about scaling's operation.
#[derive(Clone, Copy, Debug, Default)]
pub enum ScalingRecord<'a> {
    /// Keep what is recorded (writers other than scaling).
    #[default]
    Unchanged,
    /// Record these (scaling itself; `None` when finished, or not stopped).
    Now {
        /// The operation in progress.
        operation: Option<&'a OperationStatus>,
        /// What a stopped cluster needs to come back.
        stopped: Option<&'a StoppedStatus>,
    },
}

/// The scaling operation the status will carry.
pub(super) fn scaling_op(i: &StatusInputs<'_>) -> Option<OperationStatus> {
    match i.scaling {
        ScalingRecord::Unchanged => {
            i.cluster.status.as_ref().and_then(|s| s.operation.clone()).filter(crate::operation::is_scaling)
        }
        ScalingRecord::Now { operation, .. } => operation.cloned(),
    }
}

/// Computes the whole status the lifecycle owns.
pub fn compute_status(i: &StatusInputs<'_>) -> EtcdClusterStatus {
    let previous = i.cluster.status.clone().unwrap_or_default();
    let generation = i.cluster.metadata.generation;
    let members = members::members(i.observation, &previous, i.now);
    let ready_members = members.iter().filter(|m| m.healthy && !m.is_learner).count() as i32;
    let (phase, conditions) = phase_and_all_conditions(i, &members);
    let (cluster_id, current_size) = match &i.observation.etcd {
        EtcdState::Reached(view) => (Some(format!("{:x}", view.cluster_id)), view.members.len() as i32),
        EtcdState::NotExpected => (previous.cluster_id.clone(), 0),
        EtcdState::Unreachable(_) => (previous.cluster_id.clone(), previous.current_size),
    };
    // Scaling's operation is written by scaling alone: other writers leave the field out, so that
    // with server-side apply it goes away when scaling clears it.
    let operation = match (i.scaling, scaling_op(i)) {
        (ScalingRecord::Now { .. }, op) => op,
        (ScalingRecord::Unchanged, Some(_)) => None,
        (ScalingRecord::Unchanged, None) => own_operation::own_operation(phase, &previous, i.now),
    };
    EtcdClusterStatus {
        observed_generation: generation,
        phase,
        conditions: merge_conditions(&previous.conditions, conditions, i.now),
        cluster_id,
        ready_members,
        quorum_margin: quorum_margin(&i.observation.etcd),
        // Written by the health service alone; others leave it out (server-side apply keeps it).
        maintenance: None,
        current_size,
        selector: i.names.selector_string(),
        current_version: members
            .iter()
            .filter_map(|m| m.version.as_deref().and_then(|v| EtcdVersion::parse(v).ok()))
            .min()
            .map(|v| v.to_string()),
        cluster_version: match &i.observation.etcd {
            EtcdState::Reached(view) if view.cluster_version.is_some() => view.cluster_version.clone(),
            _ => previous.cluster_version.clone(),
        },
        operation,
        // Only scaling writes this; others leave it out so server-side apply keeps scaling's value.
        stopped: match i.scaling {
            ScalingRecord::Now { stopped, .. } => stopped.cloned(),
            ScalingRecord::Unchanged => None,
        },
        // Only the lifecycle writes this, as it bootstraps the cluster.
        restore: match i.scaling {
            ScalingRecord::Now { .. } => None,
            ScalingRecord::Unchanged => i.restore.cloned(),
        },
        // The Secrets as last read when they could not be read now.
        certificates: match &i.observation.certificates {
            Some(report) => report.statuses(),
            None if i.cluster.tls_in_use().is_some() => previous.certificates,
            None => Vec::new(),
        },
        // Written by the security service alone; others leave it out (server-side apply keeps it).
        certificate_authority: None,
        transport: None,
        members,
    }
}

/// Phase and every condition the lifecycle writes: a restore that has not started decides them,
/// else the members; then what contradicts an unconfirmed loss, the spec warning and the
/// restore's own conditions.
fn phase_and_all_conditions(
    i: &StatusInputs<'_>,
    members: &[MemberStatus],
) -> (ClusterPhase, Vec<Condition>) {
    let (phase, mut conditions) = match i.restore {
        // Nothing is started before the source is usable; verifying it is progress, a refusal is not.
        Some(r) if matches!(r.phase, RestorePhase::Refused | RestorePhase::Verifying) => {
            let verifying = r.phase == RestorePhase::Verifying;
            let why = if verifying { "is being verified" } else { "is unusable" };
            let available = format!("nothing was started: the restore source {why}");
            (
                ClusterPhase::Pending,
                vec![
                    Condition::new(CONDITION_AVAILABLE, false, &r.reason, available),
                    Condition::new(CONDITION_PROGRESSING, verifying, &r.reason, r.message.clone()),
                ],
            )
        }
        _ => phase_and_conditions(i, members),
    };
    quorum_conditions::contradict_unconfirmed_loss(&mut conditions, i.observation, members);
    conditions.push(spec_warning(i.cluster.spec.size, &i.cluster.spec.version));
    conditions.extend(restore_conditions(i.restore));
    if let Some(report) = &i.observation.certificates {
        let now = chrono::DateTime::parse_from_rfc3339(i.now).map(|t| t.to_utc()).unwrap_or_default();
        let (ready, reason, message) = report.condition(now);
        conditions.push(Condition::new(CONDITION_CERTIFICATES_READY, ready, reason, message));
    }
    // Towards the version applied: a refused spec.version moves nothing (the spec check says why).
    let applied = i.observation.statefulset.as_ref().and_then(|s| s.version.as_deref());
    if let (EtcdState::Reached(view), Some(pods), Some(target)) =
        (&i.observation.etcd, &i.observation.pods, applied)
    {
        let roll = scaling_op(i).filter(|op| op.type_ == crate::operation::OperationType::RollingUpdate);
        let waits = match i.rollout {
            RolloutDecision::Wait(why) => Some(why.as_str()),
            RolloutDecision::Proceed => None,
        };
        let wanted = i.spec_check.is_ok().then_some((i.cluster.spec.version.as_str(), waits));
        conditions.extend(crate::upgrade::decide::upgrading(&crate::upgrade::decide::ProgressInputs {
            target,
            wanted,
            pods,
            view,
            restarting: roll.as_ref().and_then(|op| op.member.as_deref()),
        }));
    }
    if let Some(auth) = &i.observation.auth {
        let (ready, reason, message) = auth.condition();
        conditions.push(Condition::new(CONDITION_AUTH_READY, ready, reason, message));
    }
    for c in &mut conditions {
        c.observed_generation = i.cluster.metadata.generation;
    }
    (phase, conditions)
}

/// The Restored condition (and DataLossPossible after a quorum-loss restore) of a restore record.
fn restore_conditions(restore: Option<&RestoreStatus>) -> Vec<Condition> {
    let Some(r) = restore else { return Vec::new() };
    let mut conditions = Vec::new();
    {
        let status = match r.phase {
            RestorePhase::Refused => ConditionStatus::False,
            RestorePhase::Verifying | RestorePhase::Restoring => ConditionStatus::Unknown,
            RestorePhase::Completed => ConditionStatus::True,
        };
        conditions.push(Condition::new(CONDITION_RESTORED, status, &r.reason, r.message.clone()));
        let started = matches!(r.phase, RestorePhase::Restoring | RestorePhase::Completed);
        if r.trigger == RestoreTrigger::QuorumLoss && started {
            conditions.push(quorum_conditions::data_loss_possible(r));
        }
    }
    conditions
}

/// Healthy voters beyond quorum, when etcd answered.
fn quorum_margin(etcd: &EtcdState) -> Option<i32> {
    let EtcdState::Reached(view) = etcd else { return None };
    let q = Quorum::of(view);
    Some(q.healthy_voters as i32 - quorum(q.voters as i32))
}

fn phase_and_conditions(i: &StatusInputs<'_>, members: &[MemberStatus]) -> (ClusterPhase, Vec<Condition>) {
    let spec = &i.cluster.spec;
    if i.cluster.metadata.deletion_timestamp.is_some() {
        return (
            ClusterPhase::Deleting,
            vec![Condition::new(CONDITION_PROGRESSING, true, "Deleting", "removing owned objects")],
        );
    }
    if spec.paused {
        return (
            ClusterPhase::Paused,
            vec![Condition::new(
                CONDITION_PROGRESSING,
                false,
                "Paused",
                "reconciliation is paused by spec.paused",
            )],
        );
    }
    if let Err(violations) = i.spec_check {
        return (
            ClusterPhase::Invalid,
            vec![Condition::new(CONDITION_PROGRESSING, false, "InvalidSpec", violations.to_string())],
        );
    }
    let sts = i.observation.statefulset.as_ref();
    let never_formed = i.cluster.status.as_ref().and_then(|s| s.cluster_id.as_ref()).is_none();
    match (&i.observation.etcd, sts) {
        (_, None) => (
            ClusterPhase::Pending,
            vec![
                Condition::new(
                    CONDITION_AVAILABLE,
                    false,
                    "NotCreated",
                    "the StatefulSet does not exist yet",
                ),
                Condition::new(CONDITION_PROGRESSING, true, "Creating", "creating objects"),
            ],
        ),
        (EtcdState::NotExpected, Some(_)) => (
            ClusterPhase::Stopped,
            vec![
                Condition::new(
                    CONDITION_AVAILABLE,
                    false,
                    "Stopped",
                    "the cluster has no members; data is retained",
                ),
                Condition::new(CONDITION_PROGRESSING, false, "Reconciled", ""),
                Condition::new(CONDITION_DEGRADED, false, "Stopped", ""),
            ],
        ),
        (EtcdState::Unreachable(e), Some(_)) if never_formed => (
            ClusterPhase::Creating,
            vec![
                Condition::new(
                    CONDITION_AVAILABLE,
                    false,
                    "Bootstrapping",
                    format!("members are starting: {e}"),
                ),
                Condition::new(
                    CONDITION_PROGRESSING,
                    true,
                    "Bootstrapping",
                    "waiting for the first leader election",
                ),
            ],
        ),
        (EtcdState::Unreachable(e), Some(_)) => (
            ClusterPhase::Unavailable,
            vec![
                Condition::new(CONDITION_AVAILABLE, false, "Unreachable", format!("no member answered: {e}")),
                Condition::new(CONDITION_DEGRADED, true, "Unreachable", "no member answered"),
            ],
        ),
        (EtcdState::Reached(view), Some(sts)) => reached(i, view, sts, members),
    }
}
