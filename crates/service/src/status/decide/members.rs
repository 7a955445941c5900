//! Member statuses from what etcd reported (or, when it did not answer, the
//! last known ones, none healthy). Pure.

use etcd_operator_api::{EtcdClusterStatus, cluster::MemberStatus};

use crate::observe::{EtcdState, Observation};

/// Each member as etcd reports it; `unhealthySince` kept from `previous` while it stays unhealthy.
pub fn members(observation: &Observation, previous: &EtcdClusterStatus, now: &str) -> Vec<MemberStatus> {
    match &observation.etcd {
        EtcdState::Reached(view) => view
            .members
            .iter()
            .map(|m| {
                let status = m.status.as_ref().ok();
                let id = m.info.id;
                let unhealthy_since = (!m.healthy()).then(|| {
                    let before = previous.members.iter().find(|p| p.name == m.name());
                    since(before.and_then(|p| p.unhealthy_since.as_deref()), now)
                });
                MemberStatus {
                    unhealthy_since,
                    name: m.name(),
                    id: format!("{id:x}"),
                    peer_urls: m.info.peer_urls.clone(),
                    client_urls: m.info.client_urls.clone(),
                    is_learner: m.info.is_learner,
                    healthy: m.healthy(),
                    is_leader: status.is_some_and(|s| s.is_leader()),
                    db_size_bytes: status.map(|s| s.db_size),
                    db_size_in_use_bytes: status.map(|s| s.db_size_in_use),
                    raft_term: status.map(|s| s.raft_term as i64),
                    raft_index: status.map(|s| s.raft_index as i64),
                    raft_applied_index: status.map(|s| s.raft_applied_index as i64),
                    revision: status.map(|s| s.revision),
                    version: status.map(|s| s.version.clone()),
                    alarms: view
                        .alarms
                        .iter()
                        .filter(|a| a.member_id == id)
                        .map(|a| a.name().to_owned())
                        .collect(),
                }
            })
            .collect(),
        // Unreachable: the last known members, none of them known to be healthy.
        EtcdState::Unreachable(_) => previous
            .members
            .iter()
            .map(|m| MemberStatus {
                healthy: false,
                is_leader: false,
                // Nothing answered now: what the members last said is not what they say.
                revision: None,
                raft_term: None,
                raft_index: None,
                raft_applied_index: None,
                unhealthy_since: Some(since(m.unhealthy_since.as_deref(), now)),
                ..m.clone()
            })
            .collect(),
        EtcdState::NotExpected => Vec::new(),
    }
}

/// When a member became unhealthy: as recorded, unless that is later than `now`. A writer whose
/// clock ran ahead (stepped forward, then back) records a future time, and the member would then
/// count as unhealthy for no time at all until the wall clock caught up: never replaced for as
/// long as the step (campaign seed 47, +1639 s). Restarting the count at `now` delays a
/// replacement by at most the grace period.
fn since(recorded: Option<&str>, now: &str) -> String {
    let parse = |t: &str| t.parse::<chrono::DateTime<chrono::Utc>>().ok();
    let before_now = |r: &&str| parse(r).zip(parse(now)).is_some_and(|(r, n)| r <= n);
    recorded.filter(before_now).unwrap_or(now).to_owned()
}

#[cfg(test)]
mod tests {
    use super::since;

    #[test]
    fn an_unhealthy_since_in_the_future_restarts_at_now() {
        let now = "2026-12-01T02:00:00Z";
        assert_eq!(since(Some("2026-12-01T01:59:00Z"), now), "2026-12-01T01:59:00Z", "kept");
        assert_eq!(since(None, now), now, "unhealthy from now on");
        // Recorded by a writer whose clock ran 1639 s ahead.
        assert_eq!(since(Some("2026-12-01T02:27:19Z"), now), now);
        assert_eq!(since(Some("not a time"), now), now);
    }
}
