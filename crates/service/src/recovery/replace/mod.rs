//! ReplaceMember: carry out the replacement decisions one step at a time under
//! the cluster's lock, recording each intent first (failpoints
//! `recovery::before::<Step>` / `recovery::after::<Step>`).

pub mod decide;
#[cfg(test)]
mod decide_tests;

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use etcd_operator_client::ClientError;
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use etcd_operator_resource::templates::{BootstrapConfig, InitialClusterState, config_map};
use kube::runtime::events::EventType;

use etcd_operator_api::cluster::OperationStatus;

use crate::{
    ClusterOutcome, ClusterService, ServiceError,
    config::component,
    observe::EtcdView,
    operation::OperationType,
    recovery::replace::decide::{ReplaceAction, ReplaceInputs, next_replace_action, step},
    scaling::{Gathered, membership_view},
};

impl ClusterService {
    /// Replaces `member` (or, when `None`, a member etcd has not heard from for longer than the
    /// grace period): remove, re-add as a learner under the same name, empty volume, promote.
    #[tracing::instrument(name = "ReplaceMember", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "ReplaceMember", member = ?member))]
    pub async fn replace_member(
        &self,
        r: &ClusterRef,
        member: Option<&str>,
    ) -> Result<ClusterOutcome, ServiceError> {
        self.run_steps(r, |_| Box::pin(self.replace_step(r, member))).await
    }

    async fn replace_step(
        &self,
        r: &ClusterRef,
        requested: Option<&str>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let gathered = self.gather(r).await?;
        let (operation, view) = membership_view(r, &gathered.cluster, &gathered.observation, |op| {
            op.type_ == OperationType::ReplaceMember
        })?;
        let at = Step { r, gathered: &gathered, operation: operation.as_ref(), view: &view };
        let action = self.decide_replace(&at, requested).await?;
        let name = action_name(&action);
        tracing::info!(step = name, ?action, "replace member");
        fail::fail_point!(&format!("recovery::before::{name}"));
        let result = self.carry_out_replace(&at, action).await?;
        fail::fail_point!(&format!("recovery::after::{name}"));
        Ok(result)
    }

    /// The next step of the replacement, from what was gathered.
    async fn decide_replace(
        &self,
        at: &Step<'_>,
        requested: Option<&str>,
    ) -> Result<ReplaceAction, ServiceError> {
        let Step { r, gathered, operation, view } = *at;
        let status = gathered.cluster.status.clone().unwrap_or_default();
        let now = Utc::now();
        // How long etcd has not heard from each member, from the status the health probes keep.
        let unhealthy_for: HashMap<String, Duration> = status
            .members
            .iter()
            .filter_map(|m| {
                let since = m.unhealthy_since.as_deref()?.parse::<DateTime<Utc>>().ok()?;
                Some((m.name.clone(), (now - since).to_std().unwrap_or_default()))
            })
            .collect();
        let now_text = now_rfc3339();
        let replaced = operation.and_then(|op| op.member.clone()).or(requested.map(str::to_owned));
        let pod_terminating = match replaced {
            Some(name) => self
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
            grace: self.replace_grace(),
            replicas: gathered.replicas,
            pod_terminating,
            names: &self.names(r),
            now: &now_text,
        }))
    }

    /// Carries out one step of the replacement: `Some` answer when it ended (done or nothing to do).
    async fn carry_out_replace(
        &self,
        at: &Step<'_>,
        action: ReplaceAction,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Step { r, gathered, operation, view } = *at;
        let (cluster, observation) = (&gathered.cluster, &gathered.observation);
        let stopped = cluster.status.as_ref().and_then(|s| s.stopped.as_ref());
        let m = self.managers_as(&r.namespace, component::SCALING);
        Ok(match action {
            ReplaceAction::Nothing(reason) => {
                let out = self.get_cluster_status(r).await?;
                tracing::debug!(reason, "nothing to replace");
                Some(ClusterOutcome { requeue_after: None, ..out })
            }
            ReplaceAction::Record(op) => {
                self.record_scaling(cluster, observation, Some(&op), stopped).await?;
                let note = format!("{}: {}", op.step, op.member.as_deref().unwrap_or_default());
                self.recovery_event_as(cluster, EventType::Normal, "Recover", &op.step, &note).await;
                None
            }
            ReplaceAction::Remove { id } => match self.etcd(view).await?.remove(id).await {
                Ok(()) | Err(ClientError::MemberNotFound(_)) | Err(ClientError::Timeout { .. }) => None,
                Err(ClientError::UnsafeMembershipChange(why)) => {
                    self.wait(cluster, observation, &why, Duration::from_secs(5)).await?
                }
                Err(e) => return Err(e.into()),
            },
            ReplaceAction::AddLearner { peer_url, .. } => {
                self.etcd(view).await?.add_learner(std::slice::from_ref(&peer_url)).await?;
                None
            }
            ReplaceAction::RecreateVolume { claim, pod, initial_members } => {
                // The new pod may only join: its init container holds it until the learner exists.
                let bootstrap = BootstrapConfig { initial_members, state: InitialClusterState::Existing };
                m.config_maps.apply(&config_map(&self.template(cluster), &bootstrap)?).await?;
                // The claim first: the StatefulSet recreates the pod with a new, empty claim.
                m.pvcs.delete(&claim).await?;
                // Removed from etcd already and its volume gone: nothing to shut down cleanly.
                self.member_pods(&r.namespace).delete_now(&pod).await?;
                let mut op = operation.cloned().unwrap_or_default();
                op.step = step::ADDING_LEARNER.into();
                self.record_scaling(cluster, observation, Some(&op), stopped).await?;
                None
            }
            ReplaceAction::Promote { id } => match self.etcd(view).await?.promote(id).await {
                Ok(()) | Err(ClientError::Timeout { .. }) => None,
                Err(ClientError::LearnerNotInSync(_)) => {
                    self.wait(cluster, observation, "the new member is catching up", Duration::from_secs(2))
                        .await?
                }
                Err(e) => return Err(e.into()),
            },
            ReplaceAction::Wait { after, .. } if after <= Duration::from_secs(1) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                None
            }
            ReplaceAction::Wait { reason, after } => self.wait(cluster, observation, &reason, after).await?,
            ReplaceAction::Done => {
                let member = operation.and_then(|op| op.member.clone()).unwrap_or_default();
                let out = self.record_scaling(cluster, observation, None, stopped).await?;
                let note = format!("{member} was replaced: it rejoined empty and caught up");
                self.recovery_event_as(cluster, EventType::Normal, "Recover", "MemberReplaced", &note).await;
                Some(ClusterOutcome { requeue_after: None, ..out })
            }
            ReplaceAction::Refuse(reason) => {
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
        use kube::Resource;
        let note = crate::events::Note { type_, reason, action, note };
        crate::events::publish(
            self.kube(),
            component::RECOVERY,
            self.identity(),
            &cluster.object_ref(&()),
            note,
        )
        .await;
    }
}

fn action_name(action: &ReplaceAction) -> &'static str {
    match action {
        ReplaceAction::Nothing(_) => "Nothing",
        ReplaceAction::Record(_) => "Record",
        ReplaceAction::Remove { .. } => "Remove",
        ReplaceAction::AddLearner { .. } => "AddLearner",
        ReplaceAction::RecreateVolume { .. } => "RecreateVolume",
        ReplaceAction::Promote { .. } => "Promote",
        ReplaceAction::Wait { .. } => "Wait",
        ReplaceAction::Done => "Done",
        ReplaceAction::Refuse(_) => "Refuse",
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
