//! Shared by every layer: cluster references, field-level validation
//! errors, time stamps and logging setup.

pub mod cluster_ref;
pub mod logging;
pub mod time;
pub mod violation;

pub use cluster_ref::ClusterRef;
pub use violation::{FieldViolation, Violations};
