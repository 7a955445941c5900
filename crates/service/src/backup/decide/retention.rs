//! Which scheduled backups to keep. Pure.

use std::time::Duration;

use chrono::{DateTime, Utc};
use etcd_operator_api::backup::BackupPhase;

/// Failed backups kept for inspection, newest first.
pub const FAILED_KEPT: usize = 3;

/// One backup a schedule made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupEntry {
    /// EtcdBackup name.
    pub name: String,
    /// Its phase.
    pub phase: BackupPhase,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it succeeded.
    pub completed: Option<DateTime<Utc>>,
}

/// The outcome of applying a retention policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Successful backups kept, newest first.
    pub kept: Vec<String>,
    /// Backups to delete (stored data first, then the object).
    pub expired: Vec<String>,
}

/// Keeps at most `max_count` successful backups, none older than `max_age`,
/// but never the newest successful one; keeps the newest failed ones; never
/// touches a backup in progress.
pub fn apply(
    entries: &[BackupEntry],
    max_count: usize,
    max_age: Option<Duration>,
    now: DateTime<Utc>,
) -> Retention {
    let mut succeeded: Vec<&BackupEntry> =
        entries.iter().filter(|e| e.phase == BackupPhase::Succeeded).collect();
    succeeded.sort_by_key(|e| std::cmp::Reverse((e.completed.unwrap_or(e.created), e.name.clone())));
    let mut out = Retention::default();
    for (i, e) in succeeded.iter().enumerate() {
        let age = (now - e.completed.unwrap_or(e.created)).to_std().unwrap_or_default();
        let too_old = max_age.is_some_and(|max| age > max);
        if i == 0 || (i < max_count.max(1) && !too_old) {
            out.kept.push(e.name.clone());
        } else {
            out.expired.push(e.name.clone());
        }
    }
    let mut failed: Vec<&BackupEntry> = entries.iter().filter(|e| e.phase == BackupPhase::Failed).collect();
    failed.sort_by_key(|e| std::cmp::Reverse((e.created, e.name.clone())));
    out.expired.extend(failed.iter().skip(FAILED_KEPT).map(|e| e.name.clone()));
    out
}
