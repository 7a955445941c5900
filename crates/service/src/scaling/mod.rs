//! ScalingService: carries out the scaling decisions one step at a time,
//! under the per-cluster lock, recording each intent in status before acting.
//!
//! A call takes as many steps as it can within its budget and returns when
//! it must wait (a learner catching up, a pod terminating) with when to call
//! again. Every step is safe to repeat and every crash point is resumable:
//! the named failpoints `scaling::before::<Step>` and `scaling::after::<Step>`
//! (feature `failpoints`) let tests crash the service between any two steps.

mod converge;
pub use converge::Converged;
#[cfg(test)]
mod converge_tests;
pub mod decide;
#[cfg(test)]
pub(crate) mod decide_tests;

use std::sync::Arc;

use crate::core::Core;
use crate::restore::RestoreService;
use crate::roll::RollService;

use etcd_operator_api::EtcdCluster;
use etcd_operator_api::cluster::{MAX_SIZE, OperationStatus};
use etcd_operator_common::{ClusterRef, Violations, time::now_rfc3339};
use kube::runtime::events::EventType;

use crate::{
    ClusterOutcome, ServiceError,
    config::component,
    observe::Observation,
    operation::is_membership_change,
    scaling::decide::{ScalingAction, ScalingInputs, next_scaling_action},
    steps::{At, Effect, Gathered, Named, membership_view, stopped_of},
};

/// Which RPC asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// ScaleUp: the target is above the current size.
    Up,
    /// ScaleDown: the target is below the current size.
    Down,
}

/// Membership changes: scaling up and down one member at a time, stopping and restarting.
#[derive(Clone)]
pub struct ScalingService {
    pub(crate) core: Arc<Core>,
    /// Restoring from a backup or snapshot, which this service hands work to.
    pub(crate) restore: RestoreService,
    /// Restarting members on a new pod template, once the membership is settled.
    pub(crate) roll: RollService,
}

impl ScalingService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { restore: RestoreService::new(core.clone()), roll: RollService::new(core.clone()), core }
    }
}

impl ScalingService {
    /// Adds members one at a time until `target`.
    #[tracing::instrument(name = "ScaleUp", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "ScaleUp", target))]
    pub async fn scale_up(&self, r: &ClusterRef, target: i32) -> Result<ClusterOutcome, ServiceError> {
        self.scale(r, target, Direction::Up).await
    }

    /// Removes members one at a time, highest ordinal first, until `target`.
    #[tracing::instrument(name = "ScaleDown", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "ScaleDown", target))]
    pub async fn scale_down(&self, r: &ClusterRef, target: i32) -> Result<ClusterOutcome, ServiceError> {
        self.scale(r, target, Direction::Down).await
    }

    async fn scale(
        &self,
        r: &ClusterRef,
        target: i32,
        direction: Direction,
    ) -> Result<ClusterOutcome, ServiceError> {
        let mut v = Violations::default();
        v.check(
            (1..=MAX_SIZE).contains(&target),
            "target",
            format!("must be between 1 and {MAX_SIZE} (0 is ScaleToZero)"),
        );
        v.into_result()?;
        self.core.run_steps(r, |first| Box::pin(self.scaling_step(r, target, direction, first))).await
    }

    /// Observes, decides and takes one step; `Some` when the call should return.
    async fn scaling_step(
        &self,
        r: &ClusterRef,
        target: i32,
        direction: Direction,
        first: bool,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Gathered { cluster, observation, claims, replicas, pods, .. } = self.core.gather(r).await?;
        let names = self.core.names_of(&cluster);
        let (operation, view) = membership_view(r, &cluster, &observation, is_membership_change)?;
        if first && operation.is_none() {
            check_direction(direction, target, view.members.len() as i32)?;
        }
        let now = now_rfc3339();
        let unhealthy_for =
            crate::membership::unhealthy_for(cluster.status.as_ref(), etcd_operator_common::time::now());
        let action = next_scaling_action(&ScalingInputs {
            target,
            replicas,
            pods,
            view: &view,
            operation: operation.as_ref(),
            claims: &claims,
            names: &names,
            now: &now,
            unhealthy_for: &unhealthy_for,
            grace: self.core.replace_grace(),
        });
        let at = At {
            machine: "scaling",
            cluster: &cluster,
            observation: &observation,
            view: Some(&view),
            stopped: stopped_of(&cluster),
        };
        let announce = match &action {
            ScalingAction::Record(op) => Some((op.step.clone(), record_note(op))),
            _ => None,
        };
        let own = |own| self.finish(&cluster, &observation, own, operation.as_ref());
        let result = Box::pin(self.core.step(&at, effect_of(action), own)).await?;
        if let Some((reason, note)) = announce {
            self.event(&cluster, EventType::Normal, &reason, &note).await;
        }
        Ok(result)
    }

    /// Carries out scaling's own ends: done (the record cleared) or refused.
    async fn finish(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        own: Ends,
        recorded: Option<&OperationStatus>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        match own {
            Ends::Done => {
                let out = self.core.record_scaling(cluster, observation, None, stopped_of(cluster)).await?;
                if let Some(op) = recorded {
                    let note = format!("{} to {} members done", op.type_, cluster.spec.size);
                    self.event(cluster, EventType::Normal, "Scaled", &note).await;
                }
                Ok(Some(ClusterOutcome { requeue_after: None, ..out }))
            }
            Ends::Refuse(reason) => {
                self.event(cluster, EventType::Warning, "ScalingRefused", &reason).await;
                Err(ServiceError::FailedPrecondition(reason))
            }
            Ends::Withdraw(reason) => {
                let out = self.core.record_scaling(cluster, observation, None, stopped_of(cluster)).await?;
                self.event(cluster, EventType::Normal, "ScaleWithdrawn", &reason).await;
                Ok(Some(ClusterOutcome { requeue_after: Some(std::time::Duration::from_secs(5)), ..out }))
            }
        }
    }

    /// Publishes an Event on the cluster.
    async fn event(&self, cluster: &EtcdCluster, type_: EventType, reason: &str, note: &str) {
        let note = crate::events::Note { type_, reason, action: "Scale", note };
        self.core.announce(cluster, component::SCALING, note).await;
    }
}

/// ScaleUp must grow and ScaleDown shrink the current membership (or already be there).
fn check_direction(direction: Direction, target: i32, current: i32) -> Result<(), ServiceError> {
    match direction {
        Direction::Up if target < current => Err(ServiceError::FailedPrecondition(format!(
            "target {target} is below the current {current} members; use ScaleDown"
        ))),
        Direction::Down if target > current => Err(ServiceError::FailedPrecondition(format!(
            "target {target} is above the current {current} members; use ScaleUp"
        ))),
        _ => Ok(()),
    }
}

/// Scaling's own ends of a step; every other effect is a shared one.
#[derive(Debug)]
enum Ends {
    /// Membership matches the target: clear the record.
    Done,
    /// Unsafe now: nothing was done.
    Refuse(String),
    /// A step never acted on is given up: clear the record, look again later.
    Withdraw(String),
}

impl Named for Ends {
    fn name(&self) -> &'static str {
        match self {
            Self::Done => "Done",
            Self::Refuse(_) => "Refuse",
            Self::Withdraw(_) => "Withdraw",
        }
    }
}

/// The effect that carries out a scaling decision.
fn effect_of(action: ScalingAction) -> Effect<Ends> {
    match action {
        ScalingAction::Done => Effect::Own(Ends::Done),
        ScalingAction::Refuse(reason) => Effect::Own(Ends::Refuse(reason)),
        ScalingAction::Withdraw(reason) => Effect::Own(Ends::Withdraw(reason)),
        ScalingAction::Record(op) => Effect::Record(op),
        // The member is not in etcd: its old data would make it rejoin under a removed ID.
        ScalingAction::DeleteStaleClaim { claim } => Effect::DeleteClaims(vec![claim]),
        ScalingAction::AddLearner { peer_url, .. } => Effect::AddLearner { peer_url },
        ScalingAction::SetReplicas { replicas, initial_members } => {
            Effect::SetReplicas { replicas, initial_members, keep_claims: false }
        }
        ScalingAction::Promote { id, .. } => Effect::Promote { id },
        ScalingAction::MoveLeader { leader_endpoint, to } => Effect::MoveLeader { leader_endpoint, to },
        ScalingAction::Remove { id, .. } => Effect::Remove { id },
        ScalingAction::Wait { reason, after } => Effect::Wait { reason, after },
    }
}

/// The Event note of a recorded step.
fn record_note(op: &OperationStatus) -> String {
    let member = op.member.as_deref().unwrap_or_default();
    format!("{} to {}: {} {member}", op.type_, op.target.unwrap_or_default(), op.step)
}
