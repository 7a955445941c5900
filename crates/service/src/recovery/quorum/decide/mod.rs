//! Recovering a cluster whose quorum is lost, when the user opted in
//! (`spec.recovery.restoreOnQuorumLoss`). Pure, and resumable from the record
//! like scaling:
//!
//! assess: a majority of voting members has not answered etcd's own status
//! call for longer than the grace period, no leader is serving, and evidence
//! that does not travel the operator's network path agrees (the kubelet's
//! pods, members naming a leader: `quorum_evidence`) → choose the source:
//! the most advanced member that still answers when it is at least as new as
//! the newest verified backup, else that backup once the user accepted it by
//! annotation → record the operation → save the survivor's data (a verified
//! snapshot) before anything is deleted → stop every member → delete their
//! claims → verify the source again and prepare the restore (token, restore
//! agent in the pod template, a new cluster of the same members) → start the
//! members, each restoring from the same snapshot → done once they all serve
//! as one new cluster.
//!
//! A cluster that is only slow, electing, or partitioned for less than the
//! grace period is left alone: the clock is the time the last member needed
//! for quorum stopped answering, as the health probes recorded it.

mod plan;
#[cfg(test)]
mod tests;

pub use plan::{PlanInputs, plan};

use std::time::Duration;

use crate::membership::quorum;
use chrono::{DateTime, Utc};
use etcd_operator_api::cluster::{MemberStatus, OperationStatus};

use crate::operation::OperationType;

/// Steps of a quorum-loss recovery (the vocabulary lives with `status.operation`).
pub use crate::operation::step::quorum as step;

/// What the assessment of a cluster's quorum decides from.
pub struct QuorumInputs<'a> {
    /// Whether the user opted into restoring from a backup.
    pub enabled: bool,
    /// How long quorum must stay lost first.
    pub grace: Duration,
    /// Members now, with `unhealthySince` as the health probes recorded it.
    pub members: &'a [MemberStatus],
    /// Whether a leader serves with a majority of voters answering (etcd's own view).
    pub serving: bool,
    /// The operation recorded in status.
    pub operation: Option<&'a OperationStatus>,
    /// Whether the cluster is stopped (scaled to zero on purpose).
    pub stopped: bool,
    /// Whether the cluster ever formed (a cluster ID was recorded).
    pub formed: bool,
    /// Evidence beyond the operator's own calls: `Ok(what agrees)` or `Err(what contradicts)`.
    pub corroboration: Result<String, String>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What the assessment found.
#[derive(Clone, Debug, PartialEq)]
pub enum QuorumAssessment {
    /// Nothing to recover (the reason says why).
    Nothing(String),
    /// Quorum is lost but not for long enough: look again after `after`.
    WithinGrace { reason: String, after: Duration },
    /// Quorum is lost and the user did not opt in: nothing is changed.
    Manual(String),
    /// The operator sees no quorum, but other evidence contradicts it: nothing is changed.
    Unconfirmed(String),
    /// Quorum has been lost for longer than the grace period: restore.
    Lost {
        /// Voting members that do not answer.
        down: Vec<String>,
        /// Since when a majority has been down (RFC 3339).
        since: String,
        /// The most advanced voting member that still answers and its revision, if any.
        survivor: Option<(String, i64)>,
        /// What corroborates the loss.
        evidence: String,
    },
}

/// What a look starts from an assessment.
#[derive(Clone, Debug, PartialEq)]
pub enum ToStart {
    /// Quorum lost past its grace period, corroborated: recover.
    Recover {
        /// Voting members that do not answer.
        down: Vec<String>,
        /// Since when a majority has been down (RFC 3339).
        since: String,
        /// The most advanced voting member that still answers and its revision, if any.
        survivor: Option<(String, i64)>,
        /// What corroborates the loss.
        evidence: String,
    },
    /// Nothing is started: why, and when to look again (`None`: at the caller's own pace).
    Nothing { why: String, look_again: Option<Duration> },
}

/// A loss the other evidence contradicts is looked at again soon: the contradiction (a pod the
/// kubelet reports Ready, say) may be the stale side.
const UNCONFIRMED_LOOK_AGAIN: Duration = Duration::from_secs(10);

/// What a look starts: a loss within its grace period is looked at again when the grace ends (at
/// least a second from now), an unconfirmed one after `UNCONFIRMED_LOOK_AGAIN`.
pub fn to_start(assessment: QuorumAssessment) -> ToStart {
    match assessment {
        QuorumAssessment::Nothing(why) | QuorumAssessment::Manual(why) => {
            ToStart::Nothing { why, look_again: None }
        }
        QuorumAssessment::Unconfirmed(why) => {
            ToStart::Nothing { why, look_again: Some(UNCONFIRMED_LOOK_AGAIN) }
        }
        QuorumAssessment::WithinGrace { reason, after } => {
            ToStart::Nothing { why: reason, look_again: Some(after.max(Duration::from_secs(1))) }
        }
        QuorumAssessment::Lost { down, since, survivor, evidence } => {
            ToStart::Recover { down, since, survivor, evidence }
        }
    }
}

/// Decides whether quorum is lost for long enough to restore.
pub fn assess(i: &QuorumInputs<'_>) -> QuorumAssessment {
    if let Some(op) = i.operation {
        if op.type_ == OperationType::RecoverQuorum {
            return QuorumAssessment::Nothing("a quorum-loss recovery is recorded: it goes on".into());
        }
        if op.type_ == OperationType::ScaleToZero || op.type_ == OperationType::RestartFromZero {
            return QuorumAssessment::Nothing(format!("a {} is in progress", op.type_));
        }
    }
    if i.stopped {
        return QuorumAssessment::Nothing("the cluster is stopped on purpose".into());
    }
    if !i.formed {
        return QuorumAssessment::Nothing("the cluster never formed: there is no quorum to lose".into());
    }
    if i.serving {
        return QuorumAssessment::Nothing("quorum holds".into());
    }
    let voters: Vec<&MemberStatus> = i.members.iter().filter(|m| !m.is_learner).collect();
    let mut down: Vec<(DateTime<Utc>, &str)> = voters
        .iter()
        .filter(|m| !m.answered())
        .map(|m| {
            let since = m.unhealthy_since.as_deref().and_then(|s| s.parse().ok()).unwrap_or(i.now);
            (since, m.name.as_str())
        })
        .collect();
    // Lost once more voters are down than the cluster can spare.
    let spare = voters.len() - quorum(voters.len() as i32) as usize;
    if voters.is_empty() || down.len() <= spare {
        return QuorumAssessment::Nothing(format!(
            "{} of {} voting members answer: no leader at this moment, but a majority is there (an election, not a loss)",
            voters.len() - down.len(),
            voters.len()
        ));
    }
    down.sort();
    let since = down[spare].0;
    let lost_for = (i.now - since).to_std().unwrap_or_default();
    let names: Vec<String> = down.iter().map(|(_, n)| (*n).to_owned()).collect();
    let summary = format!(
        "quorum lost for {}s: {} of {} voting members down ({})",
        lost_for.as_secs(),
        names.len(),
        voters.len(),
        names.join(", ")
    );
    let evidence = match &i.corroboration {
        Ok(evidence) => evidence.clone(),
        Err(why) => {
            return QuorumAssessment::Unconfirmed(format!("{summary} as the operator sees it, but {why}"));
        }
    };
    if !i.enabled {
        return QuorumAssessment::Manual(format!(
            "{summary}; spec.recovery.restoreOnQuorumLoss is off: nothing is changed"
        ));
    }
    if lost_for < i.grace {
        return QuorumAssessment::WithinGrace {
            reason: format!("{summary}; restoring from a backup once it has lasted {:?}", i.grace),
            after: i.grace - lost_for,
        };
    }
    let survivor = voters
        .iter()
        .filter(|m| m.answered())
        .filter_map(|m| Some((m.name.clone(), m.revision?)))
        .max_by_key(|(_, revision)| *revision);
    QuorumAssessment::Lost {
        down: names,
        since: since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        survivor,
        evidence,
    }
}

/// Where a recovery restores from.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceChoice {
    /// The survivor's own data, saved first: nothing any answering member held is lost.
    Survivor { member: String, revision: i64 },
    /// The backup the user accepted; `save` names a survivor whose data is saved first anyway.
    Backup { name: String, save: Option<String> },
    /// The user must accept the backup first (the message says how); nothing is changed.
    NeedsAcceptance(String),
    /// No usable source (the message says why); nothing is changed.
    Refuse(String),
}

/// What the source choice decides from.
pub struct SourceInputs<'a> {
    /// The most advanced voting member that answers, and its revision.
    pub survivor: Option<(&'a str, i64)>,
    /// The newest verified backup's name and revision, or why there is none.
    pub backup: Result<(&'a str, Option<i64>), &'a str>,
    /// The backup name the user's acceptance annotation names, if set.
    pub accepted: Option<&'a str>,
    /// Whether snapshot storage is configured (a survivor's data can be saved).
    pub can_save: bool,
    /// How the user accepts (the annotation to set, on which object).
    pub how_to_accept: &'a str,
}

/// Chooses the source: never one that loses what a member that still answers holds, unless the
/// user accepted exactly that backup.
pub fn choose_source(i: &SourceInputs<'_>) -> SourceChoice {
    if i.survivor.is_some() && !i.can_save {
        return SourceChoice::Refuse(
            "a member still answers, and its data cannot be saved before the claims are deleted (no snapshot \
             storage: cluster-service --snapshot-dir)"
                .into(),
        );
    }
    let backup_revision = i.backup.ok().map(|(_, r)| r.unwrap_or(0));
    if let Some((member, revision)) = i.survivor
        && backup_revision.is_none_or(|b| revision >= b)
    {
        return SourceChoice::Survivor { member: member.to_owned(), revision };
    }
    let (name, revision) = match i.backup {
        Ok(found) => found,
        Err(why) => return SourceChoice::Refuse(why.to_owned()),
    };
    if i.accepted == Some(name) {
        return SourceChoice::Backup { name: name.to_owned(), save: i.survivor.map(|(m, _)| m.to_owned()) };
    }
    let revision = revision.map_or_else(|| "unknown".into(), |r| r.to_string());
    let held = match i.survivor {
        Some((member, r)) => format!("the most advanced member that answers, {member}, is at revision {r}"),
        None => "no member answers, so what the members held beyond it cannot be known".into(),
    };
    SourceChoice::NeedsAcceptance(format!(
        "restoring EtcdBackup {name} (revision {revision}) loses every write after it, and {held}; to accept that, {}={name}",
        i.how_to_accept
    ))
}

/// What a recorded recovery decides its next step from.
pub struct RecoveryProgress<'a> {
    /// The recorded operation (a RecoverQuorum).
    pub operation: &'a OperationStatus,
    /// StatefulSet `spec.replicas`.
    pub replicas: i32,
    /// Pods the StatefulSet has.
    pub pods: i32,
    /// Claims of the cluster that exist and are not being deleted.
    pub claims: &'a [String],
    /// Whether the restore finished (status.restore Completed).
    pub restore_completed: bool,
    /// Members that are healthy voters of one cluster now.
    pub healthy_voters: i32,
}

/// The one step to take now.
#[derive(Clone, Debug, PartialEq)]
pub enum RecoveryAction {
    /// Record the next step.
    Record(String),
    /// Set StatefulSet replicas.
    SetReplicas(i32),
    /// Stream this member's data to snapshot storage, verify it, and record it.
    SaveSurvivor(String),
    /// Delete these claims.
    DeleteClaims(Vec<String>),
    /// Verify the backup, create the token, put the restore agent in the pods of a new cluster of `members`.
    PrepareRestore { members: i32 },
    /// Look again later.
    Wait { reason: String, after: Duration },
    /// Finished: complete the restore record and clear the operation.
    Done,
    /// Impossible; nothing was done.
    Refuse(String),
}

fn wait(reason: String) -> RecoveryAction {
    RecoveryAction::Wait { reason, after: Duration::from_secs(1) }
}

/// Decides the next step of a recorded recovery.
pub fn next_recovery_action(p: &RecoveryProgress<'_>) -> RecoveryAction {
    let members = p.operation.target.unwrap_or_default();
    if members < 1 {
        return RecoveryAction::Refuse(format!("the recorded recovery has no member count ({members})"));
    }
    match p.operation.step.as_str() {
        step::SAVING_SURVIVOR if p.operation.snapshot.is_some() => {
            RecoveryAction::Record(step::STOPPING_MEMBERS.into())
        }
        step::SAVING_SURVIVOR => match &p.operation.member {
            Some(member) => RecoveryAction::SaveSurvivor(member.clone()),
            None => RecoveryAction::Refuse("the recorded recovery names no member to save".into()),
        },
        step::STOPPING_MEMBERS if p.replicas > 0 => RecoveryAction::SetReplicas(0),
        step::STOPPING_MEMBERS if p.pods > 0 => wait(format!("{} pods are stopping", p.pods)),
        step::STOPPING_MEMBERS => RecoveryAction::Record(step::DELETING_VOLUMES.into()),
        step::DELETING_VOLUMES if !p.claims.is_empty() => RecoveryAction::DeleteClaims(p.claims.to_vec()),
        step::DELETING_VOLUMES => RecoveryAction::Record(step::PREPARING_RESTORE.into()),
        step::PREPARING_RESTORE => RecoveryAction::PrepareRestore { members },
        step::RESTORING_MEMBERS if p.replicas < members => RecoveryAction::SetReplicas(members),
        step::RESTORING_MEMBERS if p.restore_completed || p.healthy_voters >= members => RecoveryAction::Done,
        step::RESTORING_MEMBERS => {
            wait(format!("{} of {members} members restored and serving", p.healthy_voters))
        }
        other => RecoveryAction::Refuse(format!("unknown quorum-recovery step {other:?}")),
    }
}
