//! Service layer: every business rule of the operator.
//!
//! Decisions are pure functions of observed state ([`decisions`]), tested
//! without any server; the services ([`cluster`]) gather the observations
//! through the resource and client layers and carry the decisions out.

pub mod backup;
pub mod call_budget;
pub mod cluster;
pub mod config;
pub(crate) mod core;
pub mod decisions;
pub mod error;
mod events;
pub mod health;
mod in_flight;
mod lease;
pub mod membership;
pub mod observe;
pub mod operation;
pub mod quorum_recovery;
mod quorum_source;
pub mod recovery;
pub mod restore;
mod saved_snapshot;
pub mod scaling;
pub mod stop;
mod tasks;
pub mod validation;
mod verify;

pub use crate::core::{ClusterOutcome, ClusterService};
pub use backup::BackupService;
pub use config::ServiceConfig;
pub use error::ServiceError;
