//! Errors of the service layer. Each error keeps its cause; [`ServiceError::code`]
//! classifies it once, and the gRPC mapping (cluster-service `grpc/status.rs`)
//! reads only that.

use std::sync::Arc;

use etcd_operator_client::ClientError;
use etcd_operator_common::Violations;
use etcd_operator_resource::ResourceError;

/// Why a service call did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request or the spec breaks rules; every broken rule is listed.
    #[error("invalid input: {0}")]
    InvalidArgument(Violations),
    /// The object does not exist.
    #[error("{kind} {name} not found")]
    NotFound {
        /// Kind of object.
        kind: &'static str,
        /// namespace/name.
        name: String,
    },
    /// The object exists and differs from what was asked for.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request cannot apply to the object in its current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller may not have what it asked for (a wrong or expired token).
    #[error("{0}")]
    PermissionDenied(String),
    /// Another change of the same cluster is in progress; retry.
    #[error("{0}")]
    Aborted(String),
    /// Kubernetes or etcd could not be reached; retry.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected answer.
    #[error("internal error: {0}")]
    Internal(String),
    /// The Kubernetes API answered with an error (kept as the cause).
    #[error("{0}")]
    Kubernetes(#[source] Arc<ResourceError>),
    /// etcd or snapshot storage answered with an error (kept as the cause).
    #[error("{0}")]
    Outside(#[source] Arc<ClientError>),
    /// A record could not be encoded (a bug).
    #[error("internal error: encoding a record: {0}")]
    Encode(#[source] Arc<serde_json::Error>),
}

/// What a caller can do about an error: the gRPC codes the API documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Fix the request.
    InvalidArgument,
    /// The object is not there.
    NotFound,
    /// The object is there and differs.
    AlreadyExists,
    /// Not in this state; change the state first.
    FailedPrecondition,
    /// Not allowed.
    PermissionDenied,
    /// A concurrent change; retry.
    Aborted,
    /// Unreachable; retry.
    Unavailable,
    /// A bug or an unexpected answer.
    Internal,
}

impl ServiceError {
    /// What the caller can do about it; the one classification of every error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Self::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Self::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Self::Aborted(_) => ErrorCode::Aborted,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) | Self::Encode(_) => ErrorCode::Internal,
            Self::Kubernetes(e) => match e.status_code() {
                Some(404) => ErrorCode::NotFound,
                Some(409) => ErrorCode::Aborted,
                // The API server refused the object: admission rules (CEL, schema) name the field.
                Some(400 | 422) => ErrorCode::FailedPrecondition,
                _ if e.is_transient() => ErrorCode::Unavailable,
                _ => ErrorCode::Internal,
            },
            Self::Outside(e) if e.is_transient() => ErrorCode::Unavailable,
            // A request we built was refused: our bug, not the caller's.
            Self::Outside(_) => ErrorCode::Internal,
        }
    }

    /// Whether calling again later may succeed (a concurrent change, or something unreachable).
    pub fn is_retryable(&self) -> bool {
        matches!(self.code(), ErrorCode::Aborted | ErrorCode::Unavailable)
    }

    /// Whether another call (or another replica) is changing the same object; retry later.
    pub fn is_aborted(&self) -> bool {
        self.code() == ErrorCode::Aborted
    }
}

impl From<Violations> for ServiceError {
    fn from(v: Violations) -> Self {
        Self::InvalidArgument(v)
    }
}

impl From<ResourceError> for ServiceError {
    fn from(e: ResourceError) -> Self {
        Self::Kubernetes(Arc::new(e))
    }
}

impl From<ClientError> for ServiceError {
    fn from(e: ClientError) -> Self {
        Self::Outside(Arc::new(e))
    }
}

impl From<serde_json::Error> for ServiceError {
    fn from(e: serde_json::Error) -> Self {
        Self::Encode(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_cause_is_kept_and_classified() {
        let e =
            ServiceError::from(ClientError::Unavailable { target: "etcd".into(), message: "down".into() });
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert!(e.source().is_some_and(|c| c.to_string().contains("etcd is unavailable: down")), "{e:?}");
        let e = ServiceError::from(ClientError::InvalidArgument("bad key".into()));
        assert_eq!(e.code(), ErrorCode::Internal);
        let e = ServiceError::from(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(e.source().is_some());
    }
}
