//! Calls in flight per cluster within this replica. The Lease lock keeps
//! replicas apart, but its holder is the replica: a second, concurrent call of
//! the same replica would take it again (and the first to finish would
//! release it under the other). This keeps one replica's calls apart too.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

/// The clusters this replica is changing now.
#[derive(Clone, Debug, Default)]
pub(crate) struct InFlight(Arc<Mutex<HashSet<String>>>);

/// A call in flight; leaving (on drop, also when cancelled or panicking) frees the cluster.
#[derive(Debug)]
pub(crate) struct Entered {
    set: InFlight,
    key: String,
}

impl InFlight {
    /// Enters `key`, unless another call of this replica is in it.
    pub(crate) fn enter(&self, key: &str) -> Option<Entered> {
        let fresh = self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned());
        fresh.then(|| Entered { set: self.clone(), key: key.to_owned() })
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.set.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_per_cluster_at_a_time() {
        let calls = InFlight::default();
        let first = calls.enter("prod/demo").expect("free");
        assert!(calls.enter("prod/demo").is_none(), "taken");
        assert!(calls.enter("prod/other").is_some(), "other clusters are independent");
        drop(first);
        assert!(calls.enter("prod/demo").is_some(), "free again once the call left");
    }
}
