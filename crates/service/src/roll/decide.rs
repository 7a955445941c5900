//! The roll's decisions, pure: which member restarts next on the StatefulSet's
//! new pod template, and whether it may now.
//!
//! One member at a time. A member restarts only while every other member is a
//! healthy, caught-up voter with a ready pod, so one more member down never
//! costs quorum. Followers go first; a member that is down already goes before
//! any healthy one (restarting it costs nothing, and it is how a roll onto a
//! broken template is mended by a fixed one). The leader goes last, after it
//! handed leadership to a member on the new template.
//!
//! A cluster that never formed has no data to protect: its outdated pods all
//! go at once, as a broken first spec that was fixed needs.
//!
//! The intent is recorded before the pod is deleted, and cleared as soon as
//! the pod is back on the new revision: a crash in between resumes with the
//! same member, and a member that then stays down is free for the recovery's
//! replacement (which a recorded roll would refuse).

use std::time::Duration;

use etcd_operator_resource::names::ClusterNames;

use crate::{
    membership::{speaks, successor},
    observe::{EtcdView, MemberView, PodState, StatefulSetState},
    operation::{OperationStatus, OperationType, step::roll as step},
};

/// How far (in raft entries) a member may trail the leader and still count as caught up.
pub const MAX_LAG: u64 = 1000;

/// What the next roll step decides from.
pub struct RollInputs<'a> {
    /// The StatefulSet as its controller last reported it.
    pub sts: &'a StatefulSetState,
    /// The member pods.
    pub pods: &'a [PodState],
    /// etcd's view.
    pub view: &'a EtcdView,
    /// The roll recorded in status, if any.
    pub operation: Option<&'a OperationStatus>,
    /// etcd formed a cluster once (else there is no data to protect).
    pub formed: bool,
    /// The cluster's names.
    pub names: &'a ClusterNames,
    /// Now, RFC 3339.
    pub now: &'a str,
}

/// The next step of a roll.
#[derive(Clone, Debug, PartialEq)]
pub enum RollAction {
    /// Every pod runs the StatefulSet's update revision: clear any record.
    Done,
    /// Record the member about to restart, before touching it.
    Record(OperationStatus),
    /// Hand leadership from `leader_endpoint` to member `to` (the member about to restart leads).
    MoveLeader { leader_endpoint: String, to: u64 },
    /// Set the member's peer URL to the scheme the new template listens with: before it restarts
    /// onto it, or when it runs it already (moving between plaintext and TLS).
    UpdatePeerUrl { member: String, id: u64, peer_url: String },
    /// Delete the member's pod (this one, by UID); the StatefulSet recreates it on the new template.
    Restart { member: String, uid: String },
    /// The recorded member's pod is back on the new template: clear the record and go on.
    Restarted { member: String },
    /// A cluster that never formed: every outdated pod (name, UID) goes at once, so a broken first
    /// spec that was fixed takes effect.
    RestartUnformed(Vec<(String, String)>),
    /// Not now; why, and when to look again.
    Wait { reason: String, after: Duration },
}

fn wait(reason: impl Into<String>, secs: u64) -> RollAction {
    RollAction::Wait { reason: reason.into(), after: Duration::from_secs(secs) }
}

/// Decides the next step of a roll.
pub fn next_roll_action(i: &RollInputs<'_>) -> RollAction {
    if !i.sts.up_to_date || i.sts.update_revision.is_empty() {
        return wait("the StatefulSet controller has not taken up the new template yet", 1);
    }
    let update = i.sts.update_revision.as_str();
    // Pods on an older template that are not already going.
    let mut outdated: Vec<&PodState> =
        i.pods.iter().filter(|p| p.revision != update && !p.terminating).collect();
    if !i.formed {
        let outdated: Vec<(String, String)> =
            outdated.iter().map(|p| (p.name.clone(), p.uid.clone())).collect();
        return if outdated.is_empty() { RollAction::Done } else { RollAction::RestartUnformed(outdated) };
    }
    if let Some(op) = i.operation.filter(|op| op.type_ == OperationType::RollingUpdate)
        && let Some(member) = op.member.as_deref()
    {
        return match i.pods.iter().find(|p| p.name == member) {
            None => wait(format!("{member} is restarting: its pod is being recreated"), 1),
            Some(p) if p.terminating => wait(format!("{member} is restarting: its pod is stopping"), 1),
            Some(p) if p.revision == update => RollAction::Restarted { member: member.to_owned() },
            Some(p) => restart(i, p),
        };
    }
    if let Some(action) = stale_peer_url(i) {
        return action;
    }
    if outdated.is_empty() && i.pods.iter().all(|p| !p.terminating) {
        return RollAction::Done;
    }
    if outdated.is_empty() {
        return wait("a member pod is stopping", 1);
    }
    // Down already first, then followers by highest ordinal, the leader last.
    outdated.sort_by_key(|p| {
        let member = find(i.view, &p.name);
        let down = !p.ready || member.is_none_or(|m| !m.healthy());
        let leads = member.is_some_and(MemberView::leads);
        (!down, leads, std::cmp::Reverse(i.names.ordinal(&p.name).unwrap_or(0)))
    });
    let next = outdated[0];
    if let Err(reason) = others_ready(i, &next.name) {
        return wait(reason, 2);
    }
    let op = OperationStatus {
        member: Some(next.name.clone()),
        ..OperationStatus::at_step(OperationType::RollingUpdate, step::RESTARTING_MEMBER, i.operation, i.now)
    };
    RollAction::Record(op)
}

/// The recorded member restarts: after leadership moved away from it, and only while the others
/// can carry the cluster.
fn restart(i: &RollInputs<'_>, pod: &PodState) -> RollAction {
    if let Err(reason) = others_ready(i, &pod.name) {
        return wait(reason, 2);
    }
    let voters = i.view.members.len();
    if let Some(m) = find(i.view, &pod.name).filter(|m| m.leads() && voters > 1) {
        // Prefer a member already on the new template: it will not restart in this roll.
        return match successor(i.view, i.names, m.info.id, |o| on_revision(i, &o.name())) {
            Some(to) => {
                RollAction::MoveLeader { leader_endpoint: m.client_endpoint(i.names), to: to.info.id }
            }
            None => wait(format!("{} leads and no other healthy voter can take over", pod.name), 2),
        };
    }
    // The others dial it in the scheme it will listen with (for a moment they cannot, as while
    // it restarts); the membership is the record, so a crash in between repeats nothing.
    if let Some(m) = find(i.view, &pod.name).filter(|m| !speaks(m, i.names)) {
        let peer_url = i.names.peer_url(&pod.name);
        return RollAction::UpdatePeerUrl { member: pod.name.clone(), id: m.info.id, peer_url };
    }
    RollAction::Restart { member: pod.name.clone(), uid: pod.uid.clone() }
}

/// A member that runs the new template but whose peer URL is in the other scheme (its pod was
/// recreated before the roll reached it): the others cannot dial it until it is set.
fn stale_peer_url(i: &RollInputs<'_>) -> Option<RollAction> {
    let m = i.view.members.iter().find(|m| on_revision(i, &m.name()) && !speaks(m, i.names))?;
    let member = m.name();
    Some(RollAction::UpdatePeerUrl { peer_url: i.names.peer_url(&member), id: m.info.id, member })
}

/// Whether every member but `restarting` is a healthy, caught-up voter with a ready pod, and the
/// membership is the StatefulSet's: only then does one member down keep quorum.
fn others_ready(i: &RollInputs<'_>, restarting: &str) -> Result<(), String> {
    let live = i.pods.iter().filter(|p| !p.terminating).count() as i32;
    if live != i.sts.replicas || i.view.members.len() as i32 != i.sts.replicas {
        return Err(format!(
            "{} pods and {} etcd members for {} replicas: waiting for membership to settle",
            live,
            i.view.members.len(),
            i.sts.replicas
        ));
    }
    if let Some(learner) = i.view.members.iter().find(|m| m.info.is_learner) {
        return Err(format!("{} is a learner still joining", learner.name()));
    }
    let leader_index = i
        .view
        .members
        .iter()
        .filter_map(|m| m.status.as_ref().ok())
        .find(|s| s.is_leader())
        .map(|s| s.raft_index);
    let Some(leader_index) = leader_index else {
        return Err("no member reports itself as leader".into());
    };
    for m in i.view.members.iter().filter(|m| m.name() != restarting) {
        let name = m.name();
        let ready = i.pods.iter().any(|p| p.name == name && p.ready);
        match &m.status {
            Err(e) => return Err(format!("{name} is not healthy ({e})")),
            Ok(s) if !s.errors.is_empty() => {
                return Err(format!("{name} is not healthy ({})", s.errors.join(", ")));
            }
            Ok(_) if !ready => return Err(format!("{name}'s pod is not ready")),
            Ok(s) if s.raft_index + MAX_LAG < leader_index => {
                return Err(format!(
                    "{name} is catching up (raft index {} of the leader's {leader_index})",
                    s.raft_index
                ));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

fn find<'a>(view: &'a EtcdView, name: &str) -> Option<&'a MemberView> {
    view.members.iter().find(|m| m.name() == name)
}

fn on_revision(i: &RollInputs<'_>, name: &str) -> bool {
    i.pods.iter().any(|p| p.name == name && p.revision == i.sts.update_revision)
}
