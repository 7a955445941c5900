//! The roll: members restart one at a time on the StatefulSet's new pod
//! template, driven by the operator. The StatefulSet's update strategy is
//! `OnDelete`, so a new template restarts nothing by itself; the roll deletes
//! one pod at a time as `decide` says (followers first, the leader last after
//! leadership moved, each one healthy and caught up before the next), under the
//! cluster's lock, recording each member in status before it restarts. The
//! failpoints `roll::before::<Step>` / `roll::after::<Step>` let tests crash it
//! between any two steps. Certificate authority rotation and upgrades ride on it.

pub mod decide;
#[cfg(test)]
mod decide_tests;

use std::sync::Arc;

use etcd_operator_api::{EtcdCluster, cluster::OperationStatus};
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use kube::runtime::events::EventType;

use crate::{
    ClusterOutcome, ServiceError,
    config::component,
    core::Core,
    observe::{EtcdView, Observation},
    operation::OperationType,
    roll::decide::{RollAction, RollInputs, next_roll_action},
    steps::{At, Effect, Gathered, Named, membership_view, stopped_of},
};

/// Rolls members onto a new pod template.
#[derive(Clone)]
pub struct RollService {
    pub(crate) core: Arc<Core>,
}

impl RollService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Restarts the members whose pods are not on the StatefulSet's update revision, one at a
    /// time, as far as the call's budget goes.
    #[tracing::instrument(name = "RollMembers", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "RollMembers"))]
    pub async fn roll(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        self.core.run_steps(r, |_| Box::pin(self.roll_step(r))).await
    }

    async fn roll_step(&self, r: &ClusterRef) -> Result<Option<ClusterOutcome>, ServiceError> {
        let Gathered { cluster, observation, .. } = self.core.gather(r).await?;
        let formed = cluster.formed() || observation.etcd_answered();
        let (operation, view) = if formed {
            membership_view(r, &cluster, &observation, |op| op.type_ == OperationType::RollingUpdate)?
        } else {
            (None, EtcdView::default())
        };
        let names = self.core.names_of(&cluster);
        let now = now_rfc3339();
        let sts = observation.statefulset.clone().unwrap_or_default();
        let Some(pods) = observation.pods.as_deref() else {
            return self.core.wait(&cluster, &observation, "member pods could not be listed", SOON).await;
        };
        let action = next_roll_action(&RollInputs {
            sts: &sts,
            pods,
            view: &view,
            operation: operation.as_ref(),
            formed,
            names: &names,
            now: &now,
        });
        let at = At {
            machine: "roll",
            cluster: &cluster,
            observation: &observation,
            view: Some(&view),
            stopped: stopped_of(&cluster),
        };
        let announce = match &action {
            RollAction::Record(op) => {
                Some(format!("restarting {}", op.member.as_deref().unwrap_or_default()))
            }
            _ => None,
        };
        let own = |own| self.own(r, &cluster, &observation, own, operation.as_ref());
        let result = Box::pin(self.core.step(&at, effect_of(action), own)).await?;
        if let Some(note) = announce {
            self.event(&cluster, "RestartingMember", &note).await;
        }
        Ok(result)
    }

    /// Carries out the roll's own effects.
    async fn own(
        &self,
        r: &ClusterRef,
        cluster: &EtcdCluster,
        observation: &Observation,
        own: Own,
        recorded: Option<&OperationStatus>,
    ) -> Result<Option<ClusterOutcome>, ServiceError> {
        match own {
            Own::Restart { member, uid } => {
                // By UID: a pod already recreated on the new template is never deleted again.
                self.core.member_pods(&r.namespace).delete_uid(&member, &uid).await?;
                Ok(None)
            }
            Own::RestartUnformed(pods) => {
                for (member, uid) in pods {
                    self.core.member_pods(&r.namespace).delete_uid(&member, &uid).await?;
                }
                let out = self.core.current_status(r).await?;
                Ok(Some(ClusterOutcome { requeue_after: Some(SOON), ..out }))
            }
            Own::Restarted { member } => {
                self.core.record_scaling(cluster, observation, None, stopped_of(cluster)).await?;
                self.event(cluster, "MemberRestarted", &format!("{member} runs the new template")).await;
                Ok(None)
            }
            Own::Done => {
                let out = match recorded {
                    Some(_) => {
                        self.core.record_scaling(cluster, observation, None, stopped_of(cluster)).await?
                    }
                    None => ClusterOutcome::recorded(cluster, None),
                };
                Ok(Some(ClusterOutcome { requeue_after: None, ..out }))
            }
        }
    }

    async fn event(&self, cluster: &EtcdCluster, reason: &str, note: &str) {
        let note = crate::events::Note { type_: EventType::Normal, reason, action: "Roll", note };
        self.core.announce(cluster, component::SCALING, note).await;
    }
}

/// How soon a roll that cannot see its pods looks again.
const SOON: std::time::Duration = std::time::Duration::from_secs(2);

/// The roll's own effects; the others are shared.
#[derive(Debug)]
enum Own {
    Restart { member: String, uid: String },
    RestartUnformed(Vec<(String, String)>),
    Restarted { member: String },
    Done,
}

impl Named for Own {
    fn name(&self) -> &'static str {
        match self {
            Self::Restart { .. } => "Restart",
            Self::RestartUnformed(_) => "RestartUnformed",
            Self::Restarted { .. } => "Restarted",
            Self::Done => "Done",
        }
    }
}

fn effect_of(action: RollAction) -> Effect<Own> {
    match action {
        RollAction::Done => Effect::Own(Own::Done),
        RollAction::Record(op) => Effect::Record(op),
        RollAction::MoveLeader { leader_endpoint, to } => Effect::MoveLeader { leader_endpoint, to },
        RollAction::UpdatePeerUrl { id, peer_url, .. } => {
            Effect::UpdatePeerUrls { id, peer_urls: vec![peer_url] }
        }
        RollAction::Restart { member, uid } => Effect::Own(Own::Restart { member, uid }),
        RollAction::Restarted { member } => Effect::Own(Own::Restarted { member }),
        RollAction::RestartUnformed(pods) => Effect::Own(Own::RestartUnformed(pods)),
        RollAction::Wait { reason, after } => Effect::Wait { reason, after },
    }
}
