//! What a run saw, as it is kept beside a failed run: every client operation with its times and
//! the revisions etcd answered with, every watch event, and the acknowledged appends.

use porcupine_rs::Operation;
use serde::{Deserialize, Serialize};

use crate::model::{KvModel, KvOp};

/// One client operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The client that made it (its operations are sequential).
    pub client: u32,
    /// The member it was sent to.
    pub member: String,
    /// When it was sent, in nanoseconds since the workload started.
    pub call: i64,
    /// When its answer came; `None` for a write that got none (it may take effect at any later time).
    pub ret: Option<i64>,
    /// What it did and what it was told.
    pub op: KvOp,
    /// The revision in the answer's header: a write's own revision when it changed the store,
    /// else the store's revision when it was served.
    pub revision: Option<i64>,
    /// A get's key's `mod_revision` (the revision of the write it read).
    pub mod_revision: Option<i64>,
}

impl Record {
    /// Whether the answer says it changed the store (so `revision` is the write's own).
    pub fn changed_store(&self) -> bool {
        self.ret.is_some()
            && match &self.op {
                KvOp::Put { .. } => true,
                KvOp::Delete { deleted, .. } => *deleted == Some(true),
                KvOp::Cas { succeeded, .. } => *succeeded == Some(true),
                KvOp::Get { .. } => false,
            }
    }
}

/// A watch event as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// The revision of the write (`mod_revision`).
    pub revision: i64,
    /// The key.
    pub key: String,
    /// The value put; `None` for a delete.
    pub value: Option<String>,
}

/// What one watcher saw, resuming on another member each time its stream broke.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WatchLog {
    /// The revision it started from.
    pub start: i64,
    /// It saw everything up to here (the last revision it asked to resume after, less one).
    pub end: i64,
    /// Every event, in the order they came.
    pub events: Vec<WatchEvent>,
    /// Revision ranges (inclusive) a member said were compacted when the watch resumed: events
    /// there cannot be asked for, so they are not judged.
    pub compacted: Vec<(i64, i64)>,
    /// How many times the stream broke and resumed.
    pub resumed: u32,
}

impl WatchLog {
    /// Whether `revision` was in what it asked to see and not compacted away.
    pub fn covers(&self, revision: i64) -> bool {
        revision >= self.start
            && revision <= self.end
            && !self.compacted.iter().any(|(lo, hi)| (*lo..=*hi).contains(&revision))
    }
}

/// Everything a run's workload saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// The register clients' operations (failed reads are dropped: they say nothing).
    pub records: Vec<Record>,
    /// The append-only writer's acknowledged keys.
    pub acked: Vec<String>,
    /// What each watcher saw.
    pub watches: Vec<WatchLog>,
    /// The revision of the marker written after every client stopped (the watchers stop there).
    pub end: i64,
}

impl History {
    /// The operations porcupine checks. A write that got no answer stays open to the end,
    /// unless a watcher that saw every revision never saw its value: then it never took effect
    /// (etcd's robustness suite patches its histories the same way, so the search stays small).
    /// The watchers stop at a write made after every client stopped and every fault healed.
    pub fn operations(&self) -> Vec<Operation<KvModel>> {
        // A watcher that missed nothing: no compacted range, and it got as far as the marker.
        let complete = self.watches.iter().find(|w| w.compacted.is_empty() && w.end >= self.end);
        let seen: std::collections::BTreeSet<&str> = complete
            .map(|w| w.events.iter().filter_map(|e| e.value.as_deref()).collect())
            .unwrap_or_default();
        let read: std::collections::BTreeSet<&str> = self
            .records
            .iter()
            .filter_map(|r| match &r.op {
                KvOp::Get { value: Some(v), .. } => Some(v.as_str()),
                _ => None,
            })
            .collect();
        let never_applied = |r: &Record| {
            complete.is_some()
                && r.ret.is_none()
                && r.op.written().is_some_and(|v| !seen.contains(v) && !read.contains(v))
        };
        self.records
            .iter()
            .filter(|r| !never_applied(r))
            .map(|r| Operation {
                client_id: Some(r.client),
                call_time: r.call,
                return_time: r.ret.unwrap_or(i64::MAX),
                op: r.op.clone(),
                metadata: None,
            })
            .collect()
    }
}
