//! HealthService: probe members and record their health; the maintenance
//! health calls for (defragmentation of fragmented members one at a time,
//! recovery from a NOSPACE alarm), and one-member defragmentation on request.

pub mod decide;
pub use decide::MaintenancePolicy;
#[cfg(test)]
mod decide_tests;

use std::sync::Arc;

use crate::core::Core;

use etcd_operator_api::cluster::{ClusterPhase, DefragmentationRecord, MaintenanceStatus};
use etcd_operator_client::etcd::EtcdClient;
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use kube::runtime::events::EventType;

use crate::{
    ClusterOutcome, ServiceError,
    config::component,
    health::decide::{Maintenance, may_defragment, next_maintenance},
    observe::EtcdState,
    reads::Seen,
};

/// Sizes of a member's database around a defragmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragmentOutcome {
    /// Bytes before.
    pub before: i64,
    /// Bytes after.
    pub after: i64,
}

/// Health: members' health recorded, and the maintenance it calls for.
#[derive(Clone)]
pub struct HealthService {
    pub(crate) core: Arc<Core>,
    /// Certificates, renewed as the health probe comes by.
    security: crate::security::SecurityService,
}

impl HealthService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { security: crate::security::SecurityService::new(core.clone()), core }
    }
}

impl HealthService {
    /// Probes every member on its own connection, records the result, and does the
    /// maintenance the answers call for.
    pub async fn check_health(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        self.check_health_seen(r, Seen::default()).await
    }

    /// [`Self::check_health`] for a caller that saw generation `seen`: the probe may start from
    /// the watch cache (never older than that); its status lands only onto the version read, and
    /// maintenance reads again under the lock.
    #[tracing::instrument(name = "CheckHealth", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "CheckHealth"))]
    pub async fn check_health_seen(
        &self,
        r: &ClusterRef,
        seen: Seen,
    ) -> Result<ClusterOutcome, ServiceError> {
        let cluster = self.core.look(r, seen).await?;
        let mut auth = None;
        if !cluster.spec.paused && cluster.metadata.deletion_timestamp.is_none() {
            // Renewal failures show in CertificatesReady; the probe goes on regardless.
            if let Err(e) = self.security.ensure(&cluster).await {
                tracing::warn!(error = %e, "certificates could not be renewed");
            }
            auth = self.security.ensure_auth(&cluster).await;
        }
        let (out, observation) = self.core.status_and_observation_of(cluster, auth).await?;
        let EtcdState::Reached(view) = &observation.etcd else { return Ok(out) };
        if out.status.phase == ClusterPhase::Paused {
            // Observed and recorded, never maintained: spec.paused means nothing changes.
            return Ok(out);
        }
        let done = out.status.maintenance.clone().unwrap_or_default();
        match next_maintenance(
            view,
            &self.core.maintenance_policy(),
            &done,
            etcd_operator_common::time::now(),
        ) {
            Maintenance::Nothing(reason) => {
                tracing::debug!(reason, "no maintenance");
                return Ok(out);
            }
            Maintenance::Defragment { member, .. } => {
                let d = Box::pin(self.defragment_member(r, &member)).await?;
                let mut record = done;
                remember(&mut record, &member, d);
                self.record_maintenance(r, &record).await?;
                let note = format!("{member} was fragmented: {} → {} bytes", d.before, d.after);
                self.health_event(r, EventType::Normal, "Defragmented", &note).await;
            }
            Maintenance::RecoverSpace { members } => {
                let revision =
                    view.members.iter().filter_map(|m| m.status.as_ref().ok()).map(|s| s.revision).max();
                let note = Box::pin(self.core.locked(r, async {
                    let endpoints: Vec<String> = members.iter().map(|(_, e)| e.clone()).collect();
                    let options = self.core.etcd_options(&self.core.get(r).await?).await?;
                    let client = EtcdClient::connect(&endpoints, options, self.core.etcd_metrics()).await?;
                    let revision = revision.unwrap_or_default();
                    // History is what fills a quota most often; compacting it frees pages for the defragmentation.
                    client.compact(revision).await?;
                    let mut record = done.clone();
                    let mut sizes = Vec::new();
                    for (member, endpoint) in &members {
                        let before = client.status(endpoint).await?.db_size;
                        client.defragment(endpoint).await?;
                        let after = client.status(endpoint).await?.db_size;
                        remember(&mut record, member, DefragmentOutcome { before, after });
                        sizes.push(format!("{member} {before} → {after} bytes"));
                    }
                    client.disarm_alarms().await?;
                    record.last_space_recovery = Some(now_rfc3339());
                    self.record_maintenance(r, &record).await?;
                    Ok(format!(
                        "NOSPACE: compacted to revision {revision}, defragmented {}, alarm disarmed",
                        sizes.join(", ")
                    ))
                }))
                .await?;
                tracing::info!("{note}");
                self.health_event(r, EventType::Warning, "SpaceRecovered", &note).await;
            }
        }
        self.core.current_status(r).await
    }

    /// Defragments one member, holding the cluster lock so no other change runs meanwhile.
    #[tracing::instrument(name = "DefragmentMember", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "DefragmentMember", member = %member))]
    pub async fn defragment_member(
        &self,
        r: &ClusterRef,
        member: &str,
    ) -> Result<DefragmentOutcome, ServiceError> {
        self.core
            .locked(r, async {
                let cluster = self.core.get(r).await?;
                crate::core::ensure_not_paused(&cluster)?;
                let observation = self.core.observe(&cluster).await?;
                may_defragment(&observation, member)?;
                // Its advertised URL: while the cluster moves between plaintext and TLS, its own scheme.
                let names = self.core.names_of(&cluster);
                let endpoint = match &observation.etcd {
                    crate::observe::EtcdState::Reached(view) => {
                        view.members.iter().find(|m| m.name() == member)
                    }
                    _ => None,
                }
                .map_or_else(|| names.client_url(member), |m| m.client_endpoint(&names));
                let options = self.core.etcd_options(&cluster).await?;
                let client =
                    EtcdClient::connect(std::slice::from_ref(&endpoint), options, self.core.etcd_metrics())
                        .await?;
                let before = client.status(&endpoint).await?.db_size;
                client.defragment(&endpoint).await?;
                let after = client.status(&endpoint).await?.db_size;
                tracing::info!(member, before, after, "defragmented");
                Ok(DefragmentOutcome { before, after })
            })
            .await
    }

    /// Writes `status.maintenance` as the health component (other status fields untouched).
    async fn record_maintenance(
        &self,
        r: &ClusterRef,
        record: &MaintenanceStatus,
    ) -> Result<(), ServiceError> {
        self.core.apply_status_field(r, component::HEALTH, serde_json::json!({ "maintenance": record })).await
    }

    async fn health_event(&self, r: &ClusterRef, type_: EventType, reason: &str, note: &str) {
        let Ok(cluster) = self.core.get(r).await else { return };
        let note = crate::events::Note { type_, reason, action: "Maintain", note };
        self.core.announce(&cluster, component::HEALTH, note).await;
    }
}

/// Keeps one record per member: the latest defragmentation.
fn remember(record: &mut MaintenanceStatus, member: &str, d: DefragmentOutcome) {
    record.defragmentations.retain(|r| r.member != member);
    record.defragmentations.push(DefragmentationRecord {
        member: member.into(),
        time: now_rfc3339(),
        before_bytes: d.before,
        after_bytes: d.after,
    });
    record.defragmentations.sort_by(|a, b| a.member.cmp(&b.member));
}
