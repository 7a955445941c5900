//! Operation metrics of the client layer (prometheus-client).

use std::time::Instant;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

/// Labels of one outside call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// Operation name (member_list, status, defragment, ...).
    pub operation: String,
    /// `ok` or an error class.
    pub outcome: String,
}

/// Counters and latencies of etcd calls.
#[derive(Clone)]
pub struct EtcdMetrics {
    calls: Family<CallLabels, Counter>,
    latency: Family<CallLabels, Histogram>,
}

impl Default for EtcdMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0])
            }),
        }
    }
}

impl EtcdMetrics {
    /// Creates the metrics and registers them under `etcd_client_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register("etcd_client_calls", "etcd calls by operation and outcome", m.calls.clone());
        registry.register(
            "etcd_client_call_duration_seconds",
            "etcd call latency by operation and outcome",
            m.latency.clone(),
        );
        m
    }

    /// Records one finished call.
    pub fn observe(&self, operation: &str, outcome: &str, started: Instant) {
        let labels = CallLabels { operation: operation.into(), outcome: outcome.into() };
        self.calls.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    }

    /// Number of calls recorded for an operation and outcome.
    pub fn count(&self, operation: &str, outcome: &str) -> u64 {
        self.calls.get_or_create(&CallLabels { operation: operation.into(), outcome: outcome.into() }).get()
    }
}
