//! Client layer: everything that talks to the outside world.
//!
//! - [`access`]: who a caller of the gRPC API is and what RBAC lets it do (TokenReview,
//!   SubjectAccessReview).
//! - [`etcd`]: the etcd cluster (membership, maintenance, snapshots), with
//!   per-member connections where a per-member answer is needed.
//! - [`kubernetes`]: building the Kubernetes client.
//! - [`metrics`]: counts and latencies of every outside call.
//! - [`storage`]: where snapshots are stored (a directory or an S3-compatible store).
//! - [`transfer`]: progress of long transfers.

#![warn(clippy::too_many_lines)]

pub mod access;
pub mod error;
pub mod etcd;
pub mod kubernetes;
pub mod metrics;
pub mod storage;
pub mod transfer;

pub use error::ClientError;
