//! What the conditions tell a user when quorum is lost, and after the operator
//! recreated a cluster from a backup because of it. Pure.

use etcd_operator_api::{
    Condition,
    cluster::{CONDITION_DATA_LOSS_POSSIBLE, MemberStatus, RecoveryPolicy, RestorePhase, RestoreStatus},
};

use etcd_operator_api::{cluster::CONDITION_AVAILABLE, condition::ConditionStatus};

use crate::observe::Observation;
use crate::quorum_evidence::corroborate_observation;

/// When the operator sees no quorum (`Unreachable`, `QuorumLost`) but the kubelet or a member
/// contradicts it, Available becomes Unknown (`MembersUnreachable`) and says which evidence.
pub(super) fn contradict_unconfirmed_loss(
    conditions: &mut [Condition],
    observation: &Observation,
    members: &[MemberStatus],
) {
    let Some(available) = conditions
        .iter_mut()
        .find(|c| c.type_ == CONDITION_AVAILABLE && (c.reason == "Unreachable" || c.reason == "QuorumLost"))
    else {
        return;
    };
    // Pods that could not be listed contradict nothing (nor do they corroborate: see quorum_evidence).
    if observation.pods.is_none() {
        return;
    }
    if let Err(why) = corroborate_observation(observation, members) {
        *available = Condition::new(CONDITION_AVAILABLE, ConditionStatus::Unknown, "MembersUnreachable", why);
    }
}

/// After a quorum-loss recovery: what the cluster holds now, and what is gone.
pub(super) fn data_loss_possible(r: &RestoreStatus) -> Condition {
    let reason = match r.phase {
        RestorePhase::Completed => "RestoredAfterQuorumLoss",
        _ => "RestoringAfterQuorumLoss",
    };
    Condition::new(
        CONDITION_DATA_LOSS_POSSIBLE,
        true,
        reason,
        format!(
            "quorum was lost and the cluster was recreated from {} (revision {}, taken {}): writes acknowledged after it are lost",
            r.source,
            r.revision.map_or_else(|| "unknown".into(), |v| v.to_string()),
            r.taken_at.as_deref().unwrap_or("at an unknown time")
        ),
    )
}

/// What a user can do when a majority is gone; without opt-in the operator destroys nothing by itself.
pub(super) fn quorum_lost(
    healthy: usize,
    voters: usize,
    members: &[MemberStatus],
    recovery: Option<&RecoveryPolicy>,
) -> String {
    let down: Vec<&str> = members.iter().filter(|m| !m.healthy).map(|m| m.name.as_str()).collect();
    let head = format!("{healthy}/{voters} voting members healthy: no quorum, writes stop.");
    if let Some(policy) = recovery.filter(|p| p.restore_on_quorum_loss) {
        return format!(
            "{head} Down: {}. spec.recovery.restoreOnQuorumLoss is on: once this has lasted {} and the kubelet \
             agrees (a majority of member pods not Ready, no member naming a leader), the cluster is recreated \
             from the saved data of the most advanced member that still answers, or, when none is as new as the \
             newest verified EtcdBackup, from that backup once you accept it (annotation {}=<backup>); writes \
             after the source are lost. Bring the members back before then to keep every write",
            down.join(", "),
            policy.quorum_loss_grace_period,
            etcd_operator_api::cluster::ANNOTATION_ACCEPT_QUORUM_LOSS_RESTORE
        );
    }
    format!(
        "{head} Nothing is changed automatically. \
         Bring back the members that are down ({}) with their data if you can: the cluster resumes as it was. \
         If their data is lost, restore: create a new EtcdCluster with spec.restore.backupName set to the newest \
         Succeeded EtcdBackup (writes after it are lost), then move clients to it; or set \
         spec.recovery.restoreOnQuorumLoss and the operator recreates this cluster from that backup in place",
        down.join(", ")
    )
}
