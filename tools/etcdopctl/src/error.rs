//! One error type, one line each, and the exit code it means.

use std::process::ExitCode;

use tonic::Code;

/// Why a command did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server, the kubeconfig or the CA is not usable as given.
    #[error("{0}")]
    Config(String),
    /// The API answered with an error.
    #[error("{what}: {message} ({code:?})")]
    Api { what: String, code: Code, message: String },
    /// Kubernetes refused or failed a call the tool needed (the CA, the token).
    #[error("{0}")]
    Kubernetes(String),
    /// The operation ended without getting where it was asked to.
    #[error("{0}")]
    Failed(String),
    /// Ctrl-C: the operation goes on in the operator.
    #[error("{0}")]
    Interrupted(String),
    /// Writing the answer failed.
    #[error("output: {0}")]
    Output(String),
}

impl CliError {
    /// An API error about `what` (such as "scale default/demo").
    pub fn api(what: impl Into<String>, status: &tonic::Status) -> Self {
        let message = match status.code() {
            Code::Unavailable => format!("cannot reach the cluster-service: {}", status.message()),
            _ => status.message().to_owned(),
        };
        Self::Api { what: what.into(), code: status.code(), message }
    }

    /// The documented exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Failed(_) | Self::Output(_) => 1,
            Self::Api { code, .. } => match code {
                Code::Unavailable | Code::DeadlineExceeded => 3,
                Code::Unauthenticated | Code::PermissionDenied => 4,
                Code::NotFound => 5,
                Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => 6,
                _ => 1,
            },
            Self::Kubernetes(_) => 4,
            Self::Config(_) => 7,
            Self::Interrupted(_) => 130,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_documented_code() {
        let code = |c| CliError::api("x", &tonic::Status::new(c, "m")).exit_code();
        assert_eq!(code(Code::Unavailable), ExitCode::from(3));
        assert_eq!(code(Code::PermissionDenied), ExitCode::from(4));
        assert_eq!(code(Code::NotFound), ExitCode::from(5));
        assert_eq!(code(Code::FailedPrecondition), ExitCode::from(6));
        assert_eq!(CliError::Config("x".into()).exit_code(), ExitCode::from(7));
        let e = CliError::api("scale default/demo", &tonic::Status::new(Code::FailedPrecondition, "paused"));
        assert_eq!(e.to_string(), "scale default/demo: paused (FailedPrecondition)");
    }
}
