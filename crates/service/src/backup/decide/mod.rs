//! What to do next with one EtcdBackup. Pure.

pub mod endpoint;
pub mod retention;
pub mod schedule;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Utc};
use etcd_operator_api::{EtcdBackupStatus, backup::BackupPhase};

use crate::observe::{EtcdState, MemberView};

/// Attempts before a backup is marked Failed.
pub const MAX_ATTEMPTS: i32 = 5;

/// Wait after the `attempts`-th failed attempt: 10 s, doubling, at most 5 min.
pub fn retry_delay(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 6) as u32 - 1;
    Duration::from_secs(10 * 2u64.pow(exp)).min(Duration::from_secs(300))
}

/// The source cluster as the backup sees it.
#[derive(Clone, Debug)]
pub enum SourceCluster {
    /// No EtcdCluster of that name.
    Missing,
    /// The cluster is stopped (size 0) or has no members yet.
    NotRunning,
    /// What etcd reported.
    Etcd(EtcdState),
}

/// A member a snapshot can be streamed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Member (pod) name.
    pub member: String,
    /// Its client URL.
    pub endpoint: String,
    /// Cluster ID (hex).
    pub cluster_id: String,
}

/// The next step of a backup.
#[derive(Clone, Debug, PartialEq)]
pub enum BackupStep {
    /// Succeeded or Failed already: nothing to do.
    Finished,
    /// Backing off after a failed attempt.
    Wait {
        /// Time left.
        after: Duration,
    },
    /// Take the snapshot (attempt number `attempt`).
    Take {
        /// Where from.
        source: Source,
        /// Number of this attempt.
        attempt: i32,
    },
    /// This attempt cannot start; count it and retry later.
    Retry {
        /// Condition reason.
        reason: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Give up.
    Fail {
        /// Condition reason.
        reason: &'static str,
        /// Why.
        message: String,
    },
}

/// Decides the next step from the backup's status and its cluster, at `now`.
pub fn next_step(status: &EtcdBackupStatus, cluster: &SourceCluster, now: DateTime<Utc>) -> BackupStep {
    if matches!(status.phase, BackupPhase::Succeeded | BackupPhase::Failed) {
        return BackupStep::Finished;
    }
    if status.attempts >= MAX_ATTEMPTS {
        let last = etcd_operator_api::condition::find(&status.conditions, "Succeeded")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        return BackupStep::Fail {
            reason: "AttemptsExhausted",
            message: format!("gave up after {} attempts; last: {last}", status.attempts),
        };
    }
    if status.attempts > 0 {
        let last = status.last_attempt_time.as_deref().and_then(|t| t.parse::<DateTime<Utc>>().ok());
        if let Some(last) = last {
            let due = last + retry_delay(status.attempts);
            if due > now {
                return BackupStep::Wait { after: (due - now).to_std().unwrap_or_default() };
            }
        }
    }
    match pick_source(cluster) {
        Ok(source) => BackupStep::Take { source, attempt: status.attempts + 1 },
        Err((reason, message)) => BackupStep::Retry { reason, message },
    }
}

/// A healthy voting member, a follower if there is one (a snapshot loads the
/// member that serves it), preferring the one furthest ahead.
pub fn pick_source(cluster: &SourceCluster) -> Result<Source, (&'static str, String)> {
    let view = match cluster {
        SourceCluster::Missing => return Err(("ClusterNotFound", "the EtcdCluster does not exist".into())),
        SourceCluster::NotRunning | SourceCluster::Etcd(EtcdState::NotExpected) => {
            return Err(("ClusterNotRunning", "the cluster has no running members".into()));
        }
        SourceCluster::Etcd(EtcdState::Unreachable(e)) => {
            return Err(("ClusterUnreachable", format!("no member answered: {e}")));
        }
        SourceCluster::Etcd(EtcdState::Reached(view)) => view,
    };
    let voter = |m: &&MemberView| m.healthy() && !m.info.is_learner && !m.info.client_urls.is_empty();
    let key = |m: &&MemberView| {
        let s = m.status.as_ref().ok();
        let follower = s.is_some_and(|s| !s.is_leader());
        (follower, s.map(|s| s.raft_index).unwrap_or_default())
    };
    let best = view.members.iter().filter(voter).max_by_key(key).ok_or_else(|| {
        ("NoHealthyMember", format!("none of the {} members is healthy and voting", view.members.len()))
    })?;
    Ok(Source {
        member: best.name(),
        endpoint: best.info.client_urls[0].clone(),
        cluster_id: format!("{:x}", view.cluster_id),
    })
}

/// The storage key of a backup: `<namespace>/<cluster>/<created>-<backup>/` (stable across attempts).
pub fn backup_dir(namespace: &str, cluster: &str, backup: &str, created: DateTime<Utc>) -> String {
    format!("{namespace}/{cluster}/{}-{backup}", created.format("%Y%m%dT%H%M%SZ"))
}
