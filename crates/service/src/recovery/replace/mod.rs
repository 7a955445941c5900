//! ReplaceMember: carry out the replacement decisions one step at a time under
//! the cluster's lock, recording each intent first (failpoints
//! `recovery::before::<Step>` / `recovery::after::<Step>`).

pub mod decide;
#[cfg(test)]
mod decide_tests;

use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use etcd_operator_resource::templates::{BootstrapConfig, InitialClusterState, config_map};
use kube::runtime::events::EventType;

use etcd_operator_api::cluster::OperationStatus;

use crate::{
    ClusterOutcome, ServiceError,
    config::component,
    observe::EtcdView,
    operation::OperationType,
    recovery::RecoveryService,
    recovery::replace::decide::{ReplaceAction, ReplaceInputs, next_replace_action, step},
    steps::{At, Effect, Gathered, Named, membership_view},
};

impl RecoveryService {
    /// Replaces `member` (or, when `None`, a member etcd has not heard from for longer than the
    /// grace period): remove, re-add as a learner under the same name, empty volume, promote.
    #[tracing::instrument(name = "ReplaceMember", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "ReplaceMember", member = ?member))]
    pub async fn replace_member(
        &self,
        r: &ClusterRef,
        member: Option<&str>,
    ) -> Result<ClusterOutcome, ServiceError> {
        self.core.run_steps(r, |_| Box::pin(self.replace_step(r, member))).await
    }

    async fn replace_step(
        &self,
        r: &ClusterRef,
        requested: Option<&str>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let gathered = self.core.gather(r).await?;
        let (operation, view) = membership_view(r, &gathered.cluster, &gathered.observation, |op| {
            op.type_ == OperationType::ReplaceMember
        })?;
        let at = Step { r, gathered: &gathered, operation: operation.as_ref(), view: &view };
        let action = self.decide_replace(&at, requested).await?;
        let cluster = &gathered.cluster;
        let step_at = At {
            machine: "recovery",
            cluster,
            observation: &gathered.observation,
            view: Some(&view),
            stopped: cluster.status.as_ref().and_then(|s| s.stopped.as_ref()),
        };
        let announce = match &action {
            ReplaceAction::Record(op) => {
                Some((op.step.clone(), format!("{}: {}", op.step, op.member.as_deref().unwrap_or_default())))
            }
            _ => None,
        };
        let result = self.core.step(&step_at, effect_of(action), |own| self.replace_own(&at, own)).await?;
        if let Some((reason, note)) = announce {
            self.recovery_event_as(cluster, EventType::Normal, "Recover", &reason, &note).await;
        }
        Ok(result)
    }

    /// The next step of the replacement, from what was gathered.
    async fn decide_replace(
        &self,
        at: &Step<'_>,
        requested: Option<&str>,
    ) -> Result<ReplaceAction, ServiceError> {
        let Step { r, gathered, operation, view } = *at;
        let unhealthy_for = crate::membership::unhealthy_for(
            gathered.cluster.status.as_ref(),
            etcd_operator_common::time::now(),
        );
        let now_text = now_rfc3339();
        let replaced = operation.and_then(|op| op.member.clone()).or(requested.map(str::to_owned));
        let pod_terminating = match replaced {
            Some(name) => self
                .core
                .member_pods(&r.namespace)
                .get(&name)
                .await?
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some()),
            None => false,
        };
        Ok(next_replace_action(&ReplaceInputs {
            view,
            operation,
            requested,
            unhealthy_for: &unhealthy_for,
            grace: self.core.replace_grace(),
            replicas: gathered.replicas,
            size: gathered.cluster.spec.size,
            pod_terminating,
            names: &self.core.names_of(&gathered.cluster),
            now: &now_text,
        }))
    }

    /// Carries out the replacement's own effects: `Some` answer when it ended (done or nothing to do).
    async fn replace_own(&self, at: &Step<'_>, own: Own) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Step { r, gathered, operation, .. } = *at;
        let (cluster, observation) = (&gathered.cluster, &gathered.observation);
        let stopped = cluster.status.as_ref().and_then(|s| s.stopped.as_ref());
        let m = self.core.managers_as(&r.namespace, component::SCALING);
        Ok(match own {
            Own::Nothing(reason) => {
                let (sts, observation) = (Some(&gathered.statefulset), &gathered.observation);
                let out = self.core.record_observation(cluster, sts, observation).await?;
                tracing::debug!(reason, "nothing to replace");
                Some(ClusterOutcome { requeue_after: None, ..out })
            }
            Own::RecreateVolume { claim, pod, initial_members } => {
                // The new pod may only join: its init container holds it until the learner exists.
                let bootstrap = BootstrapConfig { initial_members, state: InitialClusterState::Existing };
                m.config_maps.apply(&config_map(&self.core.template(cluster), &bootstrap)?).await?;
                // The claim first: the StatefulSet recreates the pod with a new, empty claim.
                m.pvcs.delete(&claim).await?;
                // Gracefully, though nothing needs shutting down: a forced delete drops the pod
                // object while its containers still run, and its init container, seeing the
                // learner added next, would take it with the old pod's volume and die. Until the
                // kubelet confirms they stopped the pod shows terminating, and the learner waits.
                self.core.member_pods(&r.namespace).delete(&pod).await?;
                let mut op = operation.cloned().unwrap_or_default();
                op.step = step::ADDING_LEARNER.into();
                self.core.record_scaling(cluster, observation, Some(&op), stopped).await?;
                None
            }
            Own::Withdraw(reason) => {
                let out = self.core.record_scaling(cluster, observation, None, stopped).await?;
                self.recovery_event_as(cluster, EventType::Normal, "Recover", "ReplaceWithdrawn", &reason)
                    .await;
                // Called again shortly: what held it (a failed voter's replacement, a scale down) goes first.
                Some(ClusterOutcome { requeue_after: Some(std::time::Duration::from_secs(1)), ..out })
            }
            Own::Done => {
                let member = operation.and_then(|op| op.member.clone()).unwrap_or_default();
                let out = self.core.record_scaling(cluster, observation, None, stopped).await?;
                let note = format!("{member} was replaced: it rejoined empty and caught up");
                self.recovery_event_as(cluster, EventType::Normal, "Recover", "MemberReplaced", &note).await;
                Some(ClusterOutcome { requeue_after: None, ..out })
            }
            Own::Refuse(reason) => {
                self.recovery_event_as(cluster, EventType::Warning, "Recover", "ReplaceRefused", &reason)
                    .await;
                return Err(ServiceError::FailedPrecondition(reason));
            }
        })
    }

    /// Publishes an Event of the recovery component; `action` is Recover or RecoverQuorum.
    pub(crate) async fn recovery_event_as(
        &self,
        cluster: &etcd_operator_api::EtcdCluster,
        type_: EventType,
        action: &str,
        reason: &str,
        note: &str,
    ) {
        let note = crate::events::Note { type_, reason, action, note };
        self.core.announce(cluster, component::RECOVERY, note).await;
    }
}

/// The replacement's own effects; every other effect is a shared one.
#[derive(Debug)]
enum Own {
    /// Nothing needs replacing (the reason says why).
    Nothing(String),
    /// Write the ConfigMap (`existing`), delete the member's claim and pod, record the next step.
    RecreateVolume { claim: String, pod: String, initial_members: Vec<String> },
    /// Give the record up (the reason says why), the member being out of etcd.
    Withdraw(String),
    /// Finished: clear the record.
    Done,
    /// Unsafe now; nothing was done.
    Refuse(String),
}

impl Named for Own {
    fn name(&self) -> &'static str {
        match self {
            Self::Nothing(_) => "Nothing",
            Self::RecreateVolume { .. } => "RecreateVolume",
            Self::Withdraw(_) => "Withdraw",
            Self::Done => "Done",
            Self::Refuse(_) => "Refuse",
        }
    }
}

/// The effect that carries out a replacement decision.
fn effect_of(action: ReplaceAction) -> Effect<Own> {
    match action {
        ReplaceAction::Nothing(reason) => Effect::Own(Own::Nothing(reason)),
        ReplaceAction::Record(op) => Effect::Record(op),
        ReplaceAction::Remove { id } => Effect::Remove { id },
        ReplaceAction::AddLearner { peer_url, .. } => Effect::AddLearner { peer_url },
        ReplaceAction::RecreateVolume { claim, pod, initial_members } => {
            Effect::Own(Own::RecreateVolume { claim, pod, initial_members })
        }
        ReplaceAction::Promote { id } => Effect::Promote { id },
        ReplaceAction::Wait { reason, after } => Effect::Wait { reason, after },
        ReplaceAction::Withdraw(reason) => Effect::Own(Own::Withdraw(reason)),
        ReplaceAction::Done => Effect::Own(Own::Done),
        ReplaceAction::Refuse(reason) => Effect::Own(Own::Refuse(reason)),
    }
}

/// What one step of a replacement works from.
#[derive(Clone, Copy)]
struct Step<'a> {
    r: &'a ClusterRef,
    gathered: &'a Gathered,
    operation: Option<&'a OperationStatus>,
    view: &'a EtcdView,
}
