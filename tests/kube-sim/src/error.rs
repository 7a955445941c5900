//! API errors as Kubernetes `Status` objects.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// An error answer of the API server.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub code: u16,
    /// Machine reason (NotFound, Conflict, AlreadyExists, Invalid, BadRequest, Gone, ...).
    pub reason: &'static str,
    /// Human message.
    pub message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into() }
    }

    /// 404.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(404, "NotFound", format!("{what} not found"))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(what: impl std::fmt::Display) -> Self {
        Self::new(409, "AlreadyExists", format!("{what} already exists"))
    }

    /// 409 Conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "Conflict", message)
    }

    /// 422 Invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 410 Gone (watch from a compacted resourceVersion).
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 401 Unauthorized: the credentials are not valid (the reason stays in the server's log, as
    /// kube-apiserver's answer is only "Unauthorized").
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// The `Status` object.
    pub fn status(&self) -> serde_json::Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.status())).into_response()
    }
}

/// Why kube-sim did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listening address could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The serving certificate could not be made.
    #[error("serving certificate: {0}")]
    Tls(String),
    /// The key that signs service account tokens could not be made.
    #[error("token signing key: {0}")]
    TokenKey(String),
    /// The kubeconfig could not be written.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[source] std::io::Error),
    /// A built-in namespace could not be created.
    #[error("namespace {namespace}: {}", .answer.message)]
    Namespace {
        /// Which one.
        namespace: &'static str,
        /// The API's answer.
        answer: ApiError,
    },
    /// A default object (bootstrap RBAC) could not be created.
    #[error("bootstrap {object}: {}", .answer.message)]
    Bootstrap {
        /// Which resource.
        object: &'static str,
        /// The API's answer.
        answer: ApiError,
    },
    /// The node (network namespace, directories) could not be set up.
    #[error("node: {0}")]
    Node(String),
}
