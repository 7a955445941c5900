//! Errors of the client layer, classified so callers can decide to retry.

use std::time::Duration;

/// An error talking to etcd, Kubernetes or backup storage.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint could not be reached or closed the connection.
    #[error("{target} is unavailable: {message}")]
    Unavailable {
        /// What was called (endpoint or service).
        target: String,
        /// Underlying cause.
        message: String,
    },
    /// The call did not finish in time.
    #[error("{operation} timed out after {timeout:?}")]
    Timeout {
        /// The call that timed out.
        operation: &'static str,
        /// The limit that passed.
        timeout: Duration,
    },
    /// etcd refused a promotion because the learner has not caught up; retry later.
    #[error("learner {0:x} is not in sync with the leader yet")]
    LearnerNotInSync(u64),
    /// etcd does not know the member.
    #[error("member {0:x} not found")]
    MemberNotFound(u64),
    /// etcd refused a membership change that would leave it without enough started members;
    /// it may accept it once recently (re)connected members have been up for a while.
    #[error("etcd refused the membership change: {0}")]
    UnsafeMembershipChange(String),
    /// Any other error etcd returned.
    #[error("etcd error: {0}")]
    Etcd(String),
    /// An error from the Kubernetes API.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// Backup storage failed.
    #[error("backup storage: {0}")]
    Storage(#[from] std::io::Error),
    /// The caller passed something unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// Whether repeating the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. }
            | Self::Timeout { .. }
            | Self::LearnerNotInSync(_)
            | Self::UnsafeMembershipChange(_) => true,
            Self::Kube(kube::Error::Api(status)) => status.code == 429 || status.code >= 500,
            Self::Kube(_) => true,
            _ => false,
        }
    }

    /// Classifies an etcd-client error; `id` is the member an operation was about.
    pub(crate) fn from_etcd(target: &str, id: Option<u64>, err: etcd_client::Error) -> Self {
        use etcd_client::Error as E;
        match err {
            E::TransportError(e) => Self::Unavailable { target: target.into(), message: e.to_string() },
            E::IoError(e) => Self::Unavailable { target: target.into(), message: e.to_string() },
            E::GRpcStatus(status) => {
                let msg = status.message().to_owned();
                let id = id.unwrap_or_default();
                if msg.contains("can only promote a learner member which is in sync with leader") {
                    Self::LearnerNotInSync(id)
                } else if msg.contains("member not found") {
                    Self::MemberNotFound(id)
                } else if msg.contains("not enough started members") || msg.contains("unhealthy cluster") {
                    Self::UnsafeMembershipChange(msg)
                } else if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Cancelled) {
                    Self::Unavailable { target: target.into(), message: msg }
                } else {
                    Self::Etcd(msg)
                }
            }
            other => Self::Etcd(other.to_string()),
        }
    }
}
