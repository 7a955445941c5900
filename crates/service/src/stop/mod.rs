//! ScaleToZero and RestartFromZero: carry out the stop decisions one step at
//! a time under the cluster's lock, recording each intent first (failpoints
//! `stop::before::<Step>` / `stop::after::<Step>`).

pub mod decide;
pub use decide::RestartSource;
#[cfg(test)]
mod decide_tests;

use etcd_operator_api::cluster::MAX_SIZE;
use etcd_operator_api::{
    EtcdCluster,
    cluster::{RestorePhase, RestoreTrigger, StoppedStatus},
};
use etcd_operator_common::{ClusterRef, time::now_rfc3339};

use crate::{
    ClusterOutcome, ServiceError,
    observe::{EtcdState, Observation},
    saved_snapshot::snapshot_key,
    scaling::ScalingService,
    steps::{At, Effect, Gathered, Named},
    stop::decide::StopAction,
    stop::decide::StopInputs,
    stop::decide::next_restart_action,
    stop::decide::next_stop_action,
    stop::decide::restart_source,
    stop::decide::step,
};

impl ScalingService {
    /// Takes a verified snapshot, then stops every member keeping its claim.
    #[tracing::instrument(name = "ScaleToZero", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "ScaleToZero"))]
    pub async fn scale_to_zero(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        if self.core.snapshot_store().is_none() {
            return Err(ServiceError::FailedPrecondition(
                "no snapshot storage is configured (cluster-service --snapshot-dir): a cluster is never stopped without a snapshot".into(),
            ));
        }
        self.core.run_steps(r, |_| Box::pin(self.stop_step(r, None))).await
    }

    /// Starts a stopped cluster's members again on their claims (same cluster ID).
    #[tracing::instrument(name = "RestartFromZero", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "RestartFromZero", target))]
    pub async fn restart_from_zero(
        &self,
        r: &ClusterRef,
        target: i32,
    ) -> Result<(ClusterOutcome, RestartSource), ServiceError> {
        let mut v = etcd_operator_common::Violations::default();
        v.check((1..=MAX_SIZE).contains(&target), "target", format!("must be between 1 and {MAX_SIZE}"));
        v.into_result()?;
        let seen = std::sync::Mutex::new(None);
        let out = self.core.run_steps(r, |_| Box::pin(self.stop_step(r, Some((target, &seen))))).await?;
        let seen = seen.into_inner().unwrap_or_else(|e| e.into_inner());
        // A call that found the restart finished already: the restore record says whether it was one.
        let restored = out.status.restore.as_ref().is_some_and(|r| r.trigger == RestoreTrigger::StopSnapshot);
        let source = match seen {
            Some(source) => source,
            None if restored => RestartSource::Snapshot,
            None => RestartSource::RetainedVolumes,
        };
        Ok((out, source))
    }

    /// One step of a stop (`restart` None) or a restart to `restart` members, noting where the
    /// restart's members get their data from.
    async fn stop_step(
        &self,
        r: &ClusterRef,
        restart: Option<(i32, &std::sync::Mutex<Option<RestartSource>>)>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Gathered { cluster, observation, claims, replicas, pods, .. } = self.core.gather(r).await?;
        let status = cluster.status.clone().unwrap_or_default();
        let operation = status.operation.clone().filter(crate::operation::is_scaling);
        let names = self.core.names_of(&cluster);
        let now = now_rfc3339();
        let inputs = StopInputs {
            operation: operation.as_ref(),
            stopped: status.stopped.as_ref(),
            replicas,
            pods,
            etcd: &observation.etcd,
            claims: &claims,
            names: &names,
            now: &now,
            restore_prepared: status
                .restore
                .as_ref()
                .is_some_and(|r| matches!(r.phase, RestorePhase::Restoring | RestorePhase::Completed)),
        };
        let action = match restart {
            None => next_stop_action(&inputs),
            Some((target, _)) => next_restart_action(&inputs, target),
        };
        if let Some((_, seen)) = restart
            && let Some(source) = restart_source(&action, operation.as_ref())
        {
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
        }
        let stopped = status.stopped.as_ref();
        let view = match &observation.etcd {
            EtcdState::Reached(view) => Some(view),
            _ => None,
        };
        let at = At { machine: "stop", cluster: &cluster, observation: &observation, view, stopped };
        let own = |own| async {
            match own {
                Own::TakeSnapshot => {
                    let record = self.stop_snapshot(&cluster, &observation).await?;
                    let mut op = operation.clone().unwrap_or_default();
                    op.step = step::STOPPING_MEMBERS.into();
                    self.core.record_scaling(&cluster, &observation, Some(&op), Some(&record)).await?;
                    Ok(None)
                }
                Own::PrepareRestore => {
                    Box::pin(self.restore.prepare_snapshot_restore(&cluster, &observation)).await?;
                    Ok(None)
                }
                Own::Done => self.stop_done(&cluster, &observation, restart.map(|(target, _)| target)).await,
                Own::Refuse(reason) => Err(ServiceError::FailedPrecondition(reason)),
            }
        };
        Box::pin(self.core.step(&at, effect_of(action), own)).await
    }

    /// A stop or restart finished: the record cleared (a restart clears the stop record too).
    async fn stop_done(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        restart: Option<i32>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let status = cluster.status.clone().unwrap_or_default();
        let stopped = status.stopped.as_ref();
        // A restart from the stop snapshot: the restore is complete (token gone) before scaling goes on.
        if !Box::pin(self.restore.finish_restore(cluster, status.restore.as_ref(), observation)).await? {
            let wait = std::time::Duration::from_secs(1);
            return self.core.wait(cluster, observation, "members are restoring", wait).await;
        }
        let keep = if restart.is_some() { None } else { stopped };
        let out = self.core.record_scaling(cluster, observation, None, keep).await?;
        // Back with its old members; if the spec wants another size, scaling goes on at once.
        let resize = restart.zip(stopped).is_some_and(|(t, s)| t != s.members.len() as i32);
        Ok(Some(ClusterOutcome { requeue_after: resize.then_some(std::time::Duration::from_secs(1)), ..out }))
    }

    /// Streams a snapshot from a healthy member to storage, reads it back to verify it, and
    /// returns the stop record.
    async fn stop_snapshot(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
    ) -> Result<StoppedStatus, ServiceError> {
        let EtcdState::Reached(view) = &observation.etcd else {
            return Err(ServiceError::Unavailable("etcd does not answer: no snapshot can be taken".into()));
        };
        let source =
            view.members.iter().find(|m| m.healthy() && !m.info.is_learner).ok_or_else(|| {
                ServiceError::Unavailable("no healthy member to take a snapshot from".into())
            })?;
        let endpoint = source.info.client_urls.first().cloned().unwrap_or_default();
        let r = crate::core::cluster_ref(cluster);
        // The same key on every call of this step: the snapshot is saved once, however many calls it takes.
        let started =
            cluster.status.as_ref().and_then(|s| s.operation.as_ref()).map(|op| op.started_at.clone());
        let key = snapshot_key(&r.namespace, &r.name, "stop", &started.unwrap_or_else(now_rfc3339));
        let snapshot = self.core.save_snapshot(&r.namespace, &r.name, &endpoint, &key).await?;
        let mut members: Vec<String> = view.members.iter().map(|m| m.name()).collect();
        members.sort_by_key(|n| self.core.names(&r).ordinal(n));
        Ok(StoppedStatus { members, cluster_id: format!("{:x}", view.cluster_id), snapshot: Some(snapshot) })
    }
}

/// The stop's and restart's own effects; every other effect is a shared one.
#[derive(Debug)]
enum Own {
    /// Stream, store and verify the snapshot, then record it with the next step.
    TakeSnapshot,
    /// Put the restore agent in the pods (a restart without claims).
    PrepareRestore,
    /// Finished: clear the record.
    Done,
    /// Refused; nothing was done.
    Refuse(String),
}

impl Named for Own {
    fn name(&self) -> &'static str {
        match self {
            Self::TakeSnapshot => "TakeSnapshot",
            Self::PrepareRestore => "PrepareRestore",
            Self::Done => "Done",
            Self::Refuse(_) => "Refuse",
        }
    }
}

/// The effect that carries out a stop or restart decision.
fn effect_of(action: StopAction) -> Effect<Own> {
    match action {
        StopAction::Record(op) => Effect::Record(op),
        StopAction::TakeSnapshot => Effect::Own(Own::TakeSnapshot),
        StopAction::PrepareRestore => Effect::Own(Own::PrepareRestore),
        // Stopping keeps every member's data, whatever whenScaled says; a restart starts the
        // recorded membership.
        StopAction::SetReplicas { replicas, members } => {
            Effect::SetReplicas { replicas, initial_members: members, keep_claims: true }
        }
        StopAction::Wait { reason, after } => Effect::Wait { reason, after },
        StopAction::Done => Effect::Own(Own::Done),
        StopAction::Refuse(reason) => Effect::Own(Own::Refuse(reason)),
    }
}
