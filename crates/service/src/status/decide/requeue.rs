//! How soon a cluster that has not converged is looked at again. Pure.

use std::time::Duration;

use chrono::{DateTime, Utc};
use etcd_operator_api::{EtcdClusterStatus, cluster::CONDITION_PROGRESSING};

use crate::observe::PodState;

/// The look-again period while a cluster starts converging (members start, join, elect).
pub const CONVERGING: Duration = Duration::from_secs(5);

/// The longest period between looks at a cluster that is still converging.
pub const CONVERGING_AT_MOST: Duration = Duration::from_secs(60);

/// When a cluster that has not converged is looked at again: every 5 s for its first 30 s, then
/// a sixth of the time it has been converging, at most once a minute. Its StatefulSet's events
/// (pods becoming ready) bring it back sooner; the period is only what nothing announces. A
/// thousand clusters whose pods cannot be scheduled, each looked at every 5 s by every
/// controller, kept the controllers' queues full, and a full kube-runtime queue picks among
/// the overdue in no fair order: clusters applied later waited for minutes.
pub fn converging(status: &EtcdClusterStatus, now: DateTime<Utc>) -> Duration {
    let progressing = status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_PROGRESSING && c.is_true())
        .map(|c| c.last_transition_time.as_str());
    let since = progressing.or_else(|| status.operation.as_ref().map(|o| o.started_at.as_str()));
    let Some(since) = since.and_then(|s| DateTime::parse_from_rfc3339(s).ok()) else {
        return CONVERGING;
    };
    // A sixth of up to 30 s is under the 5 s floor: the first 30 s need no case of their own.
    let elapsed = (now - since.with_timezone(&Utc)).to_std().unwrap_or_default();
    (elapsed / 6).clamp(CONVERGING, CONVERGING_AT_MOST)
}

/// Whether no member pod runs although some exist (none scheduled, or their node is down): the
/// cluster cannot move until one does, so it is looked at only every [`CONVERGING_AT_MOST`]; a
/// pod becoming ready changes its StatefulSet, whose event brings it back at once. Pods not yet
/// listed, or not yet created, say nothing.
pub fn no_member_runs(pods: Option<&[PodState]>) -> bool {
    pods.is_some_and(|pods| !pods.is_empty() && pods.iter().all(|p| !p.running))
}

/// The look-again `otherwise` asks for, unless no member pod runs (then [`CONVERGING_AT_MOST`]).
pub fn unless_no_member_runs(otherwise: Duration, pods: Option<&[PodState]>) -> Duration {
    if no_member_runs(pods) { CONVERGING_AT_MOST } else { otherwise }
}

#[cfg(test)]
mod tests {
    use etcd_operator_api::{Condition, cluster::OperationStatus};

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn progressing_since(t: &str, holds: bool) -> EtcdClusterStatus {
        let mut c = Condition::new(CONDITION_PROGRESSING, holds, "Creating", "");
        c.last_transition_time = t.into();
        EtcdClusterStatus { conditions: vec![c], ..Default::default() }
    }

    #[test]
    fn a_cluster_converging_for_longer_is_looked_at_less_often_up_to_once_a_minute() {
        let status = progressing_since("2026-12-02T12:00:00Z", true);
        let after = |t: &str| converging(&status, at(t));
        assert_eq!(after("2026-12-02T12:00:10Z"), CONVERGING);
        assert_eq!(after("2026-12-02T12:00:30Z"), CONVERGING);
        assert_eq!(after("2026-12-02T12:01:00Z"), Duration::from_secs(10));
        assert_eq!(after("2026-12-02T12:03:00Z"), Duration::from_secs(30));
        assert_eq!(after("2026-12-02T13:00:00Z"), CONVERGING_AT_MOST);
        // A clock behind the recorded time is no reason to wait longer.
        assert_eq!(after("2026-12-02T11:00:00Z"), CONVERGING);
    }

    #[test]
    fn without_a_progressing_condition_the_operation_start_counts_else_nothing_does() {
        let now = at("2026-12-02T12:03:00Z");
        let not_progressing = progressing_since("2026-12-02T12:00:00Z", false);
        assert_eq!(converging(&not_progressing, now), CONVERGING);
        let op = OperationStatus { started_at: "2026-12-02T12:00:00Z".into(), ..Default::default() };
        let operating = EtcdClusterStatus { operation: Some(op), ..not_progressing };
        assert_eq!(converging(&operating, now), Duration::from_secs(30));
        let garbled = progressing_since("yesterday", true);
        assert_eq!(converging(&garbled, now), CONVERGING);
    }

    #[test]
    fn only_listed_pods_none_of_which_runs_mean_waiting_for_pods() {
        let pod = |running| PodState { running, ..PodState::default() };
        assert!(no_member_runs(Some(&[pod(false), pod(false)])));
        assert!(!no_member_runs(Some(&[pod(false), pod(true)])), "one runs: members may be forming");
        assert!(!no_member_runs(Some(&[])), "none created yet: the StatefulSet is about to");
        assert!(!no_member_runs(None), "not listed: unknown");
        let waiting = [pod(false)];
        assert_eq!(unless_no_member_runs(CONVERGING, Some(&waiting)), CONVERGING_AT_MOST);
        assert_eq!(unless_no_member_runs(CONVERGING, None), CONVERGING);
    }
}
