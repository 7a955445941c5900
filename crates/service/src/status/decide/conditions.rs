//! The conditions of a cluster whose etcd answered: Available from quorum,
//! Degraded from the members, Progressing from rollouts and size changes, and
//! the spec's warnings. Pure.

use etcd_operator_api::{
    Condition,
    cluster::{CONDITION_AVAILABLE, CONDITION_DEGRADED, CONDITION_PROGRESSING, ClusterPhase, MemberStatus},
    version::EtcdVersion,
};

use super::{CONDITION_SPEC_WARNING, StatusInputs, quorum_conditions, scaling_op};
use crate::membership::Quorum;
use crate::observe::{EtcdView, StatefulSetState};
use crate::operation::OperationType;
use crate::plan::RolloutDecision;

pub(super) fn reached(
    i: &StatusInputs<'_>,
    view: &EtcdView,
    sts: &StatefulSetState,
    members: &[MemberStatus],
) -> (ClusterPhase, Vec<Condition>) {
    let q = Quorum::of(view);
    let available = available_condition(i, &q, members);
    let degraded = degraded_condition(view, members);
    let progressing = progressing_condition(i, view, sts);
    let phase = if !q.has_quorum() {
        ClusterPhase::Unavailable
    } else if progressing.is_true() {
        ClusterPhase::Updating
    } else if degraded.is_true() {
        ClusterPhase::Degraded
    } else {
        ClusterPhase::Running
    };
    (phase, vec![available, progressing, degraded])
}

/// Available: a leader with a majority of the voters healthy, or why quorum is lost.
fn available_condition(i: &StatusInputs<'_>, q: &Quorum, members: &[MemberStatus]) -> Condition {
    if q.has_quorum() {
        Condition::new(
            CONDITION_AVAILABLE,
            true,
            "QuorumHealthy",
            format!("{}/{} voting members healthy", q.healthy_voters, q.voters),
        )
    } else {
        Condition::new(
            CONDITION_AVAILABLE,
            false,
            "QuorumLost",
            quorum_conditions::quorum_lost(
                q.healthy_voters,
                q.voters,
                members,
                i.cluster.spec.recovery.as_ref(),
            ),
        )
    }
}

/// Degraded: members disagreeing on the cluster ID, unhealthy members, or alarms.
fn degraded_condition(view: &EtcdView, members: &[MemberStatus]) -> Condition {
    let unhealthy: Vec<&str> = members.iter().filter(|m| !m.healthy).map(|m| m.name.as_str()).collect();
    let alarms: Vec<String> =
        members.iter().flat_map(|m| m.alarms.iter().map(move |a| format!("{a} on {}", m.name))).collect();
    // Members that answer for different clusters: never one cluster, whatever else they say.
    let mut ids: Vec<u64> =
        view.members.iter().filter_map(|m| m.status.as_ref().ok()).map(|s| s.cluster_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > 1 {
        let who: Vec<String> = view
            .members
            .iter()
            .filter_map(|m| m.status.as_ref().ok().map(|s| format!("{} in {:x}", m.name(), s.cluster_id)))
            .collect();
        Condition::new(
            CONDITION_DEGRADED,
            true,
            "SplitBrain",
            format!("members disagree on the cluster ID: {}", who.join(", ")),
        )
    } else if !unhealthy.is_empty() {
        Condition::new(
            CONDITION_DEGRADED,
            true,
            "MembersUnhealthy",
            format!("unhealthy: {}", unhealthy.join(", ")),
        )
    } else if !alarms.is_empty() {
        Condition::new(CONDITION_DEGRADED, true, "Alarm", alarms.join(", "))
    } else {
        Condition::new(CONDITION_DEGRADED, false, "AllMembersHealthy", "")
    }
}

/// Progressing: the scaling operation under way, a blocked or running rollout, or a size change.
fn progressing_condition(i: &StatusInputs<'_>, view: &EtcdView, sts: &StatefulSetState) -> Condition {
    let size = i.cluster.spec.size;
    let scaling = scaling_op(i);
    match i.rollout {
        _ if let Some(op) = &scaling => Condition::new(
            CONDITION_PROGRESSING,
            true,
            &op.step,
            format!(
                "{} to {} members: {} {}",
                op.type_,
                op.target.unwrap_or(size),
                op.step,
                op.member.as_deref().unwrap_or_default()
            ),
        ),
        RolloutDecision::Wait(why) => {
            Condition::new(CONDITION_PROGRESSING, false, "RolloutBlocked", why.clone())
        }
        RolloutDecision::Proceed if sts.rolling() => Condition::new(
            CONDITION_PROGRESSING,
            true,
            OperationType::RollingUpdate.as_str(),
            format!("{}/{} pods updated", sts.updated, sts.replicas),
        ),
        RolloutDecision::Proceed if view.members.len() as i32 != size => Condition::new(
            CONDITION_PROGRESSING,
            true,
            "SizeChangePending",
            format!(
                "{} members, spec.size is {size}; the scaling service changes membership one member at a time",
                view.members.len()
            ),
        ),
        RolloutDecision::Proceed => Condition::new(CONDITION_PROGRESSING, false, "Reconciled", ""),
    }
}

pub(super) fn spec_warning(size: i32, version: &str) -> Condition {
    let mut warnings = Vec::new();
    if size > 0 && size % 2 == 0 {
        warnings.push(format!("spec.size {size} is even: it tolerates no more failures than {}", size - 1));
    }
    if size > 7 {
        warnings.push(format!("spec.size {size} is above 7, the practical maximum: writes get slower"));
    }
    if EtcdVersion::parse(version).is_ok_and(|v| v.below_production_minimum()) {
        warnings.push(format!("etcd {version} is below the production minimum (3.4.22+ / 3.5.6+)"));
    }
    if warnings.is_empty() {
        Condition::new(CONDITION_SPEC_WARNING, false, "NoWarnings", "")
    } else {
        Condition::new(CONDITION_SPEC_WARNING, true, "NotRecommended", warnings.join("; "))
    }
}
