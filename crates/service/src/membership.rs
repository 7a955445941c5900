//! Membership arithmetic shared by every decision: who votes, who is
//! healthy, whether a majority serves, and whether removing a member is safe.

pub use etcd_operator_common::quorum;

use crate::observe::{EtcdView, MemberView};

/// Voting members that are healthy, leaving out `except`.
pub fn healthy_voters(view: &EtcdView, except: Option<u64>) -> usize {
    view.members.iter().filter(|m| !m.info.is_learner && m.healthy() && Some(m.info.id) != except).count()
}

/// A healthy voter other than `leader` to hand leadership to: one `preferred` says first, then
/// the lowest ordinal.
pub fn successor<'a>(
    view: &'a EtcdView,
    names: &etcd_operator_resource::names::ClusterNames,
    leader: u64,
    preferred: impl Fn(&MemberView) -> bool,
) -> Option<&'a MemberView> {
    view.members
        .iter()
        .filter(|o| o.info.id != leader && !o.info.is_learner && o.healthy())
        .min_by_key(|o| (!preferred(o), names.ordinal(&o.name()).unwrap_or(i32::MAX)))
}

/// Whether the member's peer URLs are in the scheme of `names` (the one the members' template
/// listens with): while the cluster moves between plaintext and TLS, a member's may not be yet.
pub fn speaks(m: &MemberView, names: &etcd_operator_resource::names::ClusterNames) -> bool {
    let scheme = format!("{}://", names.scheme());
    m.info.peer_urls.iter().all(|u| u.starts_with(&scheme))
}

/// Voting members.
pub fn voters(view: &EtcdView) -> usize {
    view.members.iter().filter(|m| !m.info.is_learner).count()
}

/// Health summary of the voting members.
pub struct Quorum {
    /// Voting members.
    pub voters: usize,
    /// Voting members that answer and are healthy.
    pub healthy_voters: usize,
    /// Whether some member reports a leader.
    pub leader: bool,
}

impl Quorum {
    /// The summary of `view`.
    pub fn of(view: &EtcdView) -> Self {
        let voters: Vec<_> = view.members.iter().filter(|m| !m.info.is_learner).collect();
        let leader = view.members.iter().filter_map(|m| m.status.as_ref().ok()).any(|s| s.leader != 0);
        Self { voters: voters.len(), healthy_voters: voters.iter().filter(|m| m.healthy()).count(), leader }
    }

    /// Whether a leader serves with a majority of the voters healthy.
    pub fn has_quorum(&self) -> bool {
        self.leader && self.voters > 0 && self.healthy_voters as i32 >= quorum(self.voters as i32)
    }
}

/// Whether a leader serves with a majority of the voting members answering.
pub fn serving(view: &EtcdView) -> bool {
    Quorum::of(view).has_quorum()
}

/// Why etcd would refuse to add a member now: with its strict reconfiguration check (on by
/// default) it adds none, learners included, unless every voter is connected.
pub fn cannot_add(view: &EtcdView) -> Option<String> {
    let sick = view.members.iter().find(|m| !m.info.is_learner && !m.healthy())?;
    Some(format!(
        "voter {} is not healthy: etcd adds no member until every voter is connected (a failed one is replaced first)",
        sick.name()
    ))
}

/// Why removing `m` would risk quorum, if it would.
pub fn unsafe_removal(view: &EtcdView, m: &MemberView) -> Option<String> {
    let voters = voters(view);
    let healthy = healthy_voters(view, None);
    if (healthy as i32) < quorum(voters as i32) {
        return Some(format!(
            "only {healthy} of {voters} voting members are healthy: no quorum to commit a removal"
        ));
    }
    let remaining = voters - usize::from(!m.info.is_learner);
    let healthy_after = healthy_voters(view, Some(m.info.id));
    if voters == 2 && healthy < 2 {
        return Some(
            "a 2-member cluster loses a member only when both are healthy: the removal needs both votes"
                .into(),
        );
    }
    if (healthy_after as i32) < quorum(remaining as i32) {
        return Some(format!(
            "removing {} would leave {healthy_after} healthy of {remaining} voting members, below quorum {}",
            m.name(),
            quorum(remaining as i32)
        ));
    }
    None
}

/// How long each member has been unhealthy at `now`, by name, from the `unhealthySince` the
/// health probes keep in status: what etcd itself has not heard from, and for how long.
pub fn unhealthy_for(
    status: Option<&etcd_operator_api::cluster::EtcdClusterStatus>,
    now: chrono::DateTime<chrono::Utc>,
) -> std::collections::HashMap<String, std::time::Duration> {
    let members = status.map(|s| s.members.as_slice()).unwrap_or_default();
    members
        .iter()
        .filter_map(|m| {
            let since = m.unhealthy_since.as_deref()?.parse::<chrono::DateTime<chrono::Utc>>().ok()?;
            Some((m.name.clone(), (now - since).to_std().unwrap_or_default()))
        })
        .collect()
}

/// Whether etcd has not heard from `member` for at least `grace` (by [`unhealthy_for`]).
pub fn silent_for(
    unhealthy_for: &std::collections::HashMap<String, std::time::Duration>,
    member: &str,
    grace: std::time::Duration,
) -> bool {
    unhealthy_for.get(member).is_some_and(|d| *d >= grace)
}

/// Whether `m` ran before (etcd knows its name) and has been silent for `grace`: a learner like
/// that may have lost its volume, and the restore agent rightly never starts it empty again.
pub fn ran_and_went_silent(
    m: &crate::observe::MemberView,
    unhealthy_for: &std::collections::HashMap<String, std::time::Duration>,
    grace: std::time::Duration,
) -> bool {
    !m.info.name.is_empty() && silent_for(unhealthy_for, &m.name(), grace)
}
