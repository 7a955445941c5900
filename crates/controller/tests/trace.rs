//! One trace across processes: a controller's reconcile calls the real
//! cluster-service over a socket, which calls Kubernetes and real etcd; the
//! in-memory exporter shows one trace ID across all of them.

use std::sync::Arc;

use clap::Parser;
use etcd_fixture::EtcdCluster as Etcd;
use etcd_operator_client::{etcd::EndpointRewrite, metrics::EtcdMetrics};
use etcd_operator_controller::{
    config::ControllerConfig,
    reconcilers::health,
    rpc::{RpcClient, RpcOptions},
    runtime::Context,
};
use etcd_operator_service::{ServiceConfig, Services};
use etcd_operator_telemetry::{
    admin::Readiness,
    metrics::{ControllerMetrics, RpcMetrics},
};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use scripted_api::{
    CLUSTER, Reply, access_allowed, cluster_object, observing, scripted_api, step, token_accepted,
};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    controller: ControllerConfig,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_reconcile_through_grpc_to_kubernetes_and_etcd() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    etcd_operator_telemetry::propagation::install_propagator();
    let subscriber = tracing_subscriber::registry()
        .with(etcd_operator_telemetry::logging::otel_layer("trace-test", &provider));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // Real etcd members named like the pods of cluster prod/demo.
    let names: Vec<String> = (0..3).map(|i| format!("demo-{i}")).collect();
    let etcd = Etcd::start_named(&names).await;
    etcd.wait_healthy().await;
    let mut rewrite = EndpointRewrite::default();
    for m in etcd.members() {
        rewrite.insert(format!("{}.demo.prod.svc.cluster.local:2379", m.name), m.client_addr());
        rewrite.insert(m.client_url.trim_start_matches("http://"), m.client_addr());
    }

    // The cluster-service on a real socket, its Kubernetes API scripted.
    let cluster = cluster_object(json!({"size": 3, "version": "3.4.23"}), None);
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "demo", "namespace": "prod", "generation": 1},
        "spec": {"replicas": 3, "serviceName": "demo", "selector": {}, "template": {}},
        "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "r", "updateRevision": "r", "observedGeneration": 1}});
    // The controller's token reviewed, its call authorized; then GetClusterStatus's reads.
    let mut steps = vec![token_accepted("health-controller"), access_allowed(true)];
    steps.extend(observing(&cluster, sts));
    steps.push(step("PATCH", format!("{CLUSTER}/status"), Reply::WithStatus(cluster.clone())));
    let (kube, _record, api) = scripted_api(steps);
    let mut config = ServiceConfig::default();
    config.etcd.rewrite = rewrite;
    let service = Services::new(kube.clone(), config, EtcdMetrics::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_metrics = RpcMetrics::register(&mut Default::default());
    let reviews =
        etcd_operator_client::access::AccessReviews::new(kube.clone(), vec!["etcd-operator".into()]);
    let auth = cluster_service::auth::Auth::new(reviews, None);
    tokio::spawn(cluster_service::grpc::serve(
        listener,
        cluster_service::grpc::Transport::Plaintext,
        service,
        auth,
        Default::default(),
        server_metrics,
        std::future::pending(),
    ));

    // The health controller's reconcile, as its Controller would call it.
    let mut registry = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "scripted\n").unwrap();
    let options = RpcOptions { token_file: Some(token_file), insecure: true, ..RpcOptions::default() };
    let rpc =
        RpcClient::new(&format!("http://{addr}"), options, RpcMetrics::register(&mut registry)).unwrap();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(Context {
        name: "health",
        kube,
        rpc,
        metrics: ControllerMetrics::register(&mut registry),
        config: Args::parse_from(["health-controller"]).controller,
        synced: Readiness::default(),
        shutdown,
        exported: Default::default(),
    });
    let object = serde_json::from_value(cluster).unwrap();
    health::reconcile(Arc::new(object), ctx.clone()).await.expect("reconcile succeeds");
    api.await.unwrap();
    assert_eq!(ctx.metrics.count("health", "ok"), 1);

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let find = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!("no span {name} in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
        })
    };
    let reconcile = find("health.reconcile");
    let server = find("etcd_operator.v1alpha1.HealthService/CheckHealth");
    let operation = find("CheckHealth");
    let kube_get = find("kube.get");
    let kube_list = find("kube.list");
    let etcd_call = find("etcd.member_list");
    let trace: TraceId = reconcile.span_context.trace_id();
    assert_ne!(trace, TraceId::INVALID);
    for span in [server, operation, kube_get, kube_list, etcd_call] {
        assert_eq!(span.span_context.trace_id(), trace, "{} is not in the reconcile's trace", span.name);
    }
    // The server span's parent came over the wire from the controller's side.
    assert_ne!(server.parent_span_id, SpanId::INVALID);
    assert!(
        spans
            .iter()
            .any(|s| s.span_context.span_id() == server.parent_span_id && s.span_context.trace_id() == trace)
    );
    let attrs: Vec<String> =
        operation.attributes.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect();
    assert!(attrs.contains(&"cluster.name=demo".to_string()), "{attrs:?}");
    assert!(attrs.contains(&"cluster.namespace=prod".to_string()), "{attrs:?}");
}
