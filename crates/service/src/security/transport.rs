//! Moving a live cluster between plaintext and TLS: the effects of
//! `decide/transport.rs`, under the cluster's lock (the lifecycle's reconcile,
//! before it applies the pod template that follows the phase recorded). The
//! roll restarts the members onto each phase's template and sets their peer
//! URLs. Failpoints `transport::before::<Step>` / `transport::after::<Step>`.

use etcd_operator_api::{EtcdCluster, cluster::TransportStatus};
use etcd_operator_common::time::now_rfc3339;
use etcd_operator_resource::templates::TRANSPORT_ANNOTATION;
use kube::runtime::events::EventType;

use super::{
    SecurityService,
    decide::{
        Finding,
        transport::{MoveInputs, MoveStep, blocked, next_move_step},
    },
};
use crate::{ServiceError, config::component, observe::EtcdState};

/// Steps one call takes at most (a phase ends and the next starts, or a start and its record).
const MAX_STEPS: usize = 3;

impl SecurityService {
    /// Takes the move's steps until one must wait; whether the record in status changed (the
    /// caller reads the cluster again).
    pub(crate) async fn move_transport(&self, cluster: &EtcdCluster) -> Result<bool, ServiceError> {
        let r = crate::core::cluster_ref(cluster);
        let mut cluster = cluster.clone();
        let mut recorded = false;
        for _ in 0..MAX_STEPS {
            let step = self.next_move(&cluster).await?;
            let name = match &step {
                MoveStep::Nothing(_) | MoveStep::Wait(_) => break,
                MoveStep::Record { transport, .. } => {
                    transport.moving.as_ref().map_or("Settle", |m| m.phase.as_str())
                }
            };
            tracing::info!(step = name, detail = ?step, "TLS move");
            fail::fail_point!(&format!("transport::before::{name}"));
            if let MoveStep::Record { transport, reason, note } = step {
                self.record_transport(&r, &transport).await?;
                if !reason.is_empty() {
                    let note = crate::events::Note {
                        type_: EventType::Normal,
                        reason,
                        action: "MoveTransport",
                        note: &note,
                    };
                    self.core.announce(&cluster, component::SECURITY, note).await;
                }
                cluster = self.core.get(&r).await?;
                recorded = true;
            }
            fail::fail_point!(&format!("transport::after::{name}"));
        }
        Ok(recorded)
    }

    /// What the next step decides from, read now: only what the step needs is asked.
    async fn next_move(&self, cluster: &EtcdCluster) -> Result<MoveStep, ServiceError> {
        let recorded = cluster.status.as_ref().and_then(|s| s.transport.as_ref());
        let moving = recorded.and_then(|t| t.moving.as_ref()).is_some();
        let transport = cluster.member_transport();
        let rolled = moving && self.rolled_onto(cluster, TRANSPORT_ANNOTATION, transport.as_str()).await?;
        let peers_match = rolled && self.peers_match(cluster).await?;
        let wants_certificates =
            cluster.spec.tls.is_some() && recorded.is_some_and(|t| t.tls.is_none() || moving);
        let certificates_usable = wants_certificates && self.certificates_usable(cluster).await?;
        let now = now_rfc3339();
        Ok(next_move_step(&MoveInputs {
            spec: cluster.spec.tls.as_ref(),
            recorded,
            rolled,
            peers_match,
            certificates_usable,
            blocked: blocked(cluster),
            now: &now,
        }))
    }

    /// Whether every member's peer URL is in the scheme the members' template listens with.
    async fn peers_match(&self, cluster: &EtcdCluster) -> Result<bool, ServiceError> {
        let names = self.core.names_of(cluster);
        Ok(match self.core.observe(cluster).await?.etcd {
            EtcdState::Reached(view) => view.members.iter().all(|m| crate::membership::speaks(m, &names)),
            EtcdState::Unreachable(_) | EtcdState::NotExpected => false,
        })
    }

    /// Whether spec.tls's certificate Secrets are all usable; provided ones also need their CAs
    /// recorded (the pod template names them).
    async fn certificates_usable(&self, cluster: &EtcdCluster) -> Result<bool, ServiceError> {
        let Some(report) = self.core.certificates(cluster).await? else { return Ok(false) };
        let usable =
            report.problem.is_none() && report.found.iter().all(|f| matches!(f.state, Finding::Usable(_)));
        let provided = cluster.spec.tls.as_ref().is_some_and(|t| t.provided.is_some());
        let recorded = cluster.certificate_authority().is_some_and(|c| !c.trusted.is_empty());
        Ok(usable && (!provided || recorded))
    }

    /// Writes `status.transport` under its own field manager (other fields untouched).
    async fn record_transport(
        &self,
        r: &etcd_operator_common::ClusterRef,
        transport: &TransportStatus,
    ) -> Result<(), ServiceError> {
        let field = serde_json::json!({ "transport": transport });
        self.core.apply_status_field(r, component::TRANSPORT, field).await
    }
}
