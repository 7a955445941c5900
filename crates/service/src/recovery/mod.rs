//! Recovery: replacing a member etcd has lost touch with (`replace`), and
//! recreating a cluster that lost its quorum (`quorum`).

pub mod quorum;
pub mod replace;

use std::sync::Arc;

use crate::{core::Core, restore::RestoreService};

/// Recovery: replacing a lost member, and recreating a cluster that lost its quorum.
#[derive(Clone)]
pub struct RecoveryService {
    pub(crate) core: Arc<Core>,
    /// Restoring from a backup or snapshot, which this service hands work to.
    pub(crate) restore: RestoreService,
}

impl RecoveryService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { restore: RestoreService::new(core.clone()), core }
    }
}
