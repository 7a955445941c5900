//! The node's network part: a network namespace per pod with its address,
//! the host's path to the pods (and its faults), and cluster DNS through
//! hosts files.

pub mod dns;
pub mod network;
