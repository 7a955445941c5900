//! Maintenance decisions (defragmentation). Pure.

pub use crate::config::MaintenancePolicy;
use etcd_operator_common::Violations;

use crate::{
    ServiceError,
    observe::{EtcdState, Observation},
};

/// Whether `member` may be defragmented now: it blocks while defragmenting,
/// so every other voting member must be healthy. Pure.
pub fn may_defragment(observation: &Observation, member: &str) -> Result<(), ServiceError> {
    let EtcdState::Reached(view) = &observation.etcd else {
        return Err(ServiceError::FailedPrecondition(
            "etcd is not reachable; nothing is defragmented".into(),
        ));
    };
    if !view.members.iter().any(|m| m.name() == member) {
        let mut v = Violations::default();
        v.push("member", format!("{member} is not a member of this cluster"));
        return Err(ServiceError::InvalidArgument(v));
    }
    let unhealthy: Vec<String> =
        view.members.iter().filter(|m| m.name() != member && !m.healthy()).map(|m| m.name()).collect();
    if unhealthy.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::FailedPrecondition(format!(
            "members {} are unhealthy; defragmenting {member} now could cost quorum",
            unhealthy.join(", ")
        )))
    }
}

/// What maintenance to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Maintenance {
    /// Nothing (the reason, for logs).
    Nothing(String),
    /// A NOSPACE alarm: compact, defragment every member one at a time (`members`, leader last), disarm.
    RecoverSpace {
        /// Members by name and endpoint, in the order to defragment them.
        members: Vec<(String, String)>,
    },
    /// Defragment one member.
    Defragment {
        /// Member name.
        member: String,
        /// Its client URL.
        endpoint: String,
    },
}

fn ago(time: &str, now: chrono::DateTime<chrono::Utc>) -> Option<std::time::Duration> {
    let t = time.parse::<chrono::DateTime<chrono::Utc>>().ok()?;
    (now - t).to_std().ok()
}

/// Decides maintenance from what etcd reports. Pure.
///
/// Followers go first, the leader last (defragmenting blocks a member, and a blocked leader
/// stalls every write); nothing is done while any member is unhealthy.
pub fn next_maintenance(
    view: &crate::observe::EtcdView,
    policy: &MaintenancePolicy,
    done: &etcd_operator_api::cluster::MaintenanceStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> Maintenance {
    // Answering is what counts: a member reporting an alarm (NOSPACE) is what maintenance is for.
    if let Some(sick) = view.members.iter().find(|m| m.status.is_err()) {
        return Maintenance::Nothing(format!("{} is unhealthy: maintenance waits", sick.name()));
    }
    let mut ordered: Vec<&crate::observe::MemberView> = view.members.iter().collect();
    ordered.sort_by_key(|m| (m.leads(), m.name()));
    let endpoint = |m: &crate::observe::MemberView| m.info.client_urls.first().cloned().unwrap_or_default();
    if view.alarms.iter().any(|a| a.name() == "NOSPACE") {
        let recent = done.last_space_recovery.as_deref().and_then(|t| ago(t, now));
        if recent.is_some_and(|d| d < policy.cooldown / 6) {
            return Maintenance::Nothing(
                "NOSPACE again soon after a recovery: the data itself exceeds the quota; raise spec.etcd.quotaBackendBytes or delete data".into(),
            );
        }
        return Maintenance::RecoverSpace {
            members: ordered.iter().map(|m| (m.name(), endpoint(m))).collect(),
        };
    }
    for m in ordered {
        let Ok(s) = &m.status else { continue };
        let fragmented = s.db_size > 0
            && 1.0 - (s.db_size_in_use as f64 / s.db_size as f64) >= policy.fragmentation_threshold;
        let recently = done
            .defragmentations
            .iter()
            .find(|d| d.member == m.name())
            .and_then(|d| ago(&d.time, now))
            .is_some_and(|d| d < policy.cooldown);
        if s.db_size >= policy.min_db_size && fragmented && !recently {
            return Maintenance::Defragment { member: m.name(), endpoint: endpoint(m) };
        }
    }
    Maintenance::Nothing("no member needs maintenance".into())
}
