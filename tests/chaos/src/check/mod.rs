//! The checks of a run's history. Each finds anomalies; a run passes only with none.
//!
//! - [`linearizable`]: porcupine over the registers;
//! - [`register::check`]: the project's own check from the revisions etcd answered with
//!   (a read of a value never written, a read older than a write that had returned, a read
//!   that disagrees with the write at its revision);
//! - [`watch::check`]: every watcher saw every acknowledged write it covered, at its revision,
//!   in order, and nothing that was never written;
//! - [`lost_writes`]: every acknowledged append is in the cluster at the end.

pub mod register;
pub mod watch;

#[cfg(test)]
mod tests;

use std::{collections::BTreeSet, time::Duration};

use porcupine_rs::CheckResult;
use serde::Serialize;

use crate::{history::History, model::KvModel};

/// Something the cluster did that etcd's guarantees rule out (or a run that proves nothing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Anomaly {
    /// Porcupine found no linearization of these keys' operations.
    NotLinearizable { keys: Vec<String> },
    /// Porcupine ran out of time: the history is not proven either way.
    Inconclusive { limit_secs: u64 },
    /// A read returned a value no client wrote.
    NeverWritten { client: u32, key: String, value: String },
    /// An operation was served at a revision older than one an operation that had already
    /// returned was served at (or missed a write to its key that had returned).
    StaleRead { client: u32, key: String, revision: i64, newer: i64 },
    /// A read's value is not what the write at its `mod_revision` wrote.
    WrongValue { client: u32, key: String, revision: i64 },
    /// An acknowledged append is missing at the end.
    LostWrite { key: String },
    /// The appends could not be read at the end (no member served the read): whether any was
    /// lost is unknown, and the run fails for it.
    FinalReadFailed { reason: String },
    /// A watcher that covered this revision never got its event.
    WatchGap { watcher: usize, revision: i64, key: String },
    /// A watcher got revisions out of order or twice.
    WatchOutOfOrder { watcher: usize, after: i64, got: i64 },
    /// A watcher's event does not match the acknowledged write at its revision, or nothing wrote it.
    WatchPhantom { watcher: usize, revision: i64, key: String },
    /// The cluster did not get back to its spec within the bound.
    NotConverged { waited_secs: u64, last: String },
    /// Too few successful operations for the checks to mean anything.
    Vacuous { what: String },
}

/// Porcupine over the history's registers (a history it cannot finish in `limit` is reported).
pub fn linearizable(history: &History, limit: Duration, visualize: Option<&std::path::Path>) -> Vec<Anomaly> {
    let ops = history.operations();
    let (result, info) = porcupine_rs::check_operations_info_timeout::<KvModel>(&ops, limit);
    match result {
        CheckResult::Ok => Vec::new(),
        CheckResult::Unknown => vec![Anomaly::Inconclusive { limit_secs: limit.as_secs() }],
        CheckResult::Illegal => {
            if let Some(path) = visualize {
                let _ = porcupine_rs::visualize_path::<KvModel>(&info, path);
            }
            // Name the keys whose own operations fail (each key is a register of its own).
            let keys: BTreeSet<&str> = ops.iter().map(|o| o.op.key()).collect();
            let keys = keys
                .into_iter()
                .filter(|k| {
                    let mine: Vec<_> = ops.iter().filter(|o| o.op.key() == *k).cloned().collect();
                    porcupine_rs::check_operations_timeout::<KvModel>(&mine, limit) == CheckResult::Illegal
                })
                .map(str::to_owned)
                .collect();
            vec![Anomaly::NotLinearizable { keys }]
        }
    }
}

/// Acknowledged appends missing from `present` (the keys the cluster holds at the end).
pub fn lost_writes(acked: &[String], present: &BTreeSet<String>) -> Vec<Anomaly> {
    acked.iter().filter(|k| !present.contains(*k)).map(|k| Anomaly::LostWrite { key: k.clone() }).collect()
}

/// Every check of the history (all but the end state's, which needs the cluster).
pub fn history(history: &History, limit: Duration, visualize: Option<&std::path::Path>) -> Vec<Anomaly> {
    let mut found = register::check(&history.records);
    for (i, w) in history.watches.iter().enumerate() {
        found.extend(watch::check(i, w, &history.records));
    }
    found.extend(linearizable(history, limit, visualize));
    found
}

/// Counts that show a run was not vacuous.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Successful reads.
    pub reads: usize,
    /// Writes with an answer (puts, deletes, transactions).
    pub writes: usize,
    /// Writes without one.
    pub unanswered: usize,
    /// Acknowledged appends.
    pub appends: usize,
    /// Watch events, over every watcher.
    pub watch_events: usize,
    /// Members that served at least one successful operation.
    pub members: usize,
}

impl Counts {
    /// The counts of `history`.
    pub fn of(history: &History) -> Self {
        let answered = |r: &&crate::history::Record| r.ret.is_some();
        let members: BTreeSet<&str> =
            history.records.iter().filter(answered).map(|r| r.member.as_str()).collect();
        Self {
            reads: history.records.iter().filter(|r| !r.op.is_write()).count(),
            writes: history.records.iter().filter(|r| r.op.is_write()).filter(answered).count(),
            unanswered: history.records.iter().filter(|r| r.ret.is_none()).count(),
            appends: history.acked.len(),
            watch_events: history.watches.iter().map(|w| w.events.len()).sum(),
            members: members.len(),
        }
    }

    /// Anomalies when the run did too little to prove anything: fewer than `min` reads, writes,
    /// appends or watch events, or fewer than `members` members serving.
    pub fn vacuous(&self, min: usize, members: usize) -> Vec<Anomaly> {
        let mut found = Vec::new();
        for (what, n) in [
            ("reads", self.reads),
            ("writes", self.writes),
            ("appends", self.appends),
            ("watch events", self.watch_events),
        ] {
            if n < min {
                found.push(Anomaly::Vacuous { what: format!("only {n} {what} (at least {min})") });
            }
        }
        if self.members < members {
            found.push(Anomaly::Vacuous {
                what: format!("only {} members served (at least {members})", self.members),
            });
        }
        found
    }
}
