//! RecoverQuorum: carry out the quorum-loss decisions one step at a time under
//! the cluster's lock, recording each intent first (failpoints
//! `quorum::before::<Step>` / `quorum::after::<Step>`). Nothing is destroyed
//! before a backup has been chosen, read back whole and matched against its
//! sha256, and recorded in the operation.

pub mod decide;
mod source;

use std::{sync::Mutex, time::Duration};

use etcd_operator_api::{
    EtcdCluster,
    cluster::{MemberStatus, OperationStatus, RestorePhase, RestoreTrigger},
};
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use etcd_operator_resource::templates::BootstrapConfig;
use kube::runtime::events::EventType;

use crate::{
    ClusterOutcome, ServiceError,
    membership::serving,
    observe::{EtcdState, Observation},
    operation::OperationType,
    quorum_evidence::corroborate_observation,
    reads::Seen,
    recovery::RecoveryService,
    recovery::quorum::decide::QuorumAssessment,
    recovery::quorum::decide::QuorumInputs,
    recovery::quorum::decide::RecoveryAction,
    recovery::quorum::decide::RecoveryProgress,
    recovery::quorum::decide::ToStart,
    recovery::quorum::decide::assess,
    recovery::quorum::decide::next_recovery_action,
    recovery::quorum::decide::step,
    recovery::quorum::source::LostQuorum,
    status::decide::members::members,
    steps::{At, Effect, Gathered, Named},
    validation::quorum_loss_grace,
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

/// What the gathered state says of quorum at this moment, with the members as observed.
fn assess_gathered(g: &Gathered) -> (QuorumAssessment, Vec<MemberStatus>) {
    let Gathered { cluster, observation, replicas, .. } = g;
    let status = cluster.status.clone().unwrap_or_default();
    let policy = cluster.spec.recovery.clone().unwrap_or_default();
    let current = members(observation, &status, &now_rfc3339());
    let corroboration = corroborate_observation(observation, &current);
    let assessment = assess(&QuorumInputs {
        enabled: policy.restore_on_quorum_loss,
        grace: quorum_loss_grace(&policy).unwrap_or(Duration::from_secs(600)),
        members: &current,
        serving: matches!(&observation.etcd, EtcdState::Reached(view) if serving(view)),
        operation: status.operation.as_ref(),
        stopped: status.stopped.is_some() || *replicas == 0,
        formed: cluster.formed(),
        corroboration,
        now: etcd_operator_common::time::now(),
    });
    (assessment, current)
}

/// The quorum recovery recorded as the cluster's operation, if one is.
fn recorded_recovery(cluster: &EtcdCluster) -> Option<&OperationStatus> {
    let op = cluster.status.as_ref()?.operation.as_ref()?;
    (op.type_ == OperationType::RecoverQuorum).then_some(op)
}

/// The lost quorum to recover, or why nothing is started and when to look again (`decide`'s
/// answer, logged).
fn to_start(
    assessment: QuorumAssessment,
    cluster: &EtcdCluster,
) -> Result<LostQuorum, (String, Option<Duration>)> {
    let unconfirmed = matches!(assessment, QuorumAssessment::Unconfirmed(_));
    match decide::to_start(assessment) {
        ToStart::Nothing { why, look_again: None } => {
            tracing::debug!(why, "no quorum recovery");
            Err((why, None))
        }
        ToStart::Nothing { why, look_again } => {
            if unconfirmed {
                tracing::warn!(why, "quorum loss not corroborated");
            } else {
                tracing::info!(reason = why, "quorum lost, within the grace period");
            }
            Err((why, look_again))
        }
        ToStart::Recover { down, since, survivor, evidence } => {
            let policy = cluster.spec.recovery.clone().unwrap_or_default();
            Ok(LostQuorum { down, since, evidence, survivor, policy })
        }
    }
}

impl RecoveryService {
    /// Recovers a cluster whose quorum has been lost for longer than its grace period, when
    /// `spec.recovery.restoreOnQuorumLoss` allows it: from the newest verified backup.
    pub async fn recover_quorum(&self, r: &ClusterRef) -> Result<QuorumOutcome, ServiceError> {
        self.recover_quorum_seen(r, Seen::default()).await
    }

    /// [`Self::recover_quorum`] for a caller that saw generation `seen` (its look may start from
    /// the watch cache, never older than that).
    #[tracing::instrument(name = "RecoverQuorum", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "RecoverQuorum"))]
    pub async fn recover_quorum_seen(
        &self,
        r: &ClusterRef,
        seen: Seen,
    ) -> Result<QuorumOutcome, ServiceError> {
        let decision = Mutex::new(String::new());
        // Nearly every look finds nothing to start: it is answered without the lock (a Lease
        // taken and deleted, two of a new cluster's ~80 requests per look). A look that finds a
        // recovery due or recorded takes the lock and decides again from what it reads then.
        let cluster = match self.unlocked_look(r, seen, &decision).await? {
            Some(nothing) => nothing,
            None => self.core.run_steps(r, |_| Box::pin(self.quorum_step(r, &decision))).await?,
        };
        let decision = decision.into_inner().unwrap_or_else(|e| e.into_inner());
        let available = etcd_operator_api::condition::find(
            &cluster.status.conditions,
            etcd_operator_api::cluster::CONDITION_AVAILABLE,
        )
        .is_some_and(|c| c.status == etcd_operator_api::condition::ConditionStatus::True);
        let quorum_holds = available && cluster.requeue_after.is_none();
        Ok(QuorumOutcome { cluster, decision, quorum_holds })
    }

    /// The look without the lock: `None` when a recovery is recorded or due (the locked steps
    /// act), else the gathered observation recorded (onto the object read, as every status write
    /// outside the lock) and why nothing is done.
    async fn unlocked_look(
        &self,
        r: &ClusterRef,
        seen: Seen,
        decision: &Mutex<String>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let gathered = self.core.gather_from(r, self.core.look(r, seen).await?).await?;
        if recorded_recovery(&gathered.cluster).is_some() {
            return Ok(None);
        }
        match to_start(assess_gathered(&gathered).0, &gathered.cluster) {
            Ok(_) => Ok(None),
            Err(nothing) => self.nothing_to_start(gathered, nothing, decision).await.map(Some),
        }
    }

    async fn quorum_step(
        &self,
        r: &ClusterRef,
        decision: &Mutex<String>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let gathered = self.core.gather(r).await?;
        match recorded_recovery(&gathered.cluster).cloned() {
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
        let (assessment, current) = assess_gathered(&g);
        match to_start(assessment, &g.cluster) {
            Ok(lost) => {
                let begun = self.begin_recovery(&g.cluster, &g.observation, &current, g.replicas, &lost);
                *decision.lock().unwrap_or_else(|e| e.into_inner()) = begun.await?;
                Ok(None)
            }
            Err(nothing) => self.nothing_to_start(g, nothing, decision).await.map(Some),
        }
    }

    /// Nothing to start: the gathered observation is recorded, with when to look again.
    async fn nothing_to_start(
        &self,
        g: Gathered,
        (why, requeue_after): (String, Option<Duration>),
        decision: &Mutex<String>,
    ) -> Result<ClusterOutcome, ServiceError> {
        *decision.lock().unwrap_or_else(|e| e.into_inner()) = why;
        let out = self.core.record_observation(&g.cluster, Some(&g.statefulset), &g.observation).await?;
        Ok(ClusterOutcome { requeue_after, ..out })
    }

    /// Records the recovery `lost` calls for as scaling's operation and announces it; what it said.
    async fn begin_recovery(
        &self,
        cluster: &etcd_operator_api::EtcdCluster,
        observation: &crate::observe::Observation,
        current: &[etcd_operator_api::cluster::MemberStatus],
        replicas: i32,
        lost: &LostQuorum,
    ) -> Result<String, ServiceError> {
        fail::fail_point!("quorum::before::Record");
        let (op, msg) = self.plan_recovery(cluster, current, replicas, lost).await?;
        self.core.record_scaling(cluster, observation, Some(&op), None).await?;
        self.recovery_event_as(cluster, EventType::Warning, "RecoverQuorum", "QuorumLossRecovery", &msg)
            .await;
        fail::fail_point!("quorum::after::Record");
        Ok(msg)
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
            Some(saved) if op.backup_name.is_none() => self.restore.survivor_source(op, saved)?,
            _ => self.recorded_or_newest_backup(cluster, op).await?,
        };
        let why = format!(
            "quorum was lost ({}): the members are recreated from {}",
            op.started_at, resolved.status.source
        );
        let bootstrap = BootstrapConfig::new_cluster(&self.core.names(r), members);
        Box::pin(self.restore.prepare_restore(cluster, observation, &resolved, Some(bootstrap), &why))
            .await?;
        // Re-read: the restore record was just written by the lifecycle's field manager.
        let cluster = self.core.get(r).await?;
        op.step = step::RESTORING_MEMBERS.into();
        self.core.record_scaling(&cluster, observation, Some(op), None).await?;
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
        let cluster = self.core.get(r).await?;
        let out = self.core.record_scaling(&cluster, observation, None, None).await?;
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
        op: OperationStatus,
        decision: &Mutex<String>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Gathered { cluster, observation, claims, replicas, pods, .. } = g;
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
        let effect = effect_of(action, &op);
        *decision.lock().unwrap_or_else(|e| e.into_inner()) = format!("{}: {}", op.step, effect.name());
        let at =
            At { machine: "quorum", cluster: &cluster, observation: &observation, view: None, stopped: None };
        let (c, o) = (&cluster, &observation);
        let own = move |own| self.quorum_own(r, c, o, op, own, decision);
        Box::pin(self.core.step(&at, effect, own)).await
    }

    /// Carries out quorum recovery's own effects.
    async fn quorum_own(
        &self,
        r: &ClusterRef,
        cluster: &EtcdCluster,
        observation: &Observation,
        mut op: OperationStatus,
        own: Own,
        decision: &Mutex<String>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let ours = cluster
            .status
            .as_ref()
            .and_then(|s| s.restore.as_ref())
            .filter(|s| s.trigger == RestoreTrigger::QuorumLoss);
        match own {
            Own::SaveSurvivor(member) => {
                let Some(record) = self.save_survivor(cluster, observation, &member).await? else {
                    let reason = format!("{member} must answer to save its data");
                    return self.core.wait(cluster, observation, &reason, Duration::from_secs(5)).await;
                };
                op.snapshot = Some(record);
                op.step = step::STOPPING_MEMBERS.into();
                self.core.record_scaling(cluster, observation, Some(&op), None).await?;
                Ok(None)
            }
            Own::PrepareRestore { members } => {
                Box::pin(self.prepare_quorum_restore(r, cluster, observation, &mut op, members)).await?;
                Ok(None)
            }
            Own::Done => {
                if !Box::pin(self.restore.finish_restore(cluster, ours, observation)).await? {
                    let reason = "members are restoring";
                    return self.core.wait(cluster, observation, reason, Duration::from_secs(1)).await;
                }
                Ok(Some(self.quorum_recovered(r, observation, &op, decision).await?))
            }
            Own::Refuse(reason) => Err(ServiceError::FailedPrecondition(reason)),
        }
    }
}

/// Quorum recovery's own effects; every other effect is a shared one.
#[derive(Debug)]
enum Own {
    /// Stream the survivor's data to snapshot storage, verify it, record it.
    SaveSurvivor(String),
    /// Verify the source again, create the token, put the restore agent in the pods.
    PrepareRestore { members: i32 },
    /// Finished: complete the restore record and clear the operation.
    Done,
    /// Refused; nothing was done.
    Refuse(String),
}

impl Named for Own {
    fn name(&self) -> &'static str {
        match self {
            Self::SaveSurvivor(_) => "SaveSurvivor",
            Self::PrepareRestore { .. } => "PrepareRestore",
            Self::Done => "Done",
            Self::Refuse(_) => "Refuse",
        }
    }
}

/// The effect that carries out a recovery decision on the recorded operation `op`.
fn effect_of(action: RecoveryAction, op: &OperationStatus) -> Effect<Own> {
    match action {
        RecoveryAction::Record(next) => Effect::Record(OperationStatus { step: next, ..op.clone() }),
        RecoveryAction::SetReplicas(replicas) => {
            Effect::SetReplicas { replicas, initial_members: vec![], keep_claims: false }
        }
        RecoveryAction::SaveSurvivor(member) => Effect::Own(Own::SaveSurvivor(member)),
        RecoveryAction::DeleteClaims(claims) => Effect::DeleteClaims(claims),
        RecoveryAction::PrepareRestore { members } => Effect::Own(Own::PrepareRestore { members }),
        RecoveryAction::Wait { reason, after } => Effect::Wait { reason, after },
        RecoveryAction::Done => Effect::Own(Own::Done),
        RecoveryAction::Refuse(reason) => Effect::Own(Own::Refuse(reason)),
    }
}
