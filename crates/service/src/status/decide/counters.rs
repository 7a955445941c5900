//! Members' counters in status: the Raft index, the revision and the database size move with
//! every write to etcd — and on etcd 3.4 with each kubelet readiness probe, whose `/health` goes
//! through Raft — so recording them at every probe rewrote the status of every cluster at every
//! probe (1 000 clusters every 30 s: 33 writes a second to the API server, each one an event for
//! every controller's watch). They are recorded with any other change, and on their own at most
//! every [`REFRESH`] per process; a fresh GetClusterStatus still answers them live. Also how a
//! recorded status is compared with a computed one. Pure.

use std::time::{Duration, Instant};

use etcd_operator_api::cluster::EtcdClusterStatus;

/// How stale recorded counters may get when nothing else changes.
pub const REFRESH: Duration = Duration::from_secs(300);

/// Whether `next` differs from `previous` in members' counters only.
fn only_counters_moved(previous: &EtcdClusterStatus, next: &EtcdClusterStatus) -> bool {
    previous != next && without_counters(previous) == without_counters(next)
}

fn without_counters(status: &EtcdClusterStatus) -> EtcdClusterStatus {
    let mut status = status.clone();
    for m in &mut status.members {
        m.raft_index = None;
        m.raft_applied_index = None;
        m.revision = None;
        m.db_size_bytes = None;
        m.db_size_in_use_bytes = None;
    }
    status
}

/// `status` with its conditions in the order status is computed in (by type, as
/// `merge_conditions` leaves them), whatever order the API server kept.
fn conditions_by_type(mut status: EtcdClusterStatus) -> EtcdClusterStatus {
    status.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    status
}

/// Whether counters that moved alone are due to be recorded, this process having last written
/// the cluster's status at `last_written`.
pub fn due(last_written: Option<Instant>, now: Instant) -> bool {
    last_written.is_none_or(|at| now.saturating_duration_since(at) >= REFRESH)
}

/// Whether `next` is worth writing over the `recorded` status: it differs (conditions compared by
/// type), and not only in counters that are not [`due`].
pub fn worth_writing(
    recorded: Option<&EtcdClusterStatus>,
    next: &EtcdClusterStatus,
    last_written: Option<Instant>,
    now: Instant,
) -> bool {
    match recorded.cloned().map(conditions_by_type) {
        Some(recorded) if recorded == *next => false,
        Some(recorded) if only_counters_moved(&recorded, next) => due(last_written, now),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use etcd_operator_api::cluster::{ClusterPhase, MemberStatus};

    use super::*;

    fn status(raft_index: i64, healthy: bool) -> EtcdClusterStatus {
        let member = MemberStatus {
            name: "demo-0".into(),
            healthy,
            raft_index: Some(raft_index),
            revision: Some(raft_index),
            db_size_bytes: Some(raft_index * 4096),
            ..MemberStatus::default()
        };
        EtcdClusterStatus { phase: ClusterPhase::Running, members: vec![member], ..Default::default() }
    }

    #[test]
    fn counters_alone_are_told_from_any_other_change() {
        assert!(only_counters_moved(&status(5, true), &status(6, true)));
        assert!(!only_counters_moved(&status(5, true), &status(6, false)), "health changed too");
        assert!(!only_counters_moved(&status(5, true), &status(5, true)), "nothing changed");
    }

    #[test]
    fn conditions_compare_by_type_not_by_position() {
        use etcd_operator_api::{Condition, ConditionStatus};
        let condition = |t: &str| Condition::new(t, ConditionStatus::False, "Fine", "");
        let kept = EtcdClusterStatus {
            conditions: vec![condition("Progressing"), condition("Available"), condition("Degraded")],
            ..status(5, true)
        };
        let computed = EtcdClusterStatus {
            conditions: vec![condition("Available"), condition("Degraded"), condition("Progressing")],
            ..status(5, true)
        };
        assert_eq!(conditions_by_type(kept), computed);
    }

    #[test]
    fn counters_alone_are_recorded_at_most_every_refresh() {
        let now = Instant::now();
        assert!(due(None, now), "never written by this process");
        assert!(!due(Some(now - Duration::from_secs(30)), now));
        assert!(due(Some(now - REFRESH), now));
        let (quiet, moved) = (status(5, true), status(6, true));
        let recently = Some(now - Duration::from_secs(30));
        assert!(!worth_writing(Some(&quiet), &quiet, None, now), "nothing changed");
        assert!(!worth_writing(Some(&quiet), &moved, recently, now), "counters alone, recently written");
        assert!(worth_writing(Some(&quiet), &moved, None, now), "counters alone, never written here");
        assert!(worth_writing(Some(&quiet), &status(5, false), recently, now), "health changed");
        assert!(worth_writing(None, &quiet, recently, now), "nothing recorded");
    }
}
