//! Where a quorum-loss recovery restores from: the choice between a survivor's
//! saved data and a verified backup (and the user's acceptance), saving the
//! survivor, and finding the newest backup whose bytes still match.

use chrono::{DateTime, Utc};
use etcd_operator_api::{
    EtcdBackup, EtcdCluster,
    backup::BackupPhase,
    cluster::{
        ANNOTATION_ACCEPT_QUORUM_LOSS_RESTORE, MemberStatus, OperationStatus, RestoreStatus, RestoreTrigger,
        SnapshotRecord,
    },
};
use etcd_operator_common::time::now_rfc3339;
use etcd_operator_resource::managers::Manager;
use kube::{ResourceExt, runtime::events::EventType};

use crate::refusal::Refusable;
use crate::{
    ClusterService, ServiceError,
    config::component,
    observe::{EtcdState, Observation},
    operation::OperationType,
    recovery::quorum::decide::{SourceChoice, SourceInputs, choose_source, step},
    restore::{ResolvedSource, Verification},
    saved_snapshot::snapshot_key,
};

/// A corroborated quorum loss past its grace period.
pub(crate) struct LostQuorum {
    pub down: Vec<String>,
    pub since: String,
    pub evidence: String,
    pub survivor: Option<(String, i64)>,
    pub policy: etcd_operator_api::cluster::RecoveryPolicy,
}

impl ClusterService {
    /// Chooses the source of a corroborated recovery: the operation to record and the Event's
    /// message, or a refusal (an Event and FAILED_PRECONDITION; nothing is changed).
    pub(crate) async fn plan_recovery(
        &self,
        cluster: &EtcdCluster,
        current: &[MemberStatus],
        replicas: i32,
        lost: &LostQuorum,
    ) -> Result<(OperationStatus, String), ServiceError> {
        let backup = self.newest_verified_backup(cluster, None).await?;
        let accepted = cluster.annotations().get(ANNOTATION_ACCEPT_QUORUM_LOSS_RESTORE).cloned();
        let r = crate::core::cluster_ref(cluster);
        let how_to_accept = format!(
            "run: kubectl annotate etcdcluster {} -n {} {ANNOTATION_ACCEPT_QUORUM_LOSS_RESTORE}",
            r.name, r.namespace
        );
        let choice = choose_source(&SourceInputs {
            survivor: lost.survivor.as_ref().map(|(m, rev)| (m.as_str(), *rev)),
            backup: match &backup {
                Refusable::Usable((_, verified)) => {
                    Ok((verified.backup_name.as_deref().unwrap_or_default(), verified.revision))
                }
                Refusable::Refused(why) => Err(why.as_str()),
            },
            accepted: accepted.as_deref(),
            can_save: self.snapshot_store().is_some(),
            how_to_accept: &how_to_accept,
        });
        let head = format!(
            "quorum lost since {} ({} down, longer than spec.recovery.quorumLossGracePeriod {}; {})",
            lost.since,
            lost.down.join(", "),
            lost.policy.quorum_loss_grace_period,
            lost.evidence
        );
        let voters = current.iter().filter(|m| !m.is_learner).count() as i32;
        let mut op = OperationStatus {
            type_: OperationType::RecoverQuorum,
            step: step::STOPPING_MEMBERS.into(),
            target: Some(replicas.max(voters)),
            started_at: now_rfc3339(),
            ..OperationStatus::default()
        };
        let msg = match choice {
            SourceChoice::Survivor { member, revision } => {
                op.step = step::SAVING_SURVIVOR.into();
                op.member = Some(member.clone());
                format!(
                    "{head}: saving the data of {member} (revision {revision}, the most advanced member that answers), \
                     then recreating the cluster from it; writes only the members that are down held are lost"
                )
            }
            SourceChoice::Backup { name, save } => {
                let (_, verified) =
                    backup.as_ref().usable().map_err(|e| ServiceError::Internal(e.clone()))?;
                if let Some(member) = &save {
                    op.step = step::SAVING_SURVIVOR.into();
                    op.member = Some(member.clone());
                }
                op.backup_name = Some(name.clone());
                // Chosen only when no member that answers is as new as it: what is lost is every
                // write after its revision that only the members that are down held.
                format!(
                    "{head}: recreating the cluster from EtcdBackup {name} (revision {}, taken {}, sha256 verified), \
                     as accepted by annotation{}; writes after it are lost",
                    verified.revision.map_or_else(|| "unknown".into(), |v| v.to_string()),
                    verified.taken_at.as_deref().unwrap_or("at an unknown time"),
                    save.map_or_else(String::new, |m| format!(" (the data of {m} is saved first)")),
                )
            }
            SourceChoice::NeedsAcceptance(why) | SourceChoice::Refuse(why) => {
                let msg = format!(
                    "{head} and spec.recovery.restoreOnQuorumLoss is on, but {why}; nothing was changed"
                );
                self.recovery_event_as(
                    cluster,
                    EventType::Warning,
                    "RecoverQuorum",
                    "QuorumRecoveryRefused",
                    &msg,
                )
                .await;
                return Err(ServiceError::FailedPrecondition(msg));
            }
        };
        Ok((op, msg))
    }

    /// Streams `member`'s data to snapshot storage and verifies it; `None` while it does not answer.
    pub(crate) async fn save_survivor(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        member: &str,
    ) -> Result<Option<SnapshotRecord>, ServiceError> {
        let EtcdState::Reached(view) = &observation.etcd else { return Ok(None) };
        let Some(endpoint) = view
            .members
            .iter()
            .find(|m| m.name() == member && m.status.is_ok())
            .and_then(|m| m.info.client_urls.first().cloned())
        else {
            return Ok(None);
        };
        let r = crate::core::cluster_ref(cluster);
        // The same key on every call of this step: saved once, however many calls it takes.
        let started =
            cluster.status.as_ref().and_then(|s| s.operation.as_ref()).map(|op| op.started_at.clone());
        let purpose = format!("quorum-loss-{member}");
        let key = snapshot_key(&r.namespace, &r.name, &purpose, &started.unwrap_or_else(now_rfc3339));
        self.save_snapshot(&r.namespace, &r.name, &endpoint, &key).await.map(Some)
    }

    /// The saved survivor's data as the restore source.
    pub(crate) fn survivor_source(
        &self,
        op: &OperationStatus,
        saved: &SnapshotRecord,
    ) -> Result<ResolvedSource, ServiceError> {
        let member = op.member.as_deref().unwrap_or("?");
        let source = format!("the data of surviving member {member} saved as {}", saved.location);
        self.saved_snapshot_source(saved, RestoreTrigger::QuorumLoss, source)
    }

    /// The backup the operation recorded, verified again; if it became unusable since (the
    /// members' volumes are already gone), the newest other verified backup, recorded instead.
    pub(crate) async fn recorded_or_newest_backup(
        &self,
        cluster: &EtcdCluster,
        op: &mut OperationStatus,
    ) -> Result<ResolvedSource, ServiceError> {
        let recorded = op.backup_name.clone().unwrap_or_default();
        match self.newest_verified_backup(cluster, Some(&recorded)).await? {
            Refusable::Usable((resolved, _)) => return Ok(resolved),
            Refusable::Refused(why) => {
                tracing::warn!(backup = recorded, why, "the recorded backup is no longer usable")
            }
        }
        let (resolved, verified) = self.newest_verified_backup(cluster, None).await?.usable().map_err(|why| {
            ServiceError::FailedPrecondition(format!(
                "EtcdBackup {recorded} is no longer usable and {why}: the members stay stopped until a usable backup exists"
            ))
        })?;
        op.backup_name = verified.backup_name;
        Ok(resolved)
    }

    /// The newest Succeeded EtcdBackup of the cluster (or the one named `only`) whose stored
    /// snapshot still matches its sha256: the source and its verified record, or why there is none.
    async fn newest_verified_backup(
        &self,
        cluster: &EtcdCluster,
        only: Option<&str>,
    ) -> Result<Refusable<(ResolvedSource, RestoreStatus)>, ServiceError> {
        let namespace = cluster.namespace().unwrap_or_default();
        let fm = etcd_operator_client::kubernetes::field_manager(component::RECOVERY);
        let backups = Manager::<EtcdBackup>::new(self.kube(), &namespace, &fm);
        let found = match only {
            Some(name) => backups.get(name).await?.into_iter().collect(),
            None => backups.list("").await?,
        };
        let mut backups: Vec<EtcdBackup> = found
            .into_iter()
            .filter(|b| b.spec.cluster_name == cluster.name_any())
            .filter(|b| b.status.as_ref().is_some_and(|s| s.phase == BackupPhase::Succeeded))
            .collect();
        let completed = |b: &EtcdBackup| {
            b.status
                .as_ref()
                .and_then(|s| s.completion_time.as_deref())
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        };
        backups.sort_by_key(|b| std::cmp::Reverse(completed(b)));
        let mut skipped = Vec::new();
        for backup in &backups {
            let resolved =
                match self.backup_source(backup, "status.operation", RestoreTrigger::QuorumLoss).await? {
                    Refusable::Usable(resolved) => resolved,
                    Refusable::Refused(refusal) => {
                        skipped.push(format!("{}: {}", backup.name_any(), refusal.message));
                        continue;
                    }
                };
            match self.verify_source(&resolved).await {
                Ok(Verification::Verified(verified)) => return Ok(Refusable::Usable((resolved, verified))),
                Ok(Verification::Refused(refusal)) => {
                    skipped.push(format!("{}: {}", backup.name_any(), refusal.message));
                }
                // The newest usable backup may be this one: never fall back to an older one meanwhile.
                Ok(Verification::Verifying(status)) => return Err(ServiceError::Aborted(status.message)),
                Err(e) => skipped.push(format!("{}: {e}", backup.name_any())),
            }
        }
        Ok(Refusable::Refused(if backups.is_empty() {
            format!(
                "EtcdCluster {namespace}/{} has no Succeeded EtcdBackup{}",
                cluster.name_any(),
                only.map_or_else(String::new, |n| format!(" named {n}"))
            )
        } else {
            format!("no Succeeded EtcdBackup of it verifies ({})", skipped.join("; "))
        }))
    }
}
