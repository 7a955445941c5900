//! Replacing a failed member. Pure, and resumable from the record like scaling:
//!
//! pick a voter etcd itself has not heard from for longer than the grace
//! period (or the one asked for) → check that removing it keeps quorum →
//! record → remove it from etcd → delete its claim and pod (the ConfigMap
//! first says `existing`, so the new pod can only join) → once the old pod is
//! gone, re-add it as a learner under the same name and peer URL → wait until
//! the learner runs → promote (retried until in sync) → done. The learner is
//! added only after the old incarnation is gone: a restart of the old pod in
//! between would join as the learner on the lost volume, and the new, empty
//! one would then be behind what the leader believes it has (etcd panics with
//! "tocommit out of range"). A pod that is only slow or partitioned for less
//! than the grace period is left alone: the clock starts when etcd's own
//! status call first fails.

use std::{collections::HashMap, time::Duration};

use etcd_operator_api::cluster::OperationStatus;
use etcd_operator_resource::names::ClusterNames;

use crate::membership::{ran_and_went_silent, silent_for, unsafe_removal};
use crate::observe::{EtcdView, MemberView};

/// Operation type of a member replacement.
use crate::operation::OperationType;

/// Steps of a replacement (the vocabulary lives with `status.operation`).
pub use crate::operation::step::replace as step;

/// What a replacement decides from.
pub struct ReplaceInputs<'a> {
    /// Membership and each member's own status.
    pub view: &'a EtcdView,
    /// The operation recorded in status, if it is a replacement.
    pub operation: Option<&'a OperationStatus>,
    /// The member the caller asked to replace (`None`: pick one that stayed unhealthy).
    pub requested: Option<&'a str>,
    /// How long each member has been unhealthy, by name.
    pub unhealthy_for: &'a HashMap<String, Duration>,
    /// How long a member must stay unhealthy before it is replaced without being asked.
    pub grace: Duration,
    /// StatefulSet `spec.replicas`.
    pub replicas: i32,
    /// `spec.size`: members the spec wants.
    pub size: i32,
    /// Whether the replaced member's old pod is still terminating.
    pub pod_terminating: bool,
    /// Names of the cluster's objects.
    pub names: &'a ClusterNames,
    /// Now, RFC 3339.
    pub now: &'a str,
}

/// The one step to take now.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplaceAction {
    /// Nothing needs replacing (the reason says why).
    Nothing(String),
    /// Write this record first.
    Record(OperationStatus),
    /// Remove the failed member from etcd.
    Remove { id: u64 },
    /// Add the member again as a learner.
    AddLearner { member: String, peer_url: String },
    /// Write the ConfigMap (`existing`, listing `initial_members` to join), delete the member's
    /// claim and pod (then record the next step).
    RecreateVolume { claim: String, pod: String, initial_members: Vec<String> },
    /// Promote the new learner.
    Promote { id: u64 },
    /// Look again later.
    Wait { reason: String, after: Duration },
    /// Give the record up before acting on the next step (the reason says why): the member is
    /// out of etcd, nothing is lost, and what holds the replacement needs the record gone.
    Withdraw(String),
    /// Finished: clear the record.
    Done,
    /// Unsafe now; nothing was done.
    Refuse(String),
}

fn record(i: &ReplaceInputs<'_>, step: &str, member: &str, id: Option<u64>) -> ReplaceAction {
    ReplaceAction::Record(OperationStatus {
        member: Some(member.into()),
        member_id: id.map(|id| format!("{id:x}")),
        ..OperationStatus::at_step(OperationType::ReplaceMember, step, i.operation, i.now)
    })
}

fn wait(reason: impl Into<String>, secs: u64) -> ReplaceAction {
    ReplaceAction::Wait { reason: reason.into(), after: Duration::from_secs(secs) }
}

/// Decides the next step of a replacement.
pub fn next_replace_action(i: &ReplaceInputs<'_>) -> ReplaceAction {
    match i.operation.filter(|op| op.type_ == OperationType::ReplaceMember) {
        Some(op) => resume(i, op),
        None => start(i),
    }
}

fn start(i: &ReplaceInputs<'_>) -> ReplaceAction {
    if let Some(learner) = i.view.members.iter().find(|m| m.info.is_learner) {
        return ReplaceAction::Nothing(format!("learner {} is still joining", learner.name()));
    }
    let candidate = match i.requested {
        Some(name) => match i.view.members.iter().find(|m| m.name() == name) {
            Some(m) => m,
            None => return ReplaceAction::Refuse(format!("{name} is not a member of this cluster")),
        },
        None => {
            let mut failed: Vec<&MemberView> = i
                .view
                .members
                .iter()
                // Not answering at all: an alarm (NOSPACE) is the cluster's problem, not the member's.
                .filter(|m| m.status.is_err() && silent_for(i.unhealthy_for, &m.name(), i.grace))
                .collect();
            failed.sort_by_key(|m| i.names.ordinal(&m.name()).unwrap_or(i32::MAX));
            let Some(first) = failed.first().copied() else {
                return ReplaceAction::Nothing(match i.view.members.iter().find(|m| !m.healthy()) {
                    Some(m) => format!(
                        "{} is unhealthy for less than {:?}: not replaced yet (it may only be slow or partitioned)",
                        m.name(),
                        i.grace
                    ),
                    None => "every member is healthy".into(),
                });
            };
            first
        }
    };
    if i.names.ordinal(&candidate.name()).is_none_or(|o| o >= i.replicas) {
        return ReplaceAction::Refuse(format!(
            "{} has no pod of this cluster's StatefulSet",
            candidate.name()
        ));
    }
    if let Some(reason) = unsafe_removal(i.view, candidate) {
        return ReplaceAction::Refuse(format!("{} cannot be replaced now: {reason}", candidate.name()));
    }
    record(i, step::REMOVING_MEMBER, &candidate.name(), Some(candidate.info.id))
}

fn resume(i: &ReplaceInputs<'_>, op: &OperationStatus) -> ReplaceAction {
    let member = op.member.clone().unwrap_or_default();
    let Some(ordinal) = i.names.ordinal(&member) else {
        return ReplaceAction::Refuse(format!("recorded replacement names {member:?}, not a member"));
    };
    let recorded = op.member_id.as_deref().and_then(|id| u64::from_str_radix(id, 16).ok());
    let peer_url = i.names.peer_url(&member);
    let current = i.view.members.iter().find(|m| m.info.peer_urls.contains(&peer_url) || m.name() == member);
    match op.step.as_str() {
        step::REMOVING_MEMBER => match current {
            Some(m) if Some(m.info.id) == recorded => match unsafe_removal(i.view, m) {
                Some(reason) => ReplaceAction::Refuse(reason),
                None => ReplaceAction::Remove { id: m.info.id },
            },
            _ => record(i, step::RECREATING_VOLUME, &member, None),
        },
        step::RECREATING_VOLUME => {
            let mut initial: Vec<String> =
                i.view.members.iter().map(MemberView::name).filter(|n| *n != member).collect();
            initial.push(member.clone());
            initial.sort_by_key(|n| i.names.ordinal(n));
            ReplaceAction::RecreateVolume {
                claim: i.names.pvc(ordinal),
                pod: member,
                initial_members: initial,
            }
        }
        step::ADDING_LEARNER => match current {
            Some(m) if m.info.is_learner => record(i, step::STARTING_MEMBER, &member, Some(m.info.id)),
            Some(m) => ReplaceAction::Refuse(format!(
                "{member} is a voting member again ({:x}) though it was being replaced; stopping here",
                m.info.id
            )),
            None if i.pod_terminating => wait(format!("the old pod {member} is stopping"), 1),
            // The spec no longer wants it (campaign seed 78): the scale down waits for this
            // record, and takes the top member's pod away. Out of etcd, nothing of it is lost.
            None if unwanted_top(i, ordinal) => ReplaceAction::Withdraw(format!(
                "spec.size is {} and {member} is the highest ordinal: the spec does not want it",
                i.size
            )),
            None => ReplaceAction::AddLearner { member, peer_url },
        },
        step::STARTING_MEMBER | step::PROMOTING_MEMBER => match current {
            None => {
                ReplaceAction::Refuse(format!("the new learner {member} is gone from etcd; stopping here"))
            }
            Some(m) if m.info.is_learner && !m.healthy() => silent_learner(i, m, &member),
            Some(m) if m.info.is_learner && op.step == step::STARTING_MEMBER => {
                record(i, step::PROMOTING_MEMBER, &member, Some(m.info.id))
            }
            Some(m) if m.info.is_learner => ReplaceAction::Promote { id: m.info.id },
            Some(m) if !m.healthy() => wait(format!("{member} is not healthy yet"), 1),
            Some(_) => ReplaceAction::Done,
        },
        other => ReplaceAction::Refuse(format!("unknown replacement step {other:?}")),
    }
}

/// Whether the spec stopped wanting the member at `ordinal` (no pod for it, or a size that a
/// scale down reaches), and no member stands above it: scaling shrinks from the top, so a gap
/// below another member would be left for nobody to fill. Size 0 stops the cluster; it does
/// not drop members.
fn unwanted_top(i: &ReplaceInputs<'_>, ordinal: i32) -> bool {
    let above = i.view.members.iter().any(|m| i.names.ordinal(&m.name()).is_some_and(|o| o > ordinal));
    !above && (ordinal >= i.replicas || (i.size >= 1 && ordinal >= i.size))
}

/// The new learner does not answer. One that ran before (etcd knows its name) and has been
/// silent past the grace period may have lost its volume again: the restore agent rightly
/// refuses to start a member that ran before on an empty volume, so waiting would wait forever
/// (campaign seed 49). Removing a learner loses nothing (it counts for no quorum and holds
/// nothing the voters lack): the replacement goes back to removing it, and adds it again empty.
fn silent_learner(i: &ReplaceInputs<'_>, m: &MemberView, member: &str) -> ReplaceAction {
    if ran_and_went_silent(m, i.unhealthy_for, i.grace) {
        record(i, step::REMOVING_MEMBER, member, Some(m.info.id))
    } else {
        wait(format!("learner {member} is starting empty"), 1)
    }
}
