//! Bootstrapping a new cluster from a backup (EtcdCluster `spec.restore`).
//!
//! Before anything is created the source is resolved and the stored snapshot
//! is read whole and checked against its recorded sha256; a missing,
//! unfinished or corrupt backup stops here with a condition, and nothing is
//! started. Then a restore token is stored in a Secret and the StatefulSet is
//! created with the restore agent as init container: each member's agent
//! fetches the snapshot from the cluster-service (token required), checks the
//! sha256 again and restores its data directory with etcdutl. When the new
//! cluster has formed the token is deleted, so members added later start empty.

use std::sync::Arc;

use crate::core::Core;

use etcd_operator_api::{
    EtcdCluster,
    cluster::{RestorePhase, RestoreStatus},
};
use etcd_operator_client::ClientError;
use etcd_operator_common::time::now_rfc3339;
use etcd_operator_resource::templates::BootstrapConfig;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Resource, runtime::events::EventType};

pub mod decide;
mod source;
pub(crate) mod verify;

pub use source::ResolvedSource;
pub(crate) use source::Verification;

use crate::plan::{ApplyPlan, DesireInputs, desire};
use crate::refusal::Refusable;
use crate::status::StatusWrite;
use crate::{
    ServiceError,
    config::component,
    events::{Note, publish},
    observe::{EtcdState, Observation},
    restore::decide::{retained_claims, verify_restored},
};

/// Whether a restore is done.
pub(crate) enum Completion {
    /// Members are still restoring.
    Pending,
    /// Done and verified: the Completed record.
    Done(RestoreStatus),
    /// The members formed but serve data that was not restored: the record saying so.
    Wrong(RestoreStatus),
}

/// What the lifecycle may do with a cluster that has `spec.restore`.
pub(crate) enum RestoreGate {
    /// Not restored from a backup.
    NotRestoring,
    /// Create nothing yet, record this: the source is unusable, or still being verified.
    Wait(RestoreStatus),
    /// Go ahead (restoring, or done), recording this.
    Proceed(RestoreStatus),
}

/// Restoring: resolving and verifying a source, and preparing and finishing a restore.
#[derive(Clone)]
pub struct RestoreService {
    pub(crate) core: Arc<Core>,
}

impl RestoreService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

impl RestoreService {
    /// Decides (and prepares) the restore of a cluster that has `spec.restore`.
    pub(crate) async fn restore_gate(
        &self,
        cluster: &EtcdCluster,
        statefulset_exists: bool,
        observation: &Observation,
    ) -> Result<RestoreGate, ServiceError> {
        let previous = cluster.status.as_ref().and_then(|s| s.restore.clone());
        if cluster.spec.restore.is_none() {
            // A restart from the stop snapshot is driven by scaling; the lifecycle only finishes it.
            return match previous {
                Some(p) if p.phase == RestorePhase::Restoring && statefulset_exists => {
                    self.restoring(cluster, p, observation).await
                }
                Some(p) => Ok(RestoreGate::Proceed(p)),
                None => Ok(RestoreGate::NotRestoring),
            };
        }
        match previous {
            Some(p) if p.phase == RestorePhase::Completed => return Ok(RestoreGate::Proceed(p)),
            Some(p) if p.phase == RestorePhase::Restoring && statefulset_exists => {
                return self.restoring(cluster, p, observation).await;
            }
            _ => {}
        }
        let resolved = match self.resolve_restore_source(cluster).await? {
            Refusable::Usable(r) => r,
            Refusable::Refused(refusal) => return Ok(RestoreGate::Wait(refusal)),
        };
        let status = match self.verify_source(&resolved).await? {
            Verification::Verified(status) => status,
            Verification::Refused(status) | Verification::Verifying(status) => {
                return Ok(RestoreGate::Wait(status));
            }
        };
        if !statefulset_exists && let Some(refusal) = self.retained_claims_check(cluster, &status).await? {
            return Ok(RestoreGate::Wait(refusal));
        }
        self.ensure_restore_token(cluster).await?;
        Ok(RestoreGate::Proceed(status))
    }

    /// Before a restore creates anything: claims an earlier cluster of this name left would be
    /// started on, so the restore is refused naming them, or they are deleted first when
    /// `spec.restore.clearRetainedClaims` says so.
    async fn retained_claims_check(
        &self,
        cluster: &EtcdCluster,
        status: &RestoreStatus,
    ) -> Result<Option<RestoreStatus>, ServiceError> {
        let r = crate::core::cluster_ref(cluster);
        let claims = self.core.live_claims(&r).await?;
        let clear = cluster.spec.restore.as_ref().is_some_and(|s| s.clear_retained_claims);
        let Err((reason, message)) = retained_claims(&r.name, &r.namespace, &claims, clear) else {
            return Ok(None);
        };
        if clear {
            let pvcs = self.core.managers(&r.namespace).pvcs;
            for claim in &claims {
                pvcs.delete(claim).await?;
            }
        }
        Ok(Some(source::refused(&status.source, reason, message)))
    }

    /// While members restore: done once the new cluster formed.
    async fn restoring(
        &self,
        cluster: &EtcdCluster,
        status: RestoreStatus,
        observation: &Observation,
    ) -> Result<RestoreGate, ServiceError> {
        Ok(RestoreGate::Proceed(match self.complete_restore(cluster, &status, observation).await? {
            Completion::Done(done) | Completion::Wrong(done) => done,
            Completion::Pending => status,
        }))
    }

    /// Once every member the StatefulSet runs is a healthy voter of the new cluster, and it serves
    /// what was restored (a new cluster ID, no lower revision): deletes the token (members added
    /// later start empty and join), and returns the Completed record.
    pub(crate) async fn complete_restore(
        &self,
        cluster: &EtcdCluster,
        status: &RestoreStatus,
        observation: &Observation,
    ) -> Result<Completion, ServiceError> {
        let EtcdState::Reached(view) = &observation.etcd else { return Ok(Completion::Pending) };
        let replicas = observation.statefulset.as_ref().map_or(0, |s| s.replicas);
        let all_voting = replicas > 0
            && view.members.len() as i32 == replicas
            && view.members.iter().all(|m| m.healthy() && !m.info.is_learner);
        if status.phase != RestorePhase::Restoring || !all_voting {
            return Ok(Completion::Pending);
        }
        let serving_revision =
            view.members.iter().filter_map(|m| m.status.as_ref().ok()).map(|s| s.revision).max();
        if let Err(why) = verify_restored(
            status.source_cluster_id.as_deref(),
            status.revision,
            &format!("{:x}", view.cluster_id),
            serving_revision,
        ) {
            // Never Completed over old data; the token stays, nothing more is started.
            tracing::error!(why, "the restore did not take");
            let mut wrong = status.clone();
            wrong.reason = "NotRestored".into();
            wrong.message = format!(
                "{why}. Delete this EtcdCluster and its claims, then create it again with spec.restore"
            );
            return Ok(Completion::Wrong(wrong));
        }
        let r = crate::core::cluster_ref(cluster);
        self.core.managers(&r.namespace).secrets.delete(&self.core.names(&r).restore_secret()).await?;
        let mut status = status.clone();
        status.phase = RestorePhase::Completed;
        status.reason = "Completed".into();
        status.completed_at = Some(now_rfc3339());
        status.message = format!(
            "restored from {} (revision {}, taken {}); cluster ID {:x}",
            status.source,
            status.revision.map_or_else(|| "unknown".into(), |r| r.to_string()),
            status.taken_at.clone().unwrap_or_else(|| "at an unknown time".into()),
            view.cluster_id
        );
        let note =
            Note { type_: EventType::Normal, reason: "Restored", action: "Restore", note: &status.message };
        publish(self.core.kube(), component::LIFECYCLE, self.core.identity(), &cluster.object_ref(&()), note)
            .await;
        Ok(Completion::Done(status))
    }

    /// For a step that needs the restore behind it: completes and records a restore still
    /// `Restoring`; `false` while members are still restoring. Nothing to do without one.
    pub(crate) async fn finish_restore(
        &self,
        cluster: &EtcdCluster,
        restore: Option<&RestoreStatus>,
        observation: &Observation,
    ) -> Result<bool, ServiceError> {
        let Some(restoring) = restore.filter(|r| r.phase == RestorePhase::Restoring) else { return Ok(true) };
        let (done, finished) = match Box::pin(self.complete_restore(cluster, restoring, observation)).await? {
            Completion::Pending => return Ok(false),
            Completion::Wrong(wrong) => (wrong, false),
            Completion::Done(done) => (done, true),
        };
        let (check, proceed) = (Ok(()), crate::plan::RolloutDecision::Proceed);
        let write = StatusWrite::new(cluster, &check, &proceed).restore(Some(&done));
        Box::pin(self.core.write_status(cluster, observation, write)).await?;
        Ok(finished)
    }

    /// RestartFromZero without claims: restore every member from the stop snapshot.
    pub(crate) async fn prepare_snapshot_restore(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
    ) -> Result<(), ServiceError> {
        let resolved = self.stop_snapshot_source(cluster)?;
        self.prepare_restore(
            cluster,
            observation,
            &resolved,
            None,
            "every claim is gone: members restore from the stop snapshot",
        )
        .await
    }

    /// Verifies the source once more, creates the token, records the restore (as the lifecycle,
    /// which owns status.restore) and puts the agent in the pod template; with `bootstrap`, the
    /// members restore as that new cluster.
    pub(crate) async fn prepare_restore(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        resolved: &ResolvedSource,
        bootstrap: Option<BootstrapConfig>,
        why: &str,
    ) -> Result<(), ServiceError> {
        let mut restore = match self.verify_source(resolved).await? {
            Verification::Verified(status) => status,
            Verification::Refused(refusal) => return Err(ServiceError::FailedPrecondition(refusal.message)),
            // Not an error: the step is retried until the reading task has finished.
            Verification::Verifying(status) => return Err(ServiceError::Aborted(status.message)),
        };
        self.ensure_restore_token(cluster).await?;
        restore.message = format!("{why} ({} bytes verified)", restore.size_bytes.unwrap_or_default());
        let check = Ok(());
        let proceed = crate::plan::RolloutDecision::Proceed;
        let write = StatusWrite::new(cluster, &check, &proceed).restore(Some(&restore));
        self.core.write_status(cluster, observation, write).await?;
        // The pod template gains the restore agent before any member starts.
        let mut updated = cluster.clone();
        updated.status.get_or_insert_with(Default::default).restore = Some(restore);
        let r = crate::core::cluster_ref(cluster);
        let names = self.core.names(&r);
        let m = self.core.managers(&r.namespace);
        let existing_cm = m.config_maps.get(&names.config_map()).await?;
        let existing_sts = m.statefulsets.get(&names.statefulset()).await?;
        // No member runs yet: the pods start only once the agent is in their template.
        let new_bootstrap = bootstrap.is_some();
        let desired = desire(&DesireInputs {
            ctx: &self.core.template(&updated),
            cluster: &updated,
            existing: (existing_sts.as_ref(), existing_cm.as_ref()),
            observation,
            fixed: bootstrap.map(|bootstrap| ApplyPlan { replicas: 0, bootstrap }),
        })?;
        let desired = desired.usable().map_err(|v| {
            ServiceError::FailedPrecondition(format!("the restore cannot start: the spec breaks rules: {v}"))
        })?;
        if new_bootstrap {
            m.config_maps.apply(&desired.config_map).await?;
        }
        if let Some(ca) = &desired.api_ca {
            m.config_maps.apply(ca).await?;
        }
        m.statefulsets.update(&desired.statefulset).await?;
        Ok(())
    }

    /// Creates the restore token Secret once (owned by the cluster).
    pub(crate) async fn ensure_restore_token(&self, cluster: &EtcdCluster) -> Result<(), ServiceError> {
        let r = crate::core::cluster_ref(cluster);
        let name = self.core.names(&r).restore_secret();
        let secrets = self.core.managers(&r.namespace).secrets;
        if secrets.get(&name).await?.is_some() {
            return Ok(());
        }
        let mut token = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").map_err(ClientError::from)?,
            &mut token,
        )
        .map_err(ClientError::from)?;
        let ctx = self.core.template(cluster);
        let secret = Secret {
            metadata: ctx.metadata(name, "Secret")?,
            data: Some([("token".to_owned(), ByteString(hex::encode(token).into_bytes()))].into()),
            ..Secret::default()
        };
        secrets.apply(&secret).await?;
        Ok(())
    }

    /// The restore token of a cluster, if a restore is in progress.
    pub(crate) async fn restore_token(&self, cluster: &EtcdCluster) -> Result<Option<String>, ServiceError> {
        let r = crate::core::cluster_ref(cluster);
        let secret =
            self.core.managers(&r.namespace).secrets.get(&self.core.names(&r).restore_secret()).await?;
        Ok(secret
            .and_then(|s| s.data)
            .and_then(|d| d.get("token").cloned())
            .and_then(|t| String::from_utf8(t.0).ok()))
    }
}
