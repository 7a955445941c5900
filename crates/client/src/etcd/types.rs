//! Plain data returned by the etcd client, independent of etcd-client's types.

use etcd_client::{AlarmMember, AlarmType, Member, StatusResponse};

/// Membership as etcd reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// Cluster ID from the response header.
    pub cluster_id: u64,
    /// Every member, voting or learner.
    pub members: Vec<MemberInfo>,
}

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Member ID.
    pub id: u64,
    /// Name; empty until the member has started once.
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs; empty until the member has started once.
    pub client_urls: Vec<String>,
    /// Whether the member is a learner.
    pub is_learner: bool,
}

impl From<&Member> for MemberInfo {
    fn from(m: &Member) -> Self {
        Self {
            id: m.id(),
            name: m.name().to_owned(),
            peer_urls: m.peer_urls().to_vec(),
            client_urls: m.client_urls().to_vec(),
            is_learner: m.is_learner(),
        }
    }
}

/// What one member says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStatus {
    /// Endpoint asked.
    pub endpoint: String,
    /// ID of the member that answered.
    pub member_id: u64,
    /// Cluster ID the member belongs to.
    pub cluster_id: u64,
    /// Current leader as seen by this member (0 when none).
    pub leader: u64,
    /// Backend size in bytes.
    pub db_size: i64,
    /// Bytes of the backend in use (the rest is free pages a defragmentation gives back).
    pub db_size_in_use: i64,
    /// Raft index applied to the store.
    pub raft_applied_index: u64,
    /// Raft term.
    pub raft_term: u64,
    /// Raft index.
    pub raft_index: u64,
    /// Store revision.
    pub revision: i64,
    /// Server version.
    pub version: String,
    /// Whether the member is a learner.
    pub is_learner: bool,
    /// Errors the member reports about itself.
    pub errors: Vec<String>,
}

impl EndpointStatus {
    pub(crate) fn new(endpoint: &str, resp: &StatusResponse) -> Self {
        let header = resp.header();
        Self {
            endpoint: endpoint.to_owned(),
            member_id: header.map(|h| h.member_id()).unwrap_or_default(),
            cluster_id: header.map(|h| h.cluster_id()).unwrap_or_default(),
            leader: resp.leader(),
            db_size: resp.db_size(),
            db_size_in_use: resp.raft_used_db_size(),
            raft_applied_index: resp.raft_applied_index(),
            raft_term: resp.raft_term(),
            raft_index: resp.raft_index(),
            revision: header.map(|h| h.revision()).unwrap_or_default(),
            version: resp.version().to_owned(),
            is_learner: resp.is_learner(),
            errors: resp.errors().to_vec(),
        }
    }

    /// Whether this member is the leader.
    pub fn is_leader(&self) -> bool {
        self.member_id != 0 && self.member_id == self.leader
    }
}

/// An active alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    /// Member that raised it.
    pub member_id: u64,
    /// Kind of alarm.
    pub kind: AlarmType,
}

impl Alarm {
    /// Name as etcd prints it (NOSPACE, CORRUPT).
    pub fn name(&self) -> &'static str {
        match self.kind {
            AlarmType::Nospace => "NOSPACE",
            AlarmType::Corrupt => "CORRUPT",
            AlarmType::None => "NONE",
        }
    }

    /// An alarm as a member's status lists it among its errors (`memberID:<id> alarm:NOSPACE `,
    /// the text form of etcd's alarm record); `None` for any other error (`etcdserver: no leader`).
    /// Read from the status instead of asked for: etcd serves an alarm list through Raft, so
    /// every list appended an entry, and a quiet cluster's Raft index moved at every probe.
    pub fn from_status_error(error: &str) -> Option<Self> {
        let mut fields = error.split_whitespace();
        let member_id = fields.next()?.strip_prefix("memberID:")?.parse().ok()?;
        let kind = AlarmType::from_str_name(fields.next()?.strip_prefix("alarm:")?)?;
        (kind != AlarmType::None).then_some(Self { member_id, kind })
    }
}

impl From<&AlarmMember> for Alarm {
    fn from(a: &AlarmMember) -> Self {
        Self { member_id: a.member_id(), kind: a.alarm() }
    }
}

/// A snapshot that was streamed and hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Bytes written.
    pub size_bytes: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Revision of the member just before the snapshot started.
    pub revision: i64,
    /// Member the snapshot came from.
    pub member_id: u64,
    /// Version of that member.
    pub etcd_version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_are_read_from_the_errors_a_status_lists() {
        let nospace = Alarm::from_status_error("memberID:10276657743932975437 alarm:NOSPACE ").unwrap();
        assert_eq!((nospace.member_id, nospace.name()), (10276657743932975437, "NOSPACE"));
        let corrupt = Alarm::from_status_error("memberID:1 alarm:CORRUPT").unwrap();
        assert_eq!(corrupt.kind, AlarmType::Corrupt);
        for other in ["etcdserver: no leader", "memberID:x alarm:NOSPACE", "memberID:1 alarm:NONE", ""] {
            assert_eq!(Alarm::from_status_error(other), None, "{other}");
        }
    }
}
