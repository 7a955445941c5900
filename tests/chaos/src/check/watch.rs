//! A watcher's events against the clients' acknowledged writes.
//!
//! The health path compacts, so a watch resumed on another member can be told that the revisions
//! it asked for are gone; those ranges are recorded and not judged. Everything else the watcher
//! asked to see is judged against the writes to the workload's own keys, whose revisions the
//! clients know from etcd's answers.

use std::collections::{BTreeMap, BTreeSet};

use super::Anomaly;
use crate::{
    history::{Record, WatchLog},
    model::KvOp,
};

/// The prefix of the registers; other keys under the watched prefix (the runner's end marker)
/// are not the clients' writes.
pub const REGISTERS: &str = "chaos/reg/";

/// Anomalies of watcher `watcher`'s log.
pub fn check(watcher: usize, log: &WatchLog, records: &[Record]) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let mut previous = None;
    for e in &log.events {
        if let Some(after) = previous.filter(|p| e.revision <= *p) {
            found.push(Anomaly::WatchOutOfOrder { watcher, after, got: e.revision });
        }
        previous = Some(e.revision);
    }
    let events: BTreeMap<i64, (&str, Option<&str>)> =
        log.events.iter().map(|e| (e.revision, (e.key.as_str(), e.value.as_deref()))).collect();
    // Every acknowledged change it covered came, as it was made.
    let mut acked = BTreeMap::new();
    for r in records.iter().filter(|r| r.changed_store()) {
        let Some(revision) = r.revision else { continue };
        acked.insert(revision, (r.op.key(), r.op.written()));
        if !log.covers(revision) {
            continue;
        }
        match events.get(&revision) {
            None => found.push(Anomaly::WatchGap { watcher, revision, key: r.op.key().to_owned() }),
            Some(seen) if *seen != (r.op.key(), r.op.written()) => {
                found.push(Anomaly::WatchPhantom { watcher, revision, key: r.op.key().to_owned() })
            }
            Some(_) => {}
        }
    }
    // And nothing else: an event no acknowledged change explains must be of a write without an
    // answer (a put or transaction of that value, or a delete of that key).
    let unanswered: BTreeSet<(&str, Option<&str>)> = records
        .iter()
        .filter(|r| r.ret.is_none() && r.op.is_write())
        .map(|r| (r.op.key(), if matches!(r.op, KvOp::Delete { .. }) { None } else { r.op.written() }))
        .collect();
    for e in log.events.iter().filter(|e| e.key.starts_with(REGISTERS) && !acked.contains_key(&e.revision)) {
        if !unanswered.contains(&(e.key.as_str(), e.value.as_deref())) {
            found.push(Anomaly::WatchPhantom { watcher, revision: e.revision, key: e.key.clone() });
        }
    }
    found
}
