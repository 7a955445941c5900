//! Service layer: every business rule of the operator, one folder per
//! capability.
//!
//! Each capability (`lifecycle`, `scaling`, `stop`, `recovery::{replace,
//! quorum}`, `health`, `backup`, `restore`) keeps its pure decisions in
//! `decide.rs` (or `decide/`), functions of plain observed data tested without
//! any server, beside the effects in `mod.rs` that gather what they need
//! through the resource and client layers and carry them out. What they share
//! has its own home: [`core`](crate::ClusterService) (client, settings, lock,
//! observation, tasks), [`membership`], [`operation`], [`observe`],
//! [`transfer`]. `scripts/test.sh` checks that no `decide` imports kube, tokio
//! or the client crate, and that no module imports form a circle.

#![warn(clippy::too_many_lines)]

pub mod backup;
pub mod call_budget;
pub mod config;
pub(crate) mod core;
pub mod error;
mod events;
#[cfg(test)]
mod fixtures;
pub mod health;
mod in_flight;
mod lease;
pub mod lifecycle;
pub mod membership;
pub mod observe;
pub mod operation;
pub mod plan;
pub mod quorum_evidence;
pub mod recovery;
pub mod refusal;
pub mod restore;
mod saved_snapshot;
pub mod scaling;
pub mod stop;
mod tasks;
pub mod transfer;
pub mod validation;

pub use crate::core::{ClusterOutcome, ClusterService};
pub use backup::BackupService;
pub use config::ServiceConfig;
pub use error::ServiceError;
