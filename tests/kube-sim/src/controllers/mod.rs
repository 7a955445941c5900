//! Built-in controllers that run inside kube-sim, as kube-controller-manager
//! would: they read and write the store directly, with the same semantics as
//! API writes.

mod changes;
pub mod deployment;
pub mod namespace;
pub mod pvc_protection;
pub mod statefulset;

use std::{sync::Arc, time::Duration};

use changes::Changes;

use crate::api::ApiState;

/// How often the controllers look for changes.
const TICK: Duration = Duration::from_millis(100);

/// Runs the controllers until the task is dropped. Each pass reconciles what changed since the
/// last one began (its own writes included, so a chain of steps goes on in the next pass); the
/// first looks at everything.
pub async fn run(state: Arc<ApiState>) {
    let mut ticker = tokio::time::interval(TICK);
    let mut seen: Option<u64> = None;
    loop {
        ticker.tick().await;
        let result = state.store.transact(|txn| {
            let start = txn.rv();
            let changes = seen.map_or_else(Changes::everything, |rv| Changes::since(txn, rv));
            if changes.any {
                statefulset::reconcile_changed(&state.registry, txn, &changes);
                deployment::reconcile_changed(&state.registry, txn, &changes);
                // Cheap without changes to act on: they look at namespaces and deleted claims only.
                namespace::reconcile_all(txn);
                pvc_protection::reconcile_all(txn);
                namespace::ensure_default_accounts(&state.registry, txn);
            }
            Ok(start)
        });
        match result {
            Ok(start) => seen = Some(start),
            Err(e) => tracing::warn!("controller pass failed: {}", e.message),
        }
    }
}
