//! What every state machine of the service shares (scaling, stop and
//! restart, member replacement, quorum recovery): the step loop under the
//! cluster's lock and within the call's budget, the gathering of what a step
//! decides from, and the records a step writes.

use std::time::{Duration, Instant};

use etcd_operator_api::{
    EtcdCluster,
    cluster::{OperationStatus, StoppedStatus},
};
use etcd_operator_client::etcd::EtcdClient;
use etcd_operator_common::ClusterRef;
use k8s_openapi::api::apps::v1::StatefulSet;

mod effect;
pub(crate) use effect::{At, Effect, Named};

use crate::{
    ClusterOutcome, ServiceError,
    config::component,
    core::Core,
    observe::{EtcdState, EtcdView, Observation},
    operation::is_scaling,
    plan::RolloutDecision,
    status::{StatusWrite, decide::ScalingRecord},
};

/// What a step decides from.
pub(crate) struct Gathered {
    pub cluster: EtcdCluster,
    pub observation: Observation,
    pub claims: Vec<String>,
    /// The StatefulSet as read (its status is recorded from it when no step is due).
    pub statefulset: StatefulSet,
    /// StatefulSet `spec.replicas`.
    pub replicas: i32,
    /// Pods the StatefulSet has.
    pub pods: i32,
}

impl Core {
    /// Runs steps under the cluster's lock until one says to return, or the call's budget is spent.
    pub(crate) async fn run_steps<F, Fut>(
        &self,
        r: &ClusterRef,
        mut step: F,
    ) -> Result<ClusterOutcome, ServiceError>
    where
        F: FnMut(bool) -> Fut + Send,
        Fut: Future<Output = Result<Option<ClusterOutcome>, ServiceError>> + Send,
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
                    let out = self.current_status(r).await?;
                    return Ok(ClusterOutcome { requeue_after: Some(Duration::from_secs(1)), ..out });
                }
            }
        })
        .await
    }

    /// Reads what every step decides from: the cluster, its StatefulSet, etcd, the claims.
    pub(crate) async fn gather(&self, r: &ClusterRef) -> Result<Gathered, ServiceError> {
        self.gather_from(r, self.get(r).await?).await
    }

    /// [`Self::gather`] around a cluster the caller read.
    pub(crate) async fn gather_from(
        &self,
        r: &ClusterRef,
        cluster: EtcdCluster,
    ) -> Result<Gathered, ServiceError> {
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
        let observation = self.observe_with(&cluster, Some(&sts)).await;
        let claims = self.live_claims(r).await?;
        let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let pods = sts.status.as_ref().map_or(0, |s| s.replicas);
        Ok(Gathered { cluster, observation, claims, statefulset: sts, replicas, pods })
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
        let (check, proceed) = (Ok(()), RolloutDecision::Proceed);
        let write = StatusWrite::new(cluster, &check, &proceed).scaling(record);
        self.write_status(cluster, observation, write).await
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

    pub(crate) async fn etcd(
        &self,
        cluster: &EtcdCluster,
        view: &EtcdView,
    ) -> Result<EtcdClient, ServiceError> {
        let endpoints: Vec<String> =
            view.members.iter().filter_map(|m| m.info.client_urls.first().cloned()).collect();
        Ok(EtcdClient::connect(&endpoints, self.etcd_options(cluster).await?, self.etcd_metrics()).await?)
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
pub(crate) fn stopped_of(cluster: &EtcdCluster) -> Option<&StoppedStatus> {
    cluster.status.as_ref().and_then(|s| s.stopped.as_ref())
}
