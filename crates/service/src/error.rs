//! Errors of the service layer; the gRPC and condition mappings read these.

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
}

impl From<Violations> for ServiceError {
    fn from(v: Violations) -> Self {
        Self::InvalidArgument(v)
    }
}

impl From<ResourceError> for ServiceError {
    fn from(e: ResourceError) -> Self {
        match e.status_code() {
            Some(404) => Self::NotFound { kind: "object", name: e.to_string() },
            Some(409) => Self::Aborted(e.to_string()),
            // The API server refused the object: admission rules (CEL, schema) name the field.
            Some(400 | 422) => Self::FailedPrecondition(e.to_string()),
            _ if e.is_transient() => Self::Unavailable(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

impl From<ClientError> for ServiceError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::InvalidArgument(m) => Self::Internal(m),
            e if e.is_transient() => Self::Unavailable(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}
