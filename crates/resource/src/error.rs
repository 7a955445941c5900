//! Errors of the resource layer: one way of reporting any object failure.

/// A failed operation on a Kubernetes object.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The API server refused or failed the call.
    #[error("{verb} {kind} {namespace}/{name}: {source}")]
    Api {
        /// What was attempted (apply, get, delete, scale, list).
        verb: &'static str,
        /// Object kind.
        kind: String,
        /// Namespace of the object.
        namespace: String,
        /// Name of the object (empty for lists).
        name: String,
        /// The API error (boxed: it is large and errors are rare).
        #[source]
        source: Box<kube::Error>,
    },
    /// An object could not be built from the cluster spec.
    #[error("cannot build {kind}: {reason}")]
    Template {
        /// Object kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
}

impl ResourceError {
    /// HTTP status of an API error, if any.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            Self::Template { .. } => None,
        }
    }

    /// Whether the object did not exist.
    pub fn is_not_found(&self) -> bool {
        self.status_code() == Some(404)
    }

    /// Whether the API server refused the write because another manager owns the field.
    pub fn is_conflict(&self) -> bool {
        self.status_code() == Some(409)
    }

    /// Whether repeating the call later may succeed.
    pub fn is_transient(&self) -> bool {
        match self.status_code() {
            Some(code) => code == 429 || code >= 500,
            None => matches!(self, Self::Api { .. }),
        }
    }
}
