//! Client layer: everything that talks to the outside world.
//!
//! - [`etcd`]: the etcd cluster (membership, maintenance, snapshots), with
//!   per-member connections where a per-member answer is needed.
//! - [`kubernetes`]: building the Kubernetes client.
//! - [`metrics`]: counts and latencies of every outside call.
//! - [`backup_storage`]: where snapshots are stored.

pub mod backup_storage;
pub mod error;
pub mod etcd;
pub mod kubernetes;
pub mod metrics;

pub use error::ClientError;
