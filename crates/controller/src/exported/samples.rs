//! What is exported of one cluster or one backup schedule: pure, from the object as watched.
//!
//! Labels are `namespace` and `cluster` (or `schedule`), plus `member` for members (at most 9
//! per cluster), `purpose` for certificates (3), `type`/`step` for the one operation in
//! progress and `phase` for the one phase: series grow with clusters and members only.

use etcd_operator_api::{EtcdBackup, EtcdBackupSchedule, EtcdCluster, backup::BackupPhase};
use kube::ResourceExt;

/// etcd's own default of `--quota-backend-bytes` (2 GiB), when the spec sets none.
pub const ETCD_DEFAULT_QUOTA: i64 = 2 * 1024 * 1024 * 1024;

/// Whether a metric counts up or goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One exported metric: its name (without the `etcd_operator_` prefix), help and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

const fn gauge(name: &'static str, help: &'static str) -> Metric {
    Metric { name, help, kind: Kind::Gauge }
}

pub const PHASE: Metric = gauge("cluster_phase", "1 for the cluster's phase (label phase)");
pub const MEMBERS: Metric = gauge("cluster_members", "Members etcd lists, learners included");
pub const VOTERS: Metric = gauge("cluster_voting_members", "Voting members etcd lists");
pub const READY: Metric = gauge("cluster_ready_members", "Healthy voting members");
pub const DESIRED: Metric = gauge("cluster_desired_members", "Members spec.size asks for");
pub const QUORUM_MARGIN: Metric =
    gauge("cluster_quorum_margin", "Healthy voters beyond quorum: failures tolerated (negative: no quorum)");
pub const HAS_LEADER: Metric = gauge("cluster_has_leader", "1 when a healthy member reports itself leader");
pub const LEADER_CHANGES: Metric = Metric {
    name: "cluster_leader_changes",
    help: "Times the leader changed, as seen by this exporter since it started leading",
    kind: Kind::Counter,
};
pub const QUOTA: Metric = gauge(
    "cluster_quota_backend_bytes",
    "The backend quota (spec.etcd.quotaBackendBytes, else etcd's 2 GiB)",
);
pub const OPERATION: Metric =
    gauge("cluster_operation", "1 for the operation in progress (labels type, step)");
pub const OPERATION_STARTED: Metric = gauge(
    "cluster_operation_started_timestamp_seconds",
    "When the operation in progress started (label type)",
);
pub const MEMBER_HEALTHY: Metric = gauge("member_healthy", "1 when the member answered its status call");
pub const MEMBER_LEADER: Metric = gauge("member_leader", "1 when the member is the leader");
pub const MEMBER_LEARNER: Metric = gauge("member_learner", "1 when the member is a learner");
pub const DB_SIZE: Metric = gauge("member_db_size_bytes", "Backend database size (what the quota limits)");
pub const DB_IN_USE: Metric =
    gauge("member_db_size_in_use_bytes", "Backend bytes in use; the rest is reclaimed by defragmentation");
pub const RAFT_TERM: Metric = gauge("member_raft_term", "Raft term the member is in");
pub const RAFT_INDEX: Metric = gauge("member_raft_index", "Raft index the member has");
pub const RAFT_APPLIED: Metric = gauge("member_raft_applied_index", "Raft index the member has applied");
pub const CERT_NOT_AFTER: Metric =
    gauge("certificate_not_after_timestamp_seconds", "When the certificate expires (label purpose)");
pub const SCHEDULE_LAST_SUCCESS: Metric =
    gauge("backup_schedule_last_success_timestamp_seconds", "When the schedule's last backup succeeded");
pub const SCHEDULE_NEXT: Metric =
    gauge("backup_schedule_next_timestamp_seconds", "When the schedule runs next");
pub const SCHEDULE_PERIOD: Metric =
    gauge("backup_schedule_period_seconds", "Time between the schedule's last and next run");
pub const SCHEDULE_SUSPENDED: Metric = gauge("backup_schedule_suspended", "1 when the schedule is suspended");
pub const BACKUP_LAST_SUCCESS: Metric =
    gauge("backup_last_success_timestamp_seconds", "When the cluster's newest successful backup completed");
pub const BACKUP_LAST_SIZE: Metric =
    gauge("backup_last_size_bytes", "Size of the cluster's newest successful backup");

/// Every metric, in the order they are written.
pub const ALL: [Metric; 26] = [
    PHASE,
    MEMBERS,
    VOTERS,
    READY,
    DESIRED,
    QUORUM_MARGIN,
    HAS_LEADER,
    LEADER_CHANGES,
    QUOTA,
    OPERATION,
    OPERATION_STARTED,
    MEMBER_HEALTHY,
    MEMBER_LEADER,
    MEMBER_LEARNER,
    DB_SIZE,
    DB_IN_USE,
    RAFT_TERM,
    RAFT_INDEX,
    RAFT_APPLIED,
    CERT_NOT_AFTER,
    SCHEDULE_LAST_SUCCESS,
    SCHEDULE_NEXT,
    SCHEDULE_PERIOD,
    SCHEDULE_SUSPENDED,
    BACKUP_LAST_SUCCESS,
    BACKUP_LAST_SIZE,
];

/// Whether a metric is of backups (the backup controller's) rather than of clusters.
pub fn of_backups(m: Metric) -> bool {
    m.name.starts_with("backup_")
}

/// Label names and values of one series.
pub type Labels = Vec<(String, String)>;

/// One value of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub metric: Metric,
    pub labels: Labels,
    pub value: f64,
}

fn with(base: &Labels, more: &[(&str, &str)]) -> Labels {
    let mut l = base.clone();
    l.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    l
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn timestamp(text: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis() as f64 / 1000.0)
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The leader's name in a cluster's recorded status.
pub fn leader(c: &EtcdCluster) -> Option<String> {
    c.status.as_ref()?.members.iter().find(|m| m.is_leader && m.healthy).map(|m| m.name.clone())
}

/// Everything exported of one cluster (`leader_changes` is kept by the caller).
pub fn cluster(c: &EtcdCluster, leader_changes: u64) -> Vec<Sample> {
    let base: Labels =
        vec![("namespace".into(), c.namespace().unwrap_or_default()), ("cluster".into(), c.name_any())];
    let mut out = Vec::new();
    let mut push = |metric, labels: Labels, value: f64| out.push(Sample { metric, labels, value });
    push(DESIRED, base.clone(), f64::from(c.spec.size));
    push(QUOTA, base.clone(), c.spec.etcd.quota_backend_bytes.unwrap_or(ETCD_DEFAULT_QUOTA) as f64);
    push(LEADER_CHANGES, base.clone(), leader_changes as f64);
    let Some(s) = c.status.as_ref() else { return out };
    push(PHASE, with(&base, &[("phase", &format!("{:?}", s.phase))]), 1.0);
    push(MEMBERS, base.clone(), s.members.len() as f64);
    push(VOTERS, base.clone(), s.members.iter().filter(|m| !m.is_learner).count() as f64);
    push(READY, base.clone(), f64::from(s.ready_members));
    if let Some(margin) = s.quorum_margin {
        push(QUORUM_MARGIN, base.clone(), f64::from(margin));
    }
    push(HAS_LEADER, base.clone(), flag(leader(c).is_some()));
    if let Some(op) = &s.operation {
        let kind = op.type_.to_string();
        push(OPERATION, with(&base, &[("type", &kind), ("step", &op.step)]), 1.0);
        if let Some(t) = timestamp(&op.started_at) {
            push(OPERATION_STARTED, with(&base, &[("type", &kind)]), t);
        }
    }
    for m in &s.members {
        let l = with(&base, &[("member", &m.name)]);
        push(MEMBER_HEALTHY, l.clone(), flag(m.healthy));
        push(MEMBER_LEADER, l.clone(), flag(m.is_leader));
        push(MEMBER_LEARNER, l.clone(), flag(m.is_learner));
        // Only what the member reported: an absent value is no series, never a zero.
        for (metric, value) in [
            (DB_SIZE, m.db_size_bytes),
            (DB_IN_USE, m.db_size_in_use_bytes),
            (RAFT_TERM, m.raft_term),
            (RAFT_INDEX, m.raft_index),
            (RAFT_APPLIED, m.raft_applied_index),
        ] {
            if let Some(v) = value {
                push(metric, l.clone(), v as f64);
            }
        }
    }
    for cert in &s.certificates {
        if let Some(t) = cert.not_after.as_deref().and_then(timestamp) {
            push(CERT_NOT_AFTER, with(&base, &[("purpose", &cert.purpose)]), t);
        }
    }
    out
}

/// Everything exported of one backup schedule.
pub fn schedule(s: &EtcdBackupSchedule) -> Vec<Sample> {
    let base: Labels = vec![
        ("namespace".into(), s.namespace().unwrap_or_default()),
        ("schedule".into(), s.name_any()),
        ("cluster".into(), s.spec.cluster_name.clone()),
    ];
    let mut out =
        vec![Sample { metric: SCHEDULE_SUSPENDED, labels: base.clone(), value: flag(s.spec.suspend) }];
    let Some(status) = s.status.as_ref() else { return out };
    let time = |t: &Option<String>| t.as_deref().and_then(timestamp);
    if let Some(t) = time(&status.last_successful_time) {
        out.push(Sample { metric: SCHEDULE_LAST_SUCCESS, labels: base.clone(), value: t });
    }
    if let Some(next) = time(&status.next_schedule_time) {
        out.push(Sample { metric: SCHEDULE_NEXT, labels: base.clone(), value: next });
        if let Some(last) = time(&status.last_schedule_time).filter(|last| *last < next) {
            out.push(Sample { metric: SCHEDULE_PERIOD, labels: base.clone(), value: next - last });
        }
    }
    out
}

/// The newest successful backup of each cluster (by completion time): its time and size.
pub fn last_backups<'a>(backups: impl IntoIterator<Item = &'a EtcdBackup>) -> Vec<Sample> {
    let mut newest: std::collections::BTreeMap<(String, String), (f64, i64)> = Default::default();
    for b in backups {
        let Some(s) = b.status.as_ref().filter(|s| s.phase == BackupPhase::Succeeded) else { continue };
        let Some(done) = s.completion_time.as_deref().and_then(timestamp) else { continue };
        let key = (b.namespace().unwrap_or_default(), b.spec.cluster_name.clone());
        let size = s.size_bytes.unwrap_or_default();
        newest
            .entry(key)
            .and_modify(|e| {
                if done > e.0 {
                    *e = (done, size)
                }
            })
            .or_insert((done, size));
    }
    newest
        .into_iter()
        .flat_map(|((namespace, cluster), (done, size))| {
            let labels: Labels = vec![("namespace".into(), namespace), ("cluster".into(), cluster)];
            [
                Sample { metric: BACKUP_LAST_SUCCESS, labels: labels.clone(), value: done },
                Sample { metric: BACKUP_LAST_SIZE, labels, value: size as f64 },
            ]
        })
        .collect()
}

#[cfg(test)]
#[path = "samples_tests.rs"]
mod tests;
