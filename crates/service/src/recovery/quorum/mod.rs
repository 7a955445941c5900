//! RecoverQuorum: carry out the quorum-loss decisions one step at a time under
//! the cluster's lock, recording each intent first (failpoints
//! `quorum::before::<Step>` / `quorum::after::<Step>`). Nothing is destroyed
//! before a backup has been chosen, read back whole and matched against its
//! sha256, and recorded in the operation.

pub mod decide;
mod source;

use std::{sync::Mutex, time::Duration};

use chrono::Utc;
use etcd_operator_api::cluster::{OperationStatus, RestorePhase, RestoreTrigger};
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use etcd_operator_resource::templates::BootstrapConfig;
use kube::runtime::events::EventType;

use crate::{
    ClusterOutcome, ClusterService, ServiceError, config::component, lifecycle::decide::members::members,
    membership::serving, observe::EtcdState, operation::OperationType,
    quorum_evidence::corroborate_observation, recovery::quorum::decide::QuorumAssessment,
    recovery::quorum::decide::QuorumInputs, recovery::quorum::decide::RecoveryAction,
    recovery::quorum::decide::RecoveryProgress, recovery::quorum::decide::assess,
    recovery::quorum::decide::next_recovery_action, recovery::quorum::decide::step,
    recovery::quorum::source::LostQuorum, scaling::Gathered, validation::quorum_loss_grace,
};

/// The answer of RecoverQuorum: the cluster's status and what was decided.
pub struct QuorumOutcome {
    /// Status, generation and requeue.
    pub cluster: ClusterOutcome,
    /// Why nothing is done, or the step taken.
    pub decision: String,
    /// Whether a leader serves with quorum and no recovery runs: members may be replaced.
    pub quorum_holds: bool,
}

impl ClusterService {
    /// Recovers a cluster whose quorum has been lost for longer than its grace period, when
    /// `spec.recovery.restoreOnQuorumLoss` allows it: from the newest verified backup.
    #[tracing::instrument(name = "RecoverQuorum", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "RecoverQuorum"))]
    pub async fn recover_quorum(&self, r: &ClusterRef) -> Result<QuorumOutcome, ServiceError> {
        let decision = Mutex::new(String::new());
        let cluster = self.run_steps(r, |_| Box::pin(self.quorum_step(r, &decision))).await?;
        let decision = decision.into_inner().unwrap_or_else(|e| e.into_inner());
        let available = etcd_operator_api::condition::find(
            &cluster.status.conditions,
            etcd_operator_api::cluster::CONDITION_AVAILABLE,
        )
        .is_some_and(|c| c.status == etcd_operator_api::condition::ConditionStatus::True);
        let quorum_holds = available && cluster.requeue_after.is_none();
        Ok(QuorumOutcome { cluster, decision, quorum_holds })
    }

    async fn quorum_step(
        &self,
        r: &ClusterRef,
        decision: &Mutex<String>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let gathered = self.gather(r).await?;
        let status = gathered.cluster.status.clone().unwrap_or_default();
        match status.operation.filter(|op| op.type_ == OperationType::RecoverQuorum) {
            Some(op) => self.recovery_step(r, gathered, op, decision).await,
            None => self.assess_step(gathered, decision).await,
        }
    }

    /// No recovery recorded: is quorum lost for long enough, and is there a backup to restore?
    async fn assess_step(
        &self,
        g: Gathered,
        decision: &Mutex<String>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Gathered { cluster, observation, replicas, .. } = g;
        let status = cluster.status.clone().unwrap_or_default();
        let now = Utc::now();
        let policy = cluster.spec.recovery.clone().unwrap_or_default();
        let current = members(&observation, &status, &now_rfc3339());
        let corroboration = corroborate_observation(&observation, &current);
        let assessment = assess(&QuorumInputs {
            enabled: policy.restore_on_quorum_loss,
            grace: quorum_loss_grace(&policy).unwrap_or(Duration::from_secs(600)),
            members: &current,
            serving: matches!(&observation.etcd, EtcdState::Reached(view) if serving(view)),
            operation: status.operation.as_ref(),
            stopped: status.stopped.is_some() || replicas == 0,
            formed: cluster.formed(),
            corroboration,
            now,
        });
        let r = crate::core::cluster_ref(&cluster);
        let (down, since, survivor, evidence) = match assessment {
            QuorumAssessment::Nothing(why) | QuorumAssessment::Manual(why) => {
                tracing::debug!(why, "no quorum recovery");
                *decision.lock().unwrap_or_else(|e| e.into_inner()) = why;
                let out = self.get_cluster_status(&r).await?;
                return Ok(Some(ClusterOutcome { requeue_after: None, ..out }));
            }
            QuorumAssessment::Unconfirmed(why) => {
                tracing::warn!(why, "quorum loss not corroborated");
                *decision.lock().unwrap_or_else(|e| e.into_inner()) = why;
                let out = self.get_cluster_status(&r).await?;
                return Ok(Some(ClusterOutcome { requeue_after: Some(Duration::from_secs(10)), ..out }));
            }
            QuorumAssessment::WithinGrace { reason, after } => {
                tracing::info!(reason, "quorum lost, within the grace period");
                *decision.lock().unwrap_or_else(|e| e.into_inner()) = reason;
                let out = self.get_cluster_status(&r).await?;
                return Ok(Some(ClusterOutcome {
                    requeue_after: Some(after.max(Duration::from_secs(1))),
                    ..out
                }));
            }
            QuorumAssessment::Lost { down, since, survivor, evidence } => (down, since, survivor, evidence),
        };
        fail::fail_point!("quorum::before::Record");
        let lost = LostQuorum { down, since, evidence, survivor, policy };
        let (op, msg) = self.plan_recovery(&cluster, &current, replicas, &lost).await?;
        self.record_scaling(&cluster, &observation, Some(&op), None).await?;
        self.recovery_event_as(&cluster, EventType::Warning, "RecoverQuorum", "QuorumLossRecovery", &msg)
            .await;
        *decision.lock().unwrap_or_else(|e| e.into_inner()) = msg;
        fail::fail_point!("quorum::after::Record");
        Ok(None)
    }

    /// Resolves the source (the survivor's saved data, else the accepted backup), prepares every
    /// member to restore from it as a new cluster, and records the step.
    async fn prepare_quorum_restore(
        &self,
        r: &ClusterRef,
        cluster: &etcd_operator_api::EtcdCluster,
        observation: &crate::observe::Observation,
        op: &mut OperationStatus,
        members: i32,
    ) -> Result<(), ServiceError> {
        let resolved = match &op.snapshot {
            Some(saved) if op.backup_name.is_none() => self.survivor_source(op, saved)?,
            _ => self.recorded_or_newest_backup(cluster, op).await?,
        };
        let why = format!(
            "quorum was lost ({}): the members are recreated from {}",
            op.started_at, resolved.status.source
        );
        let bootstrap = BootstrapConfig::new_cluster(&self.names(r), members);
        Box::pin(self.prepare_restore(cluster, observation, &resolved, Some(bootstrap), &why)).await?;
        // Re-read: the restore record was just written by the lifecycle's field manager.
        let cluster = self.get(r).await?;
        op.step = step::RESTORING_MEMBERS.into();
        self.record_scaling(&cluster, observation, Some(op), None).await?;
        Ok(())
    }

    /// Ends a recovery whose members restored: the record cleared, an Event, the decision told.
    async fn quorum_recovered(
        &self,
        r: &ClusterRef,
        observation: &crate::observe::Observation,
        op: &OperationStatus,
        decision: &Mutex<String>,
    ) -> Result<ClusterOutcome, ServiceError> {
        let cluster = self.get(r).await?;
        let out = self.record_scaling(&cluster, observation, None, None).await?;
        let from = op.backup_name.as_deref().map_or_else(|| "a backup".into(), |b| format!("EtcdBackup {b}"));
        let note = format!(
            "the cluster serves again, recreated from {from} after quorum was lost (recovery started {})",
            op.started_at
        );
        self.recovery_event_as(&cluster, EventType::Normal, "RecoverQuorum", "QuorumRecovered", &note).await;
        *decision.lock().unwrap_or_else(|e| e.into_inner()) = note;
        Ok(ClusterOutcome { requeue_after: None, ..out })
    }

    /// One step of a recorded recovery.
    async fn recovery_step(
        &self,
        r: &ClusterRef,
        g: Gathered,
        mut op: OperationStatus,
        decision: &Mutex<String>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Gathered { cluster, observation, claims, replicas, pods } = g;
        let status = cluster.status.clone().unwrap_or_default();
        let ours = status.restore.as_ref().filter(|s| s.trigger == RestoreTrigger::QuorumLoss);
        let healthy_voters = match &observation.etcd {
            EtcdState::Reached(view) => crate::membership::healthy_voters(view, None) as i32,
            _ => 0,
        };
        let action = next_recovery_action(&RecoveryProgress {
            operation: &op,
            replicas,
            pods,
            claims: &claims,
            restore_completed: ours.is_some_and(|s| s.phase == RestorePhase::Completed),
            healthy_voters,
        });
        let name = action_name(&action);
        tracing::info!(step = name, ?action, "recover quorum");
        *decision.lock().unwrap_or_else(|e| e.into_inner()) = format!("{}: {name}", op.step);
        fail::fail_point!(&format!("quorum::before::{name}"));
        let names = self.names(r);
        let m = self.managers_as(&r.namespace, component::SCALING);
        let result = match action {
            RecoveryAction::Record(next) => {
                op.step = next;
                self.record_scaling(&cluster, &observation, Some(&op), None).await?;
                None
            }
            RecoveryAction::SetReplicas(n) => {
                m.statefulsets.scale(&names.statefulset(), n).await?;
                None
            }
            RecoveryAction::SaveSurvivor(member) => {
                let Some(record) = self.save_survivor(&cluster, &observation, &member).await? else {
                    return self
                        .wait(
                            &cluster,
                            &observation,
                            &format!("{member} must answer to save its data"),
                            Duration::from_secs(5),
                        )
                        .await;
                };
                op.snapshot = Some(record);
                op.step = step::STOPPING_MEMBERS.into();
                self.record_scaling(&cluster, &observation, Some(&op), None).await?;
                None
            }
            RecoveryAction::DeleteClaims(claims) => {
                for claim in &claims {
                    m.pvcs.delete(claim).await?;
                }
                None
            }
            RecoveryAction::PrepareRestore { members } => {
                Box::pin(self.prepare_quorum_restore(r, &cluster, &observation, &mut op, members)).await?;
                None
            }
            RecoveryAction::Wait { after, .. } if after <= Duration::from_secs(1) => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                None
            }
            RecoveryAction::Wait { reason, after } => {
                self.wait(&cluster, &observation, &reason, after).await?
            }
            RecoveryAction::Done => {
                if !Box::pin(self.finish_restore(&cluster, ours, &observation)).await? {
                    return self
                        .wait(&cluster, &observation, "members are restoring", Duration::from_secs(1))
                        .await;
                }
                Some(self.quorum_recovered(r, &observation, &op, decision).await?)
            }
            RecoveryAction::Refuse(reason) => return Err(ServiceError::FailedPrecondition(reason)),
        };
        fail::fail_point!(&format!("quorum::after::{name}"));
        Ok(result)
    }
}

fn action_name(action: &RecoveryAction) -> &'static str {
    match action {
        RecoveryAction::Record(_) => "Record",
        RecoveryAction::SetReplicas(_) => "SetReplicas",
        RecoveryAction::SaveSurvivor(_) => "SaveSurvivor",
        RecoveryAction::DeleteClaims(_) => "DeleteClaims",
        RecoveryAction::PrepareRestore { .. } => "PrepareRestore",
        RecoveryAction::Wait { .. } => "Wait",
        RecoveryAction::Done => "Done",
        RecoveryAction::Refuse(_) => "Refuse",
    }
}
