//! One executor for the state machines' effects. Scaling, stop and restart,
//! member replacement and quorum recovery each decide their next step as an
//! action of their own; the effects they share (writing the record, member
//! calls to etcd, scaling the StatefulSet, deleting claims, waiting) are
//! carried out here, once, with the same error handling and the same
//! failpoints (`<machine>::before::<Name>`, `<machine>::after::<Name>`).
//! A machine adds only its own effects (`Effect::Own`).

use std::time::Duration;

use etcd_operator_api::{
    EtcdCluster,
    cluster::{OperationStatus, StoppedStatus},
};
use etcd_operator_client::{ClientError, etcd::EtcdClient};
use etcd_operator_resource::templates::{BootstrapConfig, InitialClusterState, config_map};

use crate::{
    ClusterOutcome, ServiceError,
    config::component,
    core::{Core, cluster_ref},
    observe::{EtcdView, Observation},
};

/// Waits up to this long are polled within a call; longer ones go back to the caller.
const SHORT_WAIT: Duration = Duration::from_secs(1);
/// How often a short wait looks again.
const POLL: Duration = Duration::from_millis(200);

/// What one step does.
#[derive(Debug)]
pub(crate) enum Effect<O> {
    /// Write the operation record (under scaling's field manager) before acting on it.
    Record(OperationStatus),
    /// Add a member to etcd as a learner.
    AddLearner { peer_url: String },
    /// Promote a learner; one still catching up is waited for.
    Promote { id: u64 },
    /// Hand leadership from `leader_endpoint` to member `to`.
    MoveLeader { leader_endpoint: String, to: u64 },
    /// Set a member's peer URLs (the scheme it listens with after its restart, or now).
    UpdatePeerUrls { id: u64, peer_urls: Vec<String> },
    /// Remove a member from etcd; gone already is done, refused as unsafe now is waited for.
    Remove { id: u64 },
    /// Scale the StatefulSet. Non-empty `initial_members` are written to the ConfigMap first
    /// (a joining member reads whom to join); `keep_claims` retains every claim on the way down.
    SetReplicas { replicas: i32, initial_members: Vec<String>, keep_claims: bool },
    /// Delete claims (of members whose data must not come back).
    DeleteClaims(Vec<String>),
    /// Nothing to do until something changes; look again after `after`.
    Wait { reason: String, after: Duration },
    /// The machine's own effect.
    Own(O),
}

/// Names an effect in logs and failpoints.
pub(crate) trait Named {
    /// The name (`Record`, `Promote`, ...).
    fn name(&self) -> &'static str;
}

impl<O: Named> Named for Effect<O> {
    fn name(&self) -> &'static str {
        match self {
            Self::Record(_) => "Record",
            Self::AddLearner { .. } => "AddLearner",
            Self::Promote { .. } => "Promote",
            Self::MoveLeader { .. } => "MoveLeader",
            Self::UpdatePeerUrls { .. } => "UpdatePeerUrls",
            Self::Remove { .. } => "Remove",
            Self::SetReplicas { .. } => "SetReplicas",
            Self::DeleteClaims(_) => "DeleteClaims",
            Self::Wait { .. } => "Wait",
            Self::Own(own) => own.name(),
        }
    }
}

/// Where a step acts.
pub(crate) struct At<'a> {
    /// The state machine, the prefix of its failpoints (`scaling`, `stop`, ...).
    pub machine: &'static str,
    /// The cluster as gathered for this step.
    pub cluster: &'a EtcdCluster,
    /// What was observed with it.
    pub observation: &'a Observation,
    /// etcd's view, for member calls.
    pub view: Option<&'a EtcdView>,
    /// The stop record the step keeps when it writes the operation.
    pub stopped: Option<&'a StoppedStatus>,
}

impl Core {
    /// Carries out one step; `own` carries out the machine's own effects. `Some` when the call
    /// should return (a longer wait, or the machine's own answer).
    pub(crate) async fn step<O, F>(
        &self,
        at: &At<'_>,
        effect: Effect<O>,
        own: impl FnOnce(O) -> F,
    ) -> Result<Option<ClusterOutcome>, ServiceError>
    where
        O: Named + std::fmt::Debug,
        F: Future<Output = Result<Option<ClusterOutcome>, ServiceError>>,
    {
        let name = effect.name();
        tracing::info!(machine = at.machine, step = name, ?effect, "step");
        fail::fail_point!(&format!("{}::before::{name}", at.machine));
        let result = match effect {
            Effect::Own(o) => own(o).await?,
            shared => Box::pin(self.shared_effect(at, shared)).await?,
        };
        fail::fail_point!(&format!("{}::after::{name}", at.machine));
        Ok(result)
    }

    async fn shared_effect<O>(
        &self,
        at: &At<'_>,
        effect: Effect<O>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        let (cluster, observation) = (at.cluster, at.observation);
        let r = cluster_ref(cluster);
        let m = self.managers_as(&r.namespace, component::SCALING);
        match effect {
            Effect::Record(op) => {
                self.record_scaling(cluster, observation, Some(&op), at.stopped).await?;
            }
            Effect::AddLearner { peer_url } => {
                self.member_calls(at).await?.add_learner(std::slice::from_ref(&peer_url)).await?;
            }
            Effect::Promote { id } => match self.member_calls(at).await?.promote(id).await {
                // The answer was lost: the next observation shows whether it was promoted.
                Ok(()) | Err(ClientError::Timeout { .. }) => {}
                Err(ClientError::LearnerNotInSync(_)) => {
                    let reason = "the learner is catching up";
                    return self.wait(cluster, observation, reason, Duration::from_secs(2)).await;
                }
                Err(e) => return Err(e.into()),
            },
            Effect::MoveLeader { leader_endpoint, to } => {
                self.member_calls(at).await?.move_leader(&leader_endpoint, to).await?;
            }
            Effect::UpdatePeerUrls { id, peer_urls } => {
                self.member_calls(at).await?.update_peer_urls(id, &peer_urls).await?;
            }
            Effect::Remove { id } => match self.member_calls(at).await?.remove(id).await {
                Ok(()) | Err(ClientError::MemberNotFound(_)) | Err(ClientError::Timeout { .. }) => {}
                Err(ClientError::UnsafeMembershipChange(why)) => {
                    return self.wait(cluster, observation, &why, Duration::from_secs(5)).await;
                }
                Err(e) => return Err(e.into()),
            },
            Effect::SetReplicas { replicas, initial_members, keep_claims } => {
                let statefulset = self.names(&r).statefulset();
                if !initial_members.is_empty() {
                    let bootstrap = BootstrapConfig { initial_members, state: InitialClusterState::Existing };
                    m.config_maps.apply(&config_map(&self.template(cluster), &bootstrap)?).await?;
                }
                if keep_claims && replicas == 0 {
                    m.statefulsets.retain_claims_on_scale_down(&statefulset).await?;
                }
                m.statefulsets.scale(&statefulset, replicas).await?;
            }
            Effect::DeleteClaims(claims) => {
                for claim in &claims {
                    m.pvcs.delete(claim).await?;
                }
            }
            // A short wait (a pod starting or stopping) is polled within the call, which ends at
            // its budget anyway.
            Effect::Wait { after, .. } if after <= SHORT_WAIT => tokio::time::sleep(POLL).await,
            Effect::Wait { reason, after } => return self.wait(cluster, observation, &reason, after).await,
            Effect::Own(_) => unreachable!("a machine's own effect is carried out by the machine"),
        }
        Ok(None)
    }

    /// A connection to the members etcd listed for this step.
    async fn member_calls(&self, at: &At<'_>) -> Result<EtcdClient, ServiceError> {
        let view = at.view.ok_or_else(|| {
            ServiceError::Unavailable(format!("etcd of {} did not answer", cluster_ref(at.cluster)))
        })?;
        self.etcd(at.cluster, view).await
    }
}
