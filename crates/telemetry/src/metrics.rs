//! Prometheus metrics of the processes (prometheus-client).

use std::time::Instant;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

fn latency_family<
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + Send + Sync + std::fmt::Debug + 'static,
>() -> Family<L, Histogram> {
    Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS))
}

/// Labels of a finished RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// `server` or `client`.
    pub side: &'static str,
    /// Fully qualified service.
    pub service: String,
    /// Method name.
    pub method: String,
    /// gRPC status code name (`OK`, `ABORTED`, ...).
    pub code: String,
}

/// RPC counts and latencies, on both sides of a call.
#[derive(Clone)]
pub struct RpcMetrics {
    requests: Family<RpcLabels, Counter>,
    duration: Family<RpcLabels, Histogram>,
}

impl RpcMetrics {
    /// Creates and registers `grpc_requests` and `grpc_request_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self { requests: Family::default(), duration: latency_family() };
        registry.register("grpc_requests", "gRPC calls by side, method and status code", m.requests.clone());
        registry.register("grpc_request_duration_seconds", "gRPC call latency", m.duration.clone());
        m
    }

    /// Records one call.
    pub fn observe(&self, labels: RpcLabels, started: Instant) {
        self.requests.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    }
}

/// Labels of a finished reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// Controller name.
    pub controller: String,
    /// `ok` or an error category (`unavailable`, `aborted`, `invalid`, `internal`, ...).
    pub result: String,
}

/// Reconcile counts, durations and errors by category, plus leadership.
#[derive(Clone)]
pub struct ControllerMetrics {
    reconciles: Family<ReconcileLabels, Counter>,
    duration: Family<ReconcileLabels, Histogram>,
    leader: Gauge,
}

impl ControllerMetrics {
    /// Creates and registers `reconciles`, `reconcile_duration_seconds` and `leader`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self { reconciles: Family::default(), duration: latency_family(), leader: Gauge::default() };
        registry.register("reconciles", "reconciles by controller and result", m.reconciles.clone());
        registry.register("reconcile_duration_seconds", "reconcile latency", m.duration.clone());
        registry.register("leader", "1 while this instance holds its controller's Lease", m.leader.clone());
        m
    }

    /// Records one reconcile.
    pub fn observe(&self, controller: &str, result: &str, started: Instant) {
        let labels = ReconcileLabels { controller: controller.into(), result: result.into() };
        self.reconciles.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    }

    /// Publishes whether this instance leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Whether this instance currently leads.
    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// Reconciles recorded for a controller and result.
    pub fn count(&self, controller: &str, result: &str) -> u64 {
        self.reconciles
            .get_or_create(&ReconcileLabels { controller: controller.into(), result: result.into() })
            .get()
    }
}

/// Text exposition of a registry (OpenMetrics).
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}
