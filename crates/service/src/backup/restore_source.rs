//! Serving a restore: the verified snapshot streamed to the restore agents of
//! a cluster being bootstrapped from a backup, against its restore token.

use bytes::Bytes;
use etcd_operator_api::cluster::{RestorePhase, RestoreStatus};
use etcd_operator_common::ClusterRef;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};

use super::BackupService;
use crate::ServiceError;

/// Largest piece handed to the transport (gRPC messages stay well under 4 MiB).
const MAX_CHUNK: usize = 1 << 20;

/// A snapshot on its way to a restore agent.
pub struct RestoreStream {
    /// What it is: source, sha256, size and revision as verified.
    pub header: RestoreStatus,
    /// Its bytes.
    pub chunks: BoxStream<'static, Result<Bytes, ServiceError>>,
}

impl BackupService {
    /// Streams the snapshot cluster `r` is being restored from, to member `member` presenting `token`.
    #[tracing::instrument(name = "FetchRestoreSnapshot", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, member, operation = "FetchRestoreSnapshot"))]
    pub async fn restore_snapshot(
        &self,
        r: &ClusterRef,
        member: &str,
        token: &str,
    ) -> Result<RestoreStream, ServiceError> {
        let cluster = self
            .core
            .find(r)
            .await?
            .ok_or_else(|| ServiceError::NotFound { kind: "EtcdCluster", name: r.to_string() })?;
        let header = cluster.status.as_ref().and_then(|s| s.restore.clone());
        let Some(header) = header.filter(|h| h.phase == RestorePhase::Restoring) else {
            return Err(ServiceError::FailedPrecondition(format!("EtcdCluster {r} is not being restored")));
        };
        let expected = self.restore.restore_token(&cluster).await?.ok_or_else(|| {
            ServiceError::FailedPrecondition(format!(
                "EtcdCluster {r} has no restore token (restore finished?)"
            ))
        })?;
        if !same(token.as_bytes(), expected.as_bytes()) {
            return Err(ServiceError::PermissionDenied(format!("wrong restore token for EtcdCluster {r}")));
        }
        let resolved = self
            .restore
            .resolve_restore_source(&cluster)
            .await?
            .usable()
            .map_err(|refusal| ServiceError::FailedPrecondition(refusal.message))?;
        tracing::info!(member, source = header.source, "streaming the restore snapshot");
        let chunks = resolved
            .storage
            .read(&resolved.key)
            .await?
            .map_err(ServiceError::from)
            .flat_map(|chunk| {
                let pieces: Vec<Result<Bytes, ServiceError>> = match chunk {
                    Ok(bytes) => (0..bytes.len())
                        .step_by(MAX_CHUNK)
                        .map(|at| Ok(bytes.slice(at..(at + MAX_CHUNK).min(bytes.len()))))
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(pieces)
            })
            .boxed();
        Ok(RestoreStream { header, chunks })
    }
}

/// Compares secrets without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
