//! Shared by every layer: cluster references, field-level validation
//! errors and time stamps.

#![warn(clippy::too_many_lines)]

pub mod cluster_ref;
pub mod duration;
pub mod quorum;
pub mod time;
pub mod violation;

pub use cluster_ref::ClusterRef;
pub use quorum::quorum;
pub use violation::{FieldViolation, Violations};
