//! Errors of a reconcile, classified for metrics and backoff.

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The cluster-service answered with an error.
    #[error("cluster-service: {0}")]
    Rpc(#[from] tonic::Status),
    /// The Kubernetes API failed (finalizer bookkeeping).
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// Finalizer bookkeeping failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Cleanup has started but owned objects still exist.
    #[error("deletion in progress")]
    DeletionInProgress,
    /// The object lacks what a reconcile needs (namespace).
    #[error("invalid object: {0}")]
    InvalidObject(String),
}

impl ControllerError {
    /// Short category for the `reconciles{result}` metric.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Rpc(s) => match s.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                    "unavailable"
                }
                tonic::Code::Aborted => "aborted",
                tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => "rejected",
                tonic::Code::NotFound => "not_found",
                _ => "internal",
            },
            Self::Kube(_) | Self::Finalizer(_) => "kubernetes",
            Self::DeletionInProgress => "deleting",
            Self::InvalidObject(_) => "invalid_object",
        }
    }
}
