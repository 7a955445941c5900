//! Controller layer: each controller translates Kubernetes events into calls
//! to the cluster-service and requeues as the answer says. No business logic
//! lives here; the process skeleton (leader election, admin endpoint,
//! telemetry, shutdown) is shared by every controller binary.

#![warn(clippy::too_many_lines)]

pub mod config;
pub mod error;
pub mod exported;
pub mod leader;
pub mod reconcilers;
pub mod rpc;
pub mod runtime;

pub use error::ControllerError;
