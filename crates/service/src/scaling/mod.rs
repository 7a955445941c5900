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
pub mod decide;
#[cfg(test)]
pub(crate) mod decide_tests;

use std::time::{Duration, Instant};

use etcd_operator_api::cluster::MAX_SIZE;
use etcd_operator_api::{
    EtcdCluster,
    cluster::{OperationStatus, StoppedStatus},
};
use etcd_operator_client::{ClientError, etcd::EtcdClient};
use etcd_operator_common::{ClusterRef, Violations, time::now_rfc3339};
use etcd_operator_resource::templates::{BootstrapConfig, InitialClusterState, config_map};
use kube::runtime::events::EventType;

use crate::{
    ClusterOutcome, ClusterService, ServiceError,
    config::component,
    lifecycle::decide::status::ScalingRecord,
    observe::{EtcdState, EtcdView, Observation},
    operation::{is_membership_change, is_scaling},
    plan::RolloutDecision,
    scaling::decide::ScalingAction,
    scaling::decide::ScalingInputs,
    scaling::decide::next_scaling_action,
};

/// Waits up to this long are polled within a call.
const SHORT_WAIT: Duration = Duration::from_secs(1);
/// How often a short wait looks again.
const POLL: Duration = Duration::from_millis(200);

/// What a step decides from.
pub(crate) struct Gathered {
    pub cluster: EtcdCluster,
    pub observation: Observation,
    pub claims: Vec<String>,
    /// StatefulSet `spec.replicas`.
    pub replicas: i32,
    /// Pods the StatefulSet has.
    pub pods: i32,
}

/// Which RPC asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// ScaleUp: the target is above the current size.
    Up,
    /// ScaleDown: the target is below the current size.
    Down,
}

impl ClusterService {
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
        self.run_steps(r, |first| Box::pin(self.scaling_step(r, target, direction, first))).await
    }

    /// Runs steps under the cluster's lock until one says to return, or the call's budget is spent.
    pub(crate) async fn run_steps<F, Fut>(
        &self,
        r: &ClusterRef,
        mut step: F,
    ) -> Result<ClusterOutcome, ServiceError>
    where
        F: FnMut(bool) -> Fut,
        Fut: Future<Output = Result<Option<ClusterOutcome>, ServiceError>>,
    {
        // Stay well inside the lock's lifetime: a lock that expired mid-call could let another replica in.
        let budget = (self.lock_duration() / 2).min(Duration::from_secs(20));
        self.locked(r, async {
            let deadline = Instant::now() + budget;
            let mut first = true;
            loop {
                let outcome = step(first).await?;
                first = false;
                if let Some(outcome) = outcome {
                    return Ok(outcome);
                }
                if Instant::now() > deadline {
                    let out = self.get_cluster_status(r).await?;
                    return Ok(ClusterOutcome { requeue_after: Some(Duration::from_secs(1)), ..out });
                }
            }
        })
        .await
    }

    /// Reads what every step decides from: the cluster, its StatefulSet, etcd, the claims.
    pub(crate) async fn gather(&self, r: &ClusterRef) -> Result<Gathered, ServiceError> {
        let cluster = self.get(r).await?;
        if cluster.metadata.deletion_timestamp.is_some() {
            return Err(ServiceError::FailedPrecondition(format!("EtcdCluster {r} is being deleted")));
        }
        crate::core::ensure_not_paused(&cluster)?;
        let names = self.names(r);
        let m = self.managers_as(&r.namespace, component::SCALING);
        let sts = m.statefulsets.get(&names.statefulset()).await?.ok_or_else(|| {
            ServiceError::FailedPrecondition(format!(
                "EtcdCluster {r} has no StatefulSet yet: it is being created"
            ))
        })?;
        let observation = self.observe_with(r, Some(&sts)).await;
        let claims = self.live_claims(r).await?;
        let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let pods = sts.status.as_ref().map_or(0, |s| s.replicas);
        Ok(Gathered { cluster, observation, claims, replicas, pods })
    }

    /// Observes, decides and takes one step; `Some` when the call should return.
    async fn scaling_step(
        &self,
        r: &ClusterRef,
        target: i32,
        direction: Direction,
        first: bool,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Gathered { cluster, observation, claims, replicas, pods } = self.gather(r).await?;
        let names = self.names(r);
        let (operation, view) = membership_view(r, &cluster, &observation, is_membership_change)?;
        if first && operation.is_none() {
            check_direction(direction, target, view.members.len() as i32)?;
        }
        let now = now_rfc3339();
        let action = next_scaling_action(&ScalingInputs {
            target,
            replicas,
            pods,
            view: &view,
            operation: operation.as_ref(),
            claims: &claims,
            names: &names,
            now: &now,
        });
        let name = action_name(&action);
        tracing::info!(step = name, ?action, "scaling");
        fail::fail_point!(&format!("scaling::before::{name}"));
        let result = Box::pin(self.act(&cluster, &observation, &view, &action, operation.as_ref())).await?;
        fail::fail_point!(&format!("scaling::after::{name}"));
        Ok(result)
    }

    /// Carries out one action.
    async fn act(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        view: &EtcdView,
        action: &ScalingAction,
        recorded: Option<&OperationStatus>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let r = crate::core::cluster_ref(cluster);
        let names = self.names(&r);
        let m = self.managers_as(&r.namespace, component::SCALING);
        match action {
            ScalingAction::Done => {
                let out = self.record_scaling(cluster, observation, None, stopped_of(cluster)).await?;
                if let Some(op) = recorded {
                    self.event(
                        cluster,
                        EventType::Normal,
                        "Scaled",
                        &format!("{} to {} members done", op.type_, cluster.spec.size),
                    )
                    .await;
                }
                return Ok(Some(ClusterOutcome { requeue_after: None, ..out }));
            }
            ScalingAction::Record(op) => {
                self.record_scaling(cluster, observation, Some(op), stopped_of(cluster)).await?;
                let note = format!(
                    "{} to {}: {} {}",
                    op.type_,
                    op.target.unwrap_or_default(),
                    op.step,
                    op.member.as_deref().unwrap_or_default()
                );
                self.event(cluster, EventType::Normal, &op.step, &note).await;
            }
            ScalingAction::DeleteStaleClaim { claim } => {
                // The member is not in etcd: its old data would make it rejoin under a removed ID.
                m.pvcs.delete(claim).await?;
            }
            ScalingAction::AddLearner { peer_url, .. } => {
                self.etcd(view).await?.add_learner(std::slice::from_ref(peer_url)).await?;
            }
            ScalingAction::SetReplicas { replicas, initial_members } => {
                if !initial_members.is_empty() {
                    // The joining member reads who to join from the ConfigMap; etcd ignores it once it has data.
                    let ctx = self.template(cluster);
                    let bootstrap = BootstrapConfig {
                        initial_members: initial_members.clone(),
                        state: InitialClusterState::Existing,
                    };
                    m.config_maps.apply(&config_map(&ctx, &bootstrap)?).await?;
                }
                m.statefulsets.scale(&names.statefulset(), *replicas).await?;
            }
            ScalingAction::Promote { id, .. } => match self.etcd(view).await?.promote(*id).await {
                Ok(()) => {}
                Err(ClientError::LearnerNotInSync(_)) => {
                    return self
                        .wait(cluster, observation, "learner is catching up", Duration::from_secs(2))
                        .await;
                }
                // The answer was lost: the next observation shows whether it was promoted.
                Err(ClientError::Timeout { .. }) => {}
                Err(e) => return Err(e.into()),
            },
            ScalingAction::MoveLeader { leader_endpoint, to } => {
                self.etcd(view).await?.move_leader(leader_endpoint, *to).await?;
            }
            ScalingAction::Remove { id, .. } => match self.etcd(view).await?.remove(*id).await {
                Ok(()) | Err(ClientError::MemberNotFound(_)) | Err(ClientError::Timeout { .. }) => {}
                Err(ClientError::UnsafeMembershipChange(why)) => {
                    return self.wait(cluster, observation, &why, Duration::from_secs(5)).await;
                }
                Err(e) => return Err(e.into()),
            },
            // A short wait (a pod starting or stopping) is polled within the call, which
            // ends at its budget anyway; longer ones go back to the caller.
            ScalingAction::Wait { after, .. } if *after <= SHORT_WAIT => {
                tokio::time::sleep(POLL).await;
            }
            ScalingAction::Wait { reason, after } => {
                return self.wait(cluster, observation, reason, *after).await;
            }
            ScalingAction::Refuse(reason) => {
                self.event(cluster, EventType::Warning, "ScalingRefused", reason).await;
                return Err(ServiceError::FailedPrecondition(reason.clone()));
            }
        }
        Ok(None)
    }

    /// Writes status as scaling, with its operation and stop record.
    pub(crate) async fn record_scaling(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        operation: Option<&OperationStatus>,
        stopped: Option<&StoppedStatus>,
    ) -> Result<ClusterOutcome, ServiceError> {
        let record = ScalingRecord::Now { operation, stopped };
        self.record_status_with(cluster, observation, &Ok(()), &RolloutDecision::Proceed, record).await
    }

    /// Records status as it is and returns with a requeue.
    pub(crate) async fn wait(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        reason: &str,
        after: Duration,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        tracing::info!(reason, "scaling waits");
        let out = self.record_status(cluster, observation, &Ok(()), &RolloutDecision::Proceed).await?;
        Ok(Some(ClusterOutcome { requeue_after: Some(after), ..out }))
    }

    pub(crate) async fn etcd(&self, view: &EtcdView) -> Result<EtcdClient, ServiceError> {
        let endpoints: Vec<String> =
            view.members.iter().filter_map(|m| m.info.client_urls.first().cloned()).collect();
        Ok(EtcdClient::connect(&endpoints, self.etcd_options(), self.etcd_metrics()).await?)
    }

    /// Publishes an Event on the cluster.
    async fn event(&self, cluster: &EtcdCluster, type_: EventType, reason: &str, note: &str) {
        use kube::Resource;
        let note = crate::events::Note { type_, reason, action: "Scale", note };
        crate::events::publish(
            self.kube(),
            component::SCALING,
            self.identity(),
            &cluster.object_ref(&()),
            note,
        )
        .await;
    }
}

/// The recorded operation and etcd's view, for a membership change of the kind `ours` accepts;
/// another operation in progress, an unreachable or a stopped cluster is refused.
pub(crate) fn membership_view(
    r: &ClusterRef,
    cluster: &EtcdCluster,
    observation: &Observation,
    ours: fn(&OperationStatus) -> bool,
) -> Result<(Option<OperationStatus>, EtcdView), ServiceError> {
    let operation = cluster.status.as_ref().and_then(|s| s.operation.clone()).filter(is_scaling);
    if let Some(op) = operation.as_ref().filter(|op| !ours(op)) {
        return Err(ServiceError::FailedPrecondition(format!(
            "a {} of {r} is in progress; it finishes first",
            op.type_
        )));
    }
    match &observation.etcd {
        EtcdState::Reached(view) => Ok((operation, view.clone())),
        EtcdState::Unreachable(e) => {
            Err(ServiceError::Unavailable(format!("etcd of {r} did not answer: {e}")))
        }
        EtcdState::NotExpected => Err(ServiceError::FailedPrecondition(format!(
            "EtcdCluster {r} is stopped; RestartFromZero brings it back"
        ))),
    }
}

/// The stop record as it stands (membership changes keep it).
fn stopped_of(cluster: &EtcdCluster) -> Option<&StoppedStatus> {
    cluster.status.as_ref().and_then(|s| s.stopped.as_ref())
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

/// Name of an action in logs and failpoints.
pub fn action_name(action: &ScalingAction) -> &'static str {
    match action {
        ScalingAction::Done => "Done",
        ScalingAction::Record(_) => "Record",
        ScalingAction::DeleteStaleClaim { .. } => "DeleteStaleClaim",
        ScalingAction::AddLearner { .. } => "AddLearner",
        ScalingAction::SetReplicas { .. } => "SetReplicas",
        ScalingAction::Promote { .. } => "Promote",
        ScalingAction::MoveLeader { .. } => "MoveLeader",
        ScalingAction::Remove { .. } => "Remove",
        ScalingAction::Wait { .. } => "Wait",
        ScalingAction::Refuse(_) => "Refuse",
    }
}
