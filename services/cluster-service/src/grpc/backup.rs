//! BackupService over gRPC.

use etcd_operator_common::{Violations, cluster_ref::is_dns_label};
use etcd_operator_proto::v1alpha1::{self as pb, backup_service_server::BackupService as BackupRpc};
use etcd_operator_service::BackupService;
use tonic::{Request, Response, Status};

use super::{convert, status::to_status};
use crate::auth::{Auth, Rpc};

/// The gRPC face of the backup operations of the service layer.
#[derive(Clone)]
pub struct BackupApi {
    service: BackupService,
    auth: Auth,
}

impl BackupApi {
    /// Wraps the service layer; `auth` authorizes each call.
    pub fn new(service: BackupService, auth: Auth) -> Self {
        Self { service, auth }
    }
}

/// Checks a reference to a namespaced object (field `field`): a DNS-label namespace and a DNS-subdomain name.
fn object_ref(r: Option<&pb::BackupRef>, field: &str) -> Result<(String, String), Status> {
    let mut v = Violations::default();
    match r {
        None => v.push(field, "is required"),
        Some(r) => {
            v.check(is_dns_label(&r.namespace), format!("{field}.namespace"), "must be a DNS label");
            let subdomain = !r.name.is_empty() && r.name.len() <= 253 && r.name.split('.').all(is_dns_label);
            v.check(
                subdomain,
                format!("{field}.name"),
                "must be a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253 characters",
            );
        }
    }
    v.into_result().map_err(|v| to_status(v.into()))?;
    let r = r.expect("checked");
    Ok((r.namespace.clone(), r.name.clone()))
}

/// The snapshot stream of FetchRestoreSnapshot.
type ChunkStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

#[tonic::async_trait]
impl BackupRpc for BackupApi {
    type FetchRestoreSnapshotStream = ChunkStream;

    async fn fetch_restore_snapshot(
        &self,
        request: Request<pb::FetchRestoreSnapshotRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        use futures::StreamExt;
        let req = request.into_inner();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| to_status(v.into()))?;
        let out = self.service.restore_snapshot(&r, &req.member, &req.token).await.map_err(to_status)?;
        let h = out.header;
        let header = pb::SnapshotChunk {
            header: Some(pb::SnapshotHeader {
                sha256: h.sha256.unwrap_or_default(),
                size_bytes: h.size_bytes.unwrap_or_default(),
                revision: h.revision.unwrap_or_default(),
                source: h.source,
            }),
            data: Vec::new(),
        };
        let data = out.chunks.map(|c| {
            c.map(|data| pb::SnapshotChunk { header: None, data: data.to_vec() }).map_err(to_status)
        });
        Ok(Response::new(Box::pin(futures::stream::once(async { Ok(header) }).chain(data))))
    }

    async fn run_backup(
        &self,
        request: Request<pb::RunBackupRequest>,
    ) -> Result<Response<pb::RunBackupResponse>, Status> {
        let (namespace, name) = object_ref(request.get_ref().backup.as_ref(), "backup")?;
        self.auth.allow(&request, Rpc::RunBackup.on(&namespace, &name)).await?;
        let out = self.service.run_backup(&namespace, &name).await.map_err(to_status)?;
        let s = out.status;
        let message = etcd_operator_api::condition::find(&s.conditions, "Succeeded")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        Ok(Response::new(pb::RunBackupResponse {
            phase: format!("{:?}", s.phase),
            key: s.key.unwrap_or_default(),
            size_bytes: s.size_bytes.unwrap_or_default(),
            sha256: s.sha256.unwrap_or_default(),
            revision: s.revision.unwrap_or_default(),
            requeue: Some(convert::requeue(out.requeue_after)),
            location: s.location.unwrap_or_default(),
            attempts: s.attempts,
            message,
            progress: s.progress.map(|p| pb::TransferProgress {
                bytes: p.bytes,
                total_bytes: p.total_bytes.unwrap_or_default(),
                percent: p.percent.unwrap_or(-1),
                updated: p.updated,
                replica: p.replica,
            }),
        }))
    }

    async fn reconcile_schedule(
        &self,
        request: Request<pb::ReconcileScheduleRequest>,
    ) -> Result<Response<pb::ReconcileScheduleResponse>, Status> {
        let (namespace, name) = object_ref(request.get_ref().schedule.as_ref(), "schedule")?;
        self.auth.allow(&request, Rpc::ReconcileSchedule.on(&namespace, &name)).await?;
        let out = self.service.reconcile_schedule(&namespace, &name).await.map_err(to_status)?;
        Ok(Response::new(pb::ReconcileScheduleResponse {
            started_backup: out.started.unwrap_or_default(),
            active_backup: out.status.active.unwrap_or_default(),
            pruned: out.pruned,
            kept: out.status.kept_backups,
            next_schedule_time: out.status.next_schedule_time.unwrap_or_default(),
            requeue: Some(convert::requeue(Some(out.requeue_after))),
        }))
    }

    async fn create_backup(
        &self,
        request: Request<pb::CreateBackupRequest>,
    ) -> Result<Response<pb::Backup>, Status> {
        let req = request.get_ref();
        let (namespace, name) = object_ref(req.backup.as_ref(), "backup")?;
        let mut v = Violations::default();
        v.check(is_dns_label(&req.cluster_name), "cluster_name", "must name an EtcdCluster (a DNS label)");
        let storage = storage(&req.storage_json, &mut v);
        v.into_result().map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::CreateBackup.on(&namespace, &name)).await?;
        let cluster = etcd_operator_common::ClusterRef { namespace, name: req.cluster_name.clone() };
        let out = self
            .service
            .create_backup(&cluster, &name, storage.expect("checked"))
            .await
            .map_err(to_status)?;
        Ok(Response::new(backup_message(&out)))
    }

    async fn get_backup(
        &self,
        request: Request<pb::GetBackupRequest>,
    ) -> Result<Response<pb::Backup>, Status> {
        let (namespace, name) = object_ref(request.get_ref().backup.as_ref(), "backup")?;
        self.auth.allow(&request, Rpc::GetBackup.on(&namespace, &name)).await?;
        let out = self.service.get_backup(&namespace, &name).await.map_err(to_status)?;
        Ok(Response::new(backup_message(&out)))
    }

    async fn list_backups(
        &self,
        request: Request<pb::ListBackupsRequest>,
    ) -> Result<Response<pb::ListBackupsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::default();
        v.check(is_dns_label(&req.namespace), "namespace", "must be a DNS label");
        let cluster = (!req.cluster_name.is_empty()).then_some(req.cluster_name.as_str());
        v.into_result().map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::ListBackups.on(&req.namespace, "")).await?;
        let out = self.service.list_backups(&req.namespace, cluster).await.map_err(to_status)?;
        Ok(Response::new(pb::ListBackupsResponse { backups: out.iter().map(backup_message).collect() }))
    }

    async fn prune_backups(
        &self,
        request: Request<pb::PruneBackupsRequest>,
    ) -> Result<Response<pb::PruneBackupsResponse>, Status> {
        let (namespace, name) = object_ref(request.get_ref().schedule.as_ref(), "schedule")?;
        self.auth.allow(&request, Rpc::PruneBackups.on(&namespace, &name)).await?;
        let out = self.service.prune_backups(&namespace, &name).await.map_err(to_status)?;
        Ok(Response::new(pb::PruneBackupsResponse { deleted_backups: out.deleted, kept_backups: out.kept }))
    }
}

/// spec.storage from JSON (field `storage_json`); its rules are the service layer's.
fn storage(json: &str, v: &mut Violations) -> Option<etcd_operator_api::storage::BackupLocation> {
    serde_json::from_str(json)
        .map_err(|e| v.push("storage_json", format!("must be a JSON spec.storage object: {e}")))
        .ok()
}

/// An EtcdBackup as the API answers it.
fn backup_message(b: &etcd_operator_api::EtcdBackup) -> pb::Backup {
    use kube::ResourceExt;
    let s = b.status.clone().unwrap_or_default();
    let failing = s.conditions.iter().find(|c| c.status == etcd_operator_api::ConditionStatus::False);
    pb::Backup {
        backup: Some(pb::BackupRef { namespace: b.namespace().unwrap_or_default(), name: b.name_any() }),
        cluster_name: b.spec.cluster_name.clone(),
        phase: format!("{:?}", s.phase),
        location: s.location.unwrap_or_default(),
        size_bytes: s.size_bytes.unwrap_or_default(),
        sha256: s.sha256.unwrap_or_default(),
        revision: s.revision.unwrap_or_default(),
        created_at: b.creation_timestamp().map(|t| t.0.to_string()).unwrap_or_default(),
        completed_at: s.completion_time.unwrap_or_default(),
        attempts: s.attempts,
        progress_bytes: s.progress.as_ref().map(|p| p.bytes).unwrap_or_default(),
        progress_total_bytes: s.progress.as_ref().and_then(|p| p.total_bytes).unwrap_or_default(),
        message: failing.map(|c| c.message.clone()).unwrap_or_default(),
        schedule: etcd_operator_service::backup::schedule_of(b).unwrap_or_default(),
    }
}
