//! A fake OpenTelemetry collector: an OTLP/gRPC trace endpoint on loopback
//! that keeps every span it receives, with the exporting service's name.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
};
use tokio::net::TcpListener;

/// One received span.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    /// `service.name` of the process that exported it.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Trace ID, hex.
    pub trace_id: String,
    /// Span ID, hex.
    pub span_id: String,
    /// Parent span ID, hex (empty for a root).
    pub parent_span_id: String,
    /// String attributes as `key=value`.
    pub attributes: Vec<String>,
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<ReceivedSpan>>>);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| format!("{}={}", a.key, text(&a.value)))
                        .collect(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// A running collector.
pub struct Collector {
    /// `http://127.0.0.1:port`, for `--otlp-endpoint`.
    pub endpoint: String,
    sink: Sink,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// Starts listening on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let sink = Sink::default();
        let server = tonic::transport::Server::builder().add_service(TraceServiceServer::new(sink.clone()));
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn(async move {
            let _ = server.serve_with_incoming(incoming).await;
        });
        Self { endpoint, sink, task }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.sink.0.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
