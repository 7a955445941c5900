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
    /// Backup storage failed locally (disk, permissions of a mounted volume).
    #[error("backup storage: {0}")]
    Storage(#[from] std::io::Error),
    /// The stored object does not exist.
    #[error("backup storage: {0} not found")]
    ObjectNotFound(String),
    /// The object store refused the request (credentials, permissions, configuration); retrying will not help.
    #[error("backup storage refused the request: {0}")]
    StorageRefused(String),
    /// The object store could not be reached or failed; retry.
    #[error("backup storage unavailable: {0}")]
    StorageUnavailable(String),
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
            | Self::UnsafeMembershipChange(_)
            | Self::StorageUnavailable(_) => true,
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

    /// An I/O error while writing or reading object `key`.
    pub(crate) fn storage(key: &str, e: std::io::Error) -> Self {
        // object_store reports its own failures through io::Error in the writer.
        match e.get_ref().and_then(|inner| inner.downcast_ref::<object_store::Error>()) {
            Some(_) => Self::StorageUnavailable(format!("{key}: {e}")),
            None => Self::Storage(std::io::Error::new(e.kind(), format!("{key}: {e}"))),
        }
    }
}

impl From<object_store::Error> for ClientError {
    fn from(e: object_store::Error) -> Self {
        use object_store::Error as E;
        match e {
            E::NotFound { path, .. } => Self::ObjectNotFound(path),
            E::InvalidPath { .. } => Self::InvalidArgument(e.to_string()),
            E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
            | E::NotSupported { .. }
            | E::NotImplemented { .. }
            | E::UnknownConfigurationKey { .. } => Self::StorageRefused(e.to_string()),
            // Network failures, 5xx after retries, and local disk errors land here.
            _ => Self::StorageUnavailable(e.to_string()),
        }
    }
}
