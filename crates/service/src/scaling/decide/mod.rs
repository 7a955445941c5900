//! Scaling decisions: the next single step that moves membership towards a
//! target without ever risking quorum or data. Pure: every input is an
//! observation, and the step taken is recorded in status before it is acted
//! on, so whoever calls next (after any crash) resumes from the record.
//!
//! Scale up, per member: record intent → add as learner → start its pod →
//! wait until it runs → promote (retried while etcd says it is not in sync)
//! → verify healthy voter. Scale down, per member, highest ordinal first:
//! check quorum → record intent → move leadership away if it leads →
//! remove from etcd → shrink the StatefulSet → wait for the pod to go.

use std::{collections::HashMap, time::Duration};

use etcd_operator_api::cluster::OperationStatus;
use etcd_operator_resource::names::ClusterNames;

use crate::membership::{cannot_add, ran_and_went_silent, silent_for, successor, unsafe_removal};

use crate::observe::{EtcdView, MemberView};

use crate::operation::{OperationType, is_membership_change, member_step as step};

mod converge;

pub use converge::{Converge, ConvergeInputs, converge};

/// What the scaling service knows when it decides.
pub struct ScalingInputs<'a> {
    /// Member count wanted.
    pub target: i32,
    /// StatefulSet `spec.replicas`.
    pub replicas: i32,
    /// Pods the StatefulSet has now (its `status.replicas`).
    pub pods: i32,
    /// Membership and each member's own status.
    pub view: &'a EtcdView,
    /// The scaling operation recorded in status, if any.
    pub operation: Option<&'a OperationStatus>,
    /// PVC names that exist.
    pub claims: &'a [String],
    /// Names of the cluster's objects.
    pub names: &'a ClusterNames,
    /// Now, RFC 3339 (for new records).
    pub now: &'a str,
    /// How long each member has been unhealthy, by name.
    pub unhealthy_for: &'a HashMap<String, Duration>,
    /// How long the member being added may stay silent before it is given up (a learner that ran
    /// before is added again empty; a voter is left to its replacement).
    pub grace: Duration,
}

/// The one step to take now.
#[derive(Clone, Debug, PartialEq)]
pub enum ScalingAction {
    /// Membership matches the target; the record (if any) is cleared.
    Done,
    /// Write this record to status before anything else.
    Record(OperationStatus),
    /// Delete the claim of a member that is not in etcd: a re-added member must start empty.
    DeleteStaleClaim { claim: String },
    /// Add the member to etcd as a learner.
    AddLearner { member: String, peer_url: String },
    /// Set StatefulSet replicas (pods for `members` joining with `initial_members`).
    SetReplicas { replicas: i32, initial_members: Vec<String> },
    /// Promote the learner.
    Promote { member: String, id: u64 },
    /// Hand leadership from `leader_endpoint` to member `to`.
    MoveLeader { leader_endpoint: String, to: u64 },
    /// Remove the member from etcd.
    Remove { member: String, id: u64 },
    /// Nothing to do until something changes; look again after the delay.
    Wait { reason: String, after: Duration },
    /// The change is unsafe now (FAILED_PRECONDITION); nothing was done.
    Refuse(String),
    /// The record is given up: its step was never acted on and cannot be now, or its new member
    /// stopped answering. The record is cleared (so a replacement it would block can run) and
    /// the scale starts again later.
    Withdraw(String),
}

fn wait(reason: impl Into<String>, secs: u64) -> ScalingAction {
    ScalingAction::Wait { reason: reason.into(), after: Duration::from_secs(secs) }
}

fn record(
    i: &ScalingInputs<'_>,
    type_: OperationType,
    step: &str,
    member: String,
    id: Option<u64>,
) -> ScalingAction {
    ScalingAction::Record(OperationStatus {
        target: Some(i.target),
        member: Some(member),
        member_id: id.map(|id| format!("{id:x}")),
        ..OperationStatus::at_step(type_, step, i.operation, i.now)
    })
}

/// The member a record names, found by name or (not started yet) by peer URL.
fn find<'a>(i: &'a ScalingInputs<'_>, member: &str) -> Option<&'a MemberView> {
    let peer = i.names.peer_url(member);
    i.view.members.iter().find(|m| m.name() == member || m.info.peer_urls.contains(&peer))
}

fn started(m: &MemberView) -> bool {
    !m.info.name.is_empty() && m.status.is_ok()
}

/// Decides the next step.
pub fn next_scaling_action(i: &ScalingInputs<'_>) -> ScalingAction {
    if let Some(op) = i.operation.filter(|op| is_membership_change(op)) {
        let member = op.member.clone().unwrap_or_default();
        let Some(ordinal) = i.names.ordinal(&member) else {
            return ScalingAction::Refuse(format!(
                "recorded operation names {member:?}, not a member of this cluster"
            ));
        };
        return if op.type_ == OperationType::ScaleUp {
            resume_up(i, op, member, ordinal)
        } else {
            resume_down(i, member, ordinal)
        };
    }
    start(i)
}

/// Starts the next member's change, or finishes.
fn start(i: &ScalingInputs<'_>) -> ScalingAction {
    let count = i.view.members.len() as i32;
    // A learner nobody recorded (an older run's) is adopted and finished, never orphaned.
    if let Some(learner) = i.view.members.iter().find(|m| m.info.is_learner) {
        return record(
            i,
            OperationType::ScaleUp,
            step::STARTING_MEMBER,
            learner.name(),
            Some(learner.info.id),
        );
    }
    if count < i.replicas && top_pods_without_membership(i) {
        // A replacement given up at the top (the spec stopped wanting its member) leaves pods no
        // member stands for: the scale shrinks them first, on its record like any step.
        return if i.target > count {
            record(i, OperationType::ScaleUp, step::ADDING_LEARNER, i.names.member(count), None)
        } else {
            record(i, OperationType::ScaleDown, step::REMOVING_MEMBER, i.names.member(count), None)
        };
    }
    if count != i.replicas {
        return wait(
            format!(
                "etcd has {count} members but the StatefulSet wants {} pods; waiting for them to agree",
                i.replicas
            ),
            5,
        );
    }
    if i.target > count {
        if let Some(why) = cannot_add(i.view) {
            return wait(why, 5);
        }
        return record(i, OperationType::ScaleUp, step::ADDING_LEARNER, i.names.member(count), None);
    }
    if i.target < count {
        if i.target < 1 {
            return ScalingAction::Refuse(
                "target 0 stops the cluster: that is ScaleToZero, not ScaleDown".into(),
            );
        }
        let Some(last) = i.view.members.iter().max_by_key(|m| i.names.ordinal(&m.name()).unwrap_or(-1))
        else {
            return ScalingAction::Done;
        };
        if let Some(reason) = unsafe_removal(i.view, last) {
            return ScalingAction::Refuse(reason);
        }
        return record(i, OperationType::ScaleDown, step::REMOVING_MEMBER, last.name(), Some(last.info.id));
    }
    // The membership is the target. A member that is unhealthy now is recovery's to replace,
    // and a record kept while waiting for it would keep that replacement out.
    ScalingAction::Done
}

/// Whether the members are exactly ordinals `0..count`: every pod above them stands for no member.
fn top_pods_without_membership(i: &ScalingInputs<'_>) -> bool {
    let mut ordinals: Vec<i32> =
        i.view.members.iter().map(|m| i.names.ordinal(&m.name()).unwrap_or(-1)).collect();
    ordinals.sort_unstable();
    ordinals.into_iter().eq(0..i.view.members.len() as i32)
}

fn resume_up(i: &ScalingInputs<'_>, op: &OperationStatus, member: String, ordinal: i32) -> ScalingAction {
    let count = i.view.members.len() as i32;
    match find(i, &member) {
        None if i.replicas > ordinal => {
            // A pod without membership (crashed before the add, or the member was removed): stop it first.
            ScalingAction::SetReplicas { replicas: ordinal, initial_members: vec![] }
        }
        None if i.pods > ordinal => wait(format!("pod {member} is terminating"), 1),
        None if op.step != step::ADDING_LEARNER => {
            record(i, OperationType::ScaleUp, step::ADDING_LEARNER, member, None)
        }
        // Not added yet (so nothing to undo): a target that no longer wants it, or a voter that
        // keeps etcd from adding anyone, ends the record instead of holding the cluster's one
        // operation slot (a replacement of that voter needs it).
        None if i.target <= ordinal => {
            ScalingAction::Withdraw(format!("spec.size is {} now: {member} is not added", i.target))
        }
        None if let Some(why) = cannot_add(i.view) => ScalingAction::Withdraw(why),
        None if i.claims.contains(&i.names.pvc(ordinal)) => {
            ScalingAction::DeleteStaleClaim { claim: i.names.pvc(ordinal) }
        }
        None => ScalingAction::AddLearner { peer_url: i.names.peer_url(&member), member },
        Some(m) if m.info.is_learner => {
            let id = m.info.id;
            if op.member_id.is_none() || op.step == step::ADDING_LEARNER {
                record(i, OperationType::ScaleUp, step::STARTING_MEMBER, member, Some(id))
            } else if !started(m) && i.target <= ordinal {
                // Not serving and not wanted any more: a learner counts for no quorum and
                // holds nothing the voters lack.
                ScalingAction::Remove { member, id }
            } else if i.replicas <= ordinal {
                let mut initial: Vec<String> = i.view.members.iter().map(MemberView::name).collect();
                initial.sort_by_key(|n| i.names.ordinal(n));
                ScalingAction::SetReplicas { replicas: ordinal + 1, initial_members: initial }
            } else if !started(m) {
                silent_learner(i, m, member)
            } else if op.step != step::PROMOTING_MEMBER {
                record(i, OperationType::ScaleUp, step::PROMOTING_MEMBER, member, Some(id))
            } else {
                ScalingAction::Promote { member, id }
            }
        }
        // Added and promoted, but not answering: a voter that stays silent is recovery's to replace,
        // and the record would keep that replacement out (campaign seed 23: its volume was lost).
        Some(m) if !m.healthy() => {
            if i.target <= ordinal {
                // Not wanted any more: the scale down removes it (while that keeps quorum).
                start_without_record(i)
            } else if silent(i, &member) {
                ScalingAction::Withdraw(format!(
                    "new member {member} has not answered for {:?}: a failed voter is replaced first",
                    i.grace
                ))
            } else {
                wait(format!("new member {member} is not healthy yet"), 1)
            }
        }
        Some(_) if count < i.target => {
            record(i, OperationType::ScaleUp, step::ADDING_LEARNER, i.names.member(count), None)
        }
        Some(_) => {
            // This member is done; a smaller target (changed meanwhile) starts a scale down.
            if i.target < count { start_without_record(i) } else { ScalingAction::Done }
        }
    }
}

/// A wanted learner that does not answer. One that ran before (etcd knows its name) and has
/// been silent past the grace period may have lost its data: the restore agent rightly refuses to
/// start a member that ran before on an empty volume, so waiting would wait forever. Removing a
/// learner loses nothing (it counts for no quorum and holds nothing the voters lack); the
/// scale-up then adds it again, empty, from AddingLearner.
fn silent_learner(i: &ScalingInputs<'_>, m: &MemberView, member: String) -> ScalingAction {
    if ran_and_went_silent(m, i.unhealthy_for, i.grace) {
        ScalingAction::Remove { member, id: m.info.id }
    } else {
        wait(format!("learner {member} is starting"), 1)
    }
}

/// Whether etcd has not heard from `member` for the grace period.
fn silent(i: &ScalingInputs<'_>, member: &str) -> bool {
    silent_for(i.unhealthy_for, member, i.grace)
}

fn start_without_record(i: &ScalingInputs<'_>) -> ScalingAction {
    start(&ScalingInputs { operation: None, ..*i })
}

fn resume_down(i: &ScalingInputs<'_>, member: String, ordinal: i32) -> ScalingAction {
    match find(i, &member) {
        // Still a member: nothing irreversible was done, so a removal that is unsafe now gives
        // its record up (the replacement of a failed voter, which would make it safe, needs it).
        Some(m) => {
            if m.leads() {
                return match successor(i.view, i.names, m.info.id, |_| false) {
                    Some(to) => ScalingAction::MoveLeader {
                        leader_endpoint: m.client_endpoint(i.names),
                        to: to.info.id,
                    },
                    None => ScalingAction::Withdraw(format!(
                        "{member} leads and no other healthy voter can take over"
                    )),
                };
            }
            if let Some(reason) = unsafe_removal(i.view, m) {
                return ScalingAction::Withdraw(reason);
            }
            ScalingAction::Remove { member, id: m.info.id }
        }
        None if i.replicas > ordinal => {
            ScalingAction::SetReplicas { replicas: ordinal, initial_members: vec![] }
        }
        None if i.pods > ordinal => wait(format!("pod {member} is terminating"), 1),
        None => start_without_record(i),
    }
}
