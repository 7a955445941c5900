//! Built-in controllers that run inside kube-sim, as kube-controller-manager
//! would: they read and write the store directly, with the same semantics as
//! API writes.

pub mod deployment;
pub mod namespace;
pub mod pvc_protection;
pub mod statefulset;

use std::{sync::Arc, time::Duration};

use crate::api::ApiState;

/// How often every controller resyncs.
const TICK: Duration = Duration::from_millis(100);

/// Runs the controllers until the task is dropped.
pub async fn run(state: Arc<ApiState>) {
    let mut ticker = tokio::time::interval(TICK);
    loop {
        ticker.tick().await;
        let result = state.store.transact(|txn| {
            statefulset::reconcile_all(&state.registry, txn);
            deployment::reconcile_all(&state.registry, txn);
            namespace::reconcile_all(txn);
            pvc_protection::reconcile_all(txn);
            namespace::ensure_default_accounts(&state.registry, txn);
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!("controller pass failed: {}", e.message);
        }
    }
}
