//! Recovery: replacing a member etcd has lost touch with (`replace`), and
//! recreating a cluster that lost its quorum (`quorum`).

pub mod quorum;
pub mod replace;
