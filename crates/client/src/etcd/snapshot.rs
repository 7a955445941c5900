//! Snapshots streamed from one member: hashed on the way, etcd's own trailing
//! checksum verified, progress published after every chunk.

use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{EtcdClient, SnapshotInfo, outcome};
use crate::{
    ClientError,
    transfer::{Progress, Transferred},
};

impl EtcdClient {
    /// Streams a snapshot from the member at `endpoint` into `out`, hashing it on the way.
    pub async fn snapshot<W>(&self, endpoint: &str, out: &mut W) -> Result<SnapshotInfo, ClientError>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        self.snapshot_with_progress(endpoint, out, &Progress::default()).await
    }

    /// [`EtcdClient::snapshot`], publishing the bytes streamed (and the total, from what etcd
    /// says remains) after every chunk.
    pub async fn snapshot_with_progress<W>(
        &self,
        endpoint: &str,
        out: &mut W,
        progress: &Progress,
    ) -> Result<SnapshotInfo, ClientError>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        let started = Instant::now();
        let streamed = self.stream_snapshot(endpoint, out, progress);
        let result = tokio::time::timeout(self.options.snapshot_timeout, streamed).await.unwrap_or(Err(
            ClientError::Timeout { operation: "snapshot", timeout: self.options.snapshot_timeout },
        ));
        self.metrics.observe("snapshot", outcome(&result), started);
        result
    }

    async fn stream_snapshot<W>(
        &self,
        endpoint: &str,
        out: &mut W,
        progress: &Progress,
    ) -> Result<SnapshotInfo, ClientError>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        let status = self.status(endpoint).await?;
        let mut c = self.member_client(endpoint).await?;
        let mut stream = c.snapshot().await.map_err(|e| ClientError::from_etcd(endpoint, None, e))?;
        let mut hasher = Sha256::new();
        let mut trailer = TrailerCheck::default();
        let mut size = 0u64;
        while let Some(chunk) =
            stream.message().await.map_err(|e| ClientError::from_etcd(endpoint, None, e))?
        {
            hasher.update(chunk.blob());
            trailer.update(chunk.blob());
            size += chunk.blob().len() as u64;
            out.write_all(chunk.blob()).await?;
            let total = Some(size + chunk.remaining_bytes());
            progress.send_replace(Transferred { bytes: size, total });
            crate::transfer::test_pace().await;
        }
        out.flush().await?;
        if size == 0 {
            return Err(ClientError::Etcd(format!("empty snapshot from {endpoint}")));
        }
        if !trailer.verify() {
            return Err(ClientError::Etcd(format!(
                "snapshot from {endpoint} is corrupt: its trailing sha256 does not match its content"
            )));
        }
        Ok(SnapshotInfo {
            size_bytes: size,
            sha256: hex::encode(hasher.finalize()),
            revision: status.revision,
            member_id: status.member_id,
            etcd_version: status.version,
        })
    }
}

/// etcd appends the sha256 of the database to every snapshot stream; this
/// checks it on the way, so a snapshot damaged in transit is never stored.
#[derive(Default)]
struct TrailerCheck {
    body: Sha256,
    tail: Vec<u8>,
}

impl TrailerCheck {
    const LEN: usize = 32;

    fn update(&mut self, chunk: &[u8]) {
        // Everything but the last 32 bytes seen so far is database content.
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > Self::LEN {
            let body = self.tail.len() - Self::LEN;
            self.body.update(&self.tail[..body]);
            self.tail.drain(..body);
        }
    }

    fn verify(self) -> bool {
        self.tail.len() == Self::LEN && self.body.finalize().as_slice() == self.tail.as_slice()
    }
}
