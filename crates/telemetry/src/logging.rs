//! Logs (human or JSON) and traces (OTLP when an endpoint is configured).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging and tracing settings every process takes on its command line.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TelemetryConfig {
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint for traces (for example http://otel-collector:4317); traces are off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Flushes and shuts the tracer provider down: [`TelemetryGuard::shutdown`] before the runtime
/// ends, or (outside a current-thread runtime) when dropped.
#[must_use = "traces are lost when the guard is dropped early"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports the spans still queued and stops the exporter. The processor's wait for the last
    /// export blocks a thread while the export's I/O runs on this runtime: on a blocking thread
    /// the runtime goes on, even a current-thread one (where a wait on its only thread would time
    /// out after 5 s and lose the spans).
    pub async fn shutdown(mut self) {
        if let Some(p) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || p.shutdown()).await;
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(p) = self.provider.take() else { return };
        let current_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if current_thread {
            // Waiting here would stall the runtime the export needs: the wait goes to a thread
            // (spans still queued are lost if the process ends first; hence `shutdown`).
            std::thread::spawn(move || p.shutdown());
        } else {
            let _ = p.shutdown();
        }
    }
}

/// Builds a tracer provider exporting to `exporter`, tagged with `service`.
pub fn tracer_provider<E>(service: &str, exporter: E) -> SdkTracerProvider
where
    E: opentelemetry_sdk::trace::SpanExporter + 'static,
{
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service.to_owned()).build())
        .build()
}

/// The tracing layer that turns spans into OpenTelemetry spans of `provider`.
pub fn otel_layer<S>(
    service: &str,
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(service.to_owned()))
}

/// Installs logging, the W3C propagator and (with an endpoint) the OTLP exporter.
///
/// `RUST_LOG` overrides `default_filter`.
pub fn init(service: &str, config: &TelemetryConfig, default_filter: &str) -> Result<TelemetryGuard, String> {
    crate::propagation::install_propagator();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let fmt_layer = match config.log_format {
        LogFormat::Text => fmt::layer().with_target(true).boxed(),
        LogFormat::Json => fmt::layer().json().flatten_event(true).with_current_span(true).boxed(),
    };
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| format!("--otlp-endpoint {endpoint}: {e}"))?;
            Some(tracer_provider(service, exporter))
        }
        None => None,
    };
    let otel = provider.as_ref().map(|p| otel_layer::<Registry>(service, p));
    // Another subscriber already installed (tests) is left in place.
    let _ = tracing_subscriber::registry().with(otel).with(filter).with(fmt_layer).try_init();
    Ok(TelemetryGuard { provider })
}
