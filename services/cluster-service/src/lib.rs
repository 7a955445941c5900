//! The cluster-service: a tonic server hosting the service layer.
//!
//! It is the only process that writes the objects the operator manages and
//! the only one that changes etcd. It is stateless: any replica can serve any
//! call.

#![warn(clippy::too_many_lines)]

pub mod auth;
pub mod config;
pub mod grpc;
pub mod tls;
