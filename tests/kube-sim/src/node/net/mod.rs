//! The node's network part: a network namespace per pod with its address,
//! the host's path to the pods (and its faults), cluster DNS through
//! hosts files, and NetworkPolicy ingress enforcement.

mod addresses;
pub mod dns;
pub mod network;
pub mod policy;
