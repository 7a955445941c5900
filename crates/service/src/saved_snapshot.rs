//! Snapshots the operator saves for itself (a stopping cluster's data, a
//! quorum-loss survivor's data) as tasks, so a database larger than a call's
//! deadline is saved all the same.
//!
//! The key is fixed by the operation (its start time), so every call of the
//! step asks for the same snapshot. The task holds the cluster's snapshot
//! Lease while it streams and verifies, then writes `<key>.json` (the record)
//! last: any replica that finds the record has the verified snapshot; one that
//! finds the Lease held answers "being saved by <holder>"; if the saving
//! replica dies, the Lease expires and the next call starts over.

use std::sync::Arc;

use etcd_operator_api::cluster::SnapshotRecord;
use etcd_operator_client::{etcd::EtcdClient, storage::ObjectStorage, transfer::Transferred};
use etcd_operator_common::time::now_rfc3339;
use etcd_operator_resource::managers::snapshot_lock_name;

use crate::{ServiceError, core::Core, tasks};
use etcd_operator_common::ClusterRef;

/// The key of the snapshot `purpose` of an operation that started at `started_at`.
pub(crate) fn snapshot_key(namespace: &str, cluster: &str, purpose: &str, started_at: &str) -> String {
    format!("{namespace}/{cluster}/{purpose}-{}.db", started_at.replace(':', ""))
}

fn record_key(key: &str) -> String {
    format!("{key}.json")
}

async fn recorded(store: &ObjectStorage, key: &str) -> Result<Option<SnapshotRecord>, ServiceError> {
    let Some(bytes) = store.get(&record_key(key)).await? else { return Ok(None) };
    let record: SnapshotRecord = serde_json::from_slice(&bytes)
        .map_err(|e| ServiceError::Internal(format!("{}: {e}", record_key(key))))?;
    Ok(Some(record).filter(|r| r.location == key))
}

impl Core {
    /// The snapshot of the member at `endpoint` saved and verified under `key`: at once when
    /// saved before (by any replica), else once this replica's task has saved it; ABORTED
    /// ("retry") with how far it is when that takes longer than the call can wait.
    pub(crate) async fn save_snapshot(
        self: &Arc<Self>,
        namespace: &str,
        cluster: &str,
        endpoint: &str,
        key: &str,
    ) -> Result<SnapshotRecord, ServiceError> {
        let store = self
            .snapshot_store()
            .ok_or_else(|| ServiceError::FailedPrecondition("no snapshot storage".into()))?;
        if let Some(record) = recorded(&store, key).await? {
            return Ok(record);
        }
        let lease = snapshot_lock_name(cluster);
        let source =
            self.get(&ClusterRef { namespace: namespace.to_owned(), name: cluster.to_owned() }).await?;
        let options = self.etcd_options(&source).await?;
        let (this, namespace, endpoint_owned, key_owned) =
            (Arc::clone(self), namespace.to_owned(), endpoint.to_owned(), key.to_owned());
        let running = self.saved_snapshots.start_or_join(key, |progress| async move {
            let what = format!("the snapshot {key_owned}");
            let work = async {
                // Another replica may have finished it before this one got the Lease.
                if let Some(record) = recorded(&store, &key_owned).await? {
                    return Ok(record);
                }
                let record = this.snapshot_to_store(&endpoint_owned, options, &key_owned, &progress).await?;
                let json = serde_json::to_vec(&record)?;
                // Written last: its presence says the snapshot is complete and verified.
                store.put(&record_key(&key_owned), json).await?;
                Ok(record)
            };
            crate::lease::hold(&this.lock, &namespace, &lease, &what, work).await
        });
        let now = tasks::wait(running).await;
        match now.done {
            Some(result) => result,
            None => {
                let Transferred { bytes, total } = now.progress;
                let of = total.map_or_else(String::new, |t| format!(" of {t}"));
                Err(ServiceError::Aborted(format!(
                    "saving a snapshot of {endpoint} as {key}: {bytes}{of} bytes so far; the step goes on when it is saved"
                )))
            }
        }
    }

    /// Streams a snapshot of the member at `endpoint` to snapshot storage under `key` and reads
    /// it back: the record once size and sha256 match what etcd streamed. Needs no leader.
    pub(crate) async fn snapshot_to_store(
        &self,
        endpoint: &str,
        options: etcd_operator_client::etcd::EtcdOptions,
        key: &str,
        progress: &etcd_operator_client::transfer::Progress,
    ) -> Result<SnapshotRecord, ServiceError> {
        let store = self
            .snapshot_store()
            .ok_or_else(|| ServiceError::FailedPrecondition("no snapshot storage".into()))?;
        let taken_at = now_rfc3339();
        let client = EtcdClient::connect(&[endpoint.to_owned()], options, self.etcd_metrics()).await?;
        let mut out = store.writer(key)?;
        let info = match client.snapshot_with_progress(endpoint, &mut out, progress).await {
            Ok(info) => info,
            Err(e) => {
                out.abort().await;
                return Err(e.into());
            }
        };
        out.commit().await?;
        let (size, hex) = store.digest(key).await?;
        if hex != info.sha256 || size != info.size_bytes {
            return Err(ServiceError::Internal(format!(
                "snapshot {key} did not verify: stored {size} bytes with sha256 {hex}, streamed {} bytes with sha256 {}",
                info.size_bytes, info.sha256
            )));
        }
        tracing::info!(key, size = info.size_bytes, revision = info.revision, "snapshot stored and verified");
        Ok(SnapshotRecord {
            location: key.to_owned(),
            sha256: info.sha256,
            size_bytes: info.size_bytes as i64,
            revision: info.revision,
            taken_at,
        })
    }
}
