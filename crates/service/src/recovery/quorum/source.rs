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
    ServiceError,
    config::component,
    observe::{EtcdState, Observation},
    recovery::RecoveryService,
    recovery::quorum::decide::{PlanInputs, SourceInputs, choose_source, plan},
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

impl RecoveryService {
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
            can_save: self.core.snapshot_store().is_some(),
            how_to_accept: &how_to_accept,
        });
        let voters = current.iter().filter(|m| !m.is_learner).count() as i32;
        let verified = backup.as_ref().usable().ok().map(|(_, v)| (v.revision, v.taken_at.as_deref()));
        let planned = plan(PlanInputs {
            choice,
            since: &lost.since,
            down: &lost.down,
            grace: &lost.policy.quorum_loss_grace_period,
            evidence: &lost.evidence,
            backup: verified,
            target: replicas.max(voters),
            now: &now_rfc3339(),
        });
        match planned {
            Ok(planned) => Ok(planned),
            Err(msg) => {
                let (warning, action) = (EventType::Warning, "RecoverQuorum");
                self.recovery_event_as(cluster, warning, action, "QuorumRecoveryRefused", &msg).await;
                Err(ServiceError::FailedPrecondition(msg))
            }
        }
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
        self.core.save_snapshot(&r.namespace, &r.name, &endpoint, &key).await.map(Some)
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
        let backups = Manager::<EtcdBackup>::new(self.core.kube(), &namespace, &fm);
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
            let resolved = match self
                .restore
                .backup_source(backup, "status.operation", RestoreTrigger::QuorumLoss)
                .await?
            {
                Refusable::Usable(resolved) => resolved,
                Refusable::Refused(refusal) => {
                    skipped.push(format!("{}: {}", backup.name_any(), refusal.message));
                    continue;
                }
            };
            match self.restore.verify_source(&resolved).await {
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
