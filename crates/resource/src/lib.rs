//! Resource layer: the Kubernetes objects an EtcdCluster owns.
//!
//! - [`names`]: every name, label and URL derived from a cluster.
//! - [`templates`]: pure builders of each object from an EtcdCluster.
//! - [`managers`]: idempotent server-side apply, get, delete and scale.

#![warn(clippy::too_many_lines)]

pub mod error;
pub mod managers;
pub mod names;
pub mod templates;

pub use error::ResourceError;
