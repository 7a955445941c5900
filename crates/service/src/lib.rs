//! Service layer: every business rule of the operator, one folder per
//! capability, and the design's services as types.
//!
//! Each capability (`lifecycle`, `scaling` with `stop` and `roll`,
//! `recovery::{replace, quorum}`, `health`, `backup`, `restore`, `security`, `upgrade`) keeps its pure decisions in
//! `decide.rs` (or `decide/`), functions of plain observed data tested without
//! any server, beside the effects in `mod.rs` that gather what they need
//! through the resource and client layers and carry them out. The effects are
//! methods of the capability's service ([`LifecycleService`],
//! [`ScalingService`], [`RecoveryService`], [`HealthService`],
//! [`BackupService`], [`RestoreService`]); each holds the shared core and only
//! the services it hands work to, and [`Services`] builds them all over one.
//!
//! What they share has its own home: `core` (client, settings, lock,
//! observation, task tables), [`status`] (the status every capability records),
//! `steps` (the state machines' step loop and one executor of their effects),
//! [`plan`] (the objects the spec asks for: `desire`), [`membership`],
//! [`operation`], [`observe`], [`transfer`], [`refusal`].
//! `scripts/check-service-layout.sh` checks that no `decide` imports kube,
//! tokio or the client crate, and that no module imports form a circle.

#![warn(clippy::too_many_lines)]

pub mod api_tls;
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
pub mod reads;
pub mod recovery;
pub mod refusal;
pub mod restore;
pub mod roll;
mod saved_snapshot;
pub mod scaling;
pub mod security;
mod services;
pub mod status;
pub(crate) mod steps;
pub mod stop;
mod tasks;
pub mod transfer;
pub mod upgrade;
pub mod validation;

pub use crate::core::ClusterOutcome;
pub use crate::services::Services;
pub use backup::BackupService;
pub use config::ServiceConfig;
pub use error::ServiceError;
pub use health::HealthService;
pub use lifecycle::{LifecycleService, SpecPatch, SpecUpdate};
pub use recovery::RecoveryService;
pub use restore::RestoreService;
pub use roll::RollService;
pub use scaling::ScalingService;
