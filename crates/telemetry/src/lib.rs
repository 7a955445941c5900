//! Observability shared by every process: structured logs, OpenTelemetry
//! traces exported over OTLP with W3C trace context carried across every
//! gRPC call, Prometheus metrics, and the `/healthz`, `/readyz` and
//! `/metrics` endpoints.

#![warn(clippy::too_many_lines)]

pub mod admin;
pub mod grpc;
pub mod logging;
pub mod metrics;
pub mod propagation;

pub use logging::{LogFormat, TelemetryConfig, TelemetryGuard};
