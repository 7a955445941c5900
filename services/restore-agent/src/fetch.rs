//! Fetching the snapshot from the cluster-service, checking it on the way.

use std::{path::Path, time::Duration};

use etcd_operator_proto::v1alpha1::{self as pb, backup_service_client::BackupServiceClient};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::Args;

/// Streams the snapshot into `to` and checks its size and sha256 against the header.
pub async fn fetch(args: &Args, to: &Path) -> Result<pb::SnapshotHeader, String> {
    // The operator chose the scheme: plaintext only when it runs --insecure.
    let channel = etcd_operator_proto::endpoint::api(&args.endpoint, args.ca_file.as_deref(), true)
        .map_err(|e| format!("--{e}"))?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connecting to the cluster-service at {}: {e}", args.endpoint))?;
    let mut client = BackupServiceClient::new(channel).max_decoding_message_size(8 << 20);
    let request = pb::FetchRestoreSnapshotRequest {
        cluster: Some(pb::ClusterRef { namespace: args.namespace.clone(), name: args.cluster.clone() }),
        member: args.member.clone(),
        token: args.token.clone(),
    };
    let mut stream = client
        .fetch_restore_snapshot(request)
        .await
        .map_err(|s| format!("FetchRestoreSnapshot: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    let idle = args.read_idle_timeout;
    let mut next = async || {
        let read = tokio::time::timeout(idle, stream.message()).await.map_err(|_| {
            format!(
                "the snapshot stream from {} stalled: nothing arrived for {idle:?} (--read-idle-timeout); giving up so the member's start is retried",
                args.endpoint
            )
        })?;
        read.map_err(|s| format!("reading the snapshot: {}", s.message()))
    };
    let first = next().await?;
    let header = first.and_then(|c| c.header).ok_or("the cluster-service sent no header")?;
    let mut file = tokio::fs::File::create(to).await.map_err(|e| format!("{}: {e}", to.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = next().await? {
        hasher.update(&chunk.data);
        size += chunk.data.len() as u64;
        file.write_all(&chunk.data).await.map_err(|e| format!("{}: {e}", to.display()))?;
    }
    file.sync_all().await.map_err(|e| format!("{}: {e}", to.display()))?;
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != header.sha256 || (header.size_bytes > 0 && size != header.size_bytes as u64) {
        return Err(format!(
            "the snapshot arrived as {size} bytes with sha256 {sha256}, expected {} bytes with sha256 {}",
            header.size_bytes, header.sha256
        ));
    }
    Ok(header)
}
