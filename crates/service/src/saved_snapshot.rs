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

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use etcd_operator_api::cluster::SnapshotRecord;
use etcd_operator_client::{
    storage::ObjectStorage,
    transfer::{Transferred, forward},
};
use etcd_operator_resource::managers::snapshot_lock_name;
use tokio::sync::watch;

use crate::{ClusterService, ServiceError, call_budget};

/// How long a call waits for the snapshot at most, deadline allowing.
const IN_CALL_WAIT: Duration = Duration::from_secs(20);

#[derive(Clone, Debug, Default)]
struct SaveState {
    streamed: Transferred,
    done: Option<Result<SnapshotRecord, ServiceError>>,
}

/// This replica's snapshot tasks, by key.
#[derive(Clone, Default)]
pub(crate) struct SavedSnapshots(Arc<Mutex<HashMap<String, watch::Receiver<SaveState>>>>);

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

impl ClusterService {
    /// The snapshot of the member at `endpoint` saved and verified under `key`: at once when
    /// saved before (by any replica), else once this replica's task has saved it; ABORTED
    /// ("retry") with how far it is when that takes longer than the call can wait.
    pub(crate) async fn save_snapshot(
        &self,
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
        let mut state = self.start_or_join_save(namespace, cluster, endpoint, key, store);
        let wait = call_budget::wait_for_task(IN_CALL_WAIT);
        let _ = tokio::time::timeout(wait, state.wait_for(|s| s.done.is_some())).await;
        let now = state.borrow().clone();
        match now.done {
            Some(result) => result,
            None => {
                let Transferred { bytes, total } = now.streamed;
                let of = total.map_or_else(String::new, |t| format!(" of {t}"));
                Err(ServiceError::Aborted(format!(
                    "saving a snapshot of {endpoint} as {key}: {bytes}{of} bytes so far; the step goes on when it is saved"
                )))
            }
        }
    }

    fn start_or_join_save(
        &self,
        namespace: &str,
        cluster: &str,
        endpoint: &str,
        key: &str,
        store: ObjectStorage,
    ) -> watch::Receiver<SaveState> {
        let mut table = self.saved_snapshots.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = table.get(key) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(SaveState::default());
        table.insert(key.to_owned(), rx.clone());
        let (this, namespace, lease) = (self.clone(), namespace.to_owned(), snapshot_lock_name(cluster));
        let (endpoint, key, what) = (endpoint.to_owned(), key.to_owned(), format!("the snapshot {key}"));
        tokio::spawn(async move {
            let _forget = Forget(this.saved_snapshots.clone(), key.clone());
            let (progress, seen) = watch::channel(Transferred::default());
            let work = async {
                // Another replica may have finished it before this one got the Lease.
                if let Some(record) = recorded(&store, &key).await? {
                    return Ok(record);
                }
                let record = this.snapshot_to_store(&endpoint, &key, &progress).await?;
                let json = serde_json::to_vec(&record).map_err(|e| ServiceError::Internal(e.to_string()))?;
                // Written last: its presence says the snapshot is complete and verified.
                store.put(&record_key(&key), json).await?;
                Ok(record)
            };
            let held = crate::lease::hold(&this.lock, &namespace, &lease, &what, work);
            let result = forward(held, seen, |streamed| tx.send_modify(|s| s.streamed = streamed)).await;
            tx.send_modify(|s| s.done = Some(result));
        });
        rx
    }
}

/// Removes a finished task from the replica's table when dropped.
struct Forget(SavedSnapshots, String);

impl Drop for Forget {
    fn drop(&mut self) {
        (self.0).0.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.1);
    }
}
