//! One trace across OS processes: a controller's reconcile, the
//! cluster-service call it makes, and the etcd calls inside, exported over
//! OTLP by each process to one collector.

use std::{collections::BTreeSet, time::Duration};

use e2e_tests::{Stack, eventually, otlp::Collector};

const CLUSTER: &str = "apiVersion: etcd.operator.dev/v1alpha1
kind: EtcdCluster
metadata:
  name: traced
  namespace: default
spec:
  size: 1
  version: 3.4.23
  storage:
    size: 1Gi
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_a_controller_the_cluster_service_and_etcd() {
    let collector = Collector::start().await;
    let otlp = format!("--otlp-endpoint={}", collector.endpoint);
    let mut stack = Stack::start("one_trace_spans_a_controller_the_cluster_service_and_etcd").await;
    let endpoint = stack.start_cluster_service("cluster-service-0", std::slice::from_ref(&otlp)).await;
    let lifecycle =
        stack.start_controller("lifecycle", "lifecycle-a", &endpoint, std::slice::from_ref(&otlp)).await;
    stack.start_controller("health", "health-a", &endpoint, std::slice::from_ref(&otlp)).await;
    stack.kubectl_apply(CLUSTER);

    // A trace whose root is a controller's reconcile and which holds the cluster-service's
    // server span (its parent on the controller's side) and an etcd call.
    let mut found = None;
    eventually("one trace across controller, cluster-service and etcd", Duration::from_secs(90), || {
        let spans = collector.spans();
        found = spans
            .iter()
            .filter(|s| s.name.ends_with(".reconcile") && s.service.ends_with("-controller"))
            .find_map(|root| {
                let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == root.trace_id).collect();
                let services: BTreeSet<_> = trace.iter().map(|s| s.service.as_str()).collect();
                let etcd =
                    trace.iter().any(|s| s.service == "cluster-service" && s.name.starts_with("etcd."));
                let crossed = trace.iter().any(|s| {
                    s.service == "cluster-service"
                        && trace.iter().any(|p| p.span_id == s.parent_span_id && p.service == root.service)
                });
                (services.contains("cluster-service") && etcd && crossed).then(|| (root.clone(), trace.len()))
            });
        let done = found.is_some();
        async move { done }
    })
    .await;
    let (root, spans) = found.unwrap();
    assert!(root.attributes.contains(&"cluster.name=traced".to_owned()), "{:?}", root.attributes);
    assert!(root.attributes.contains(&"cluster.namespace=default".to_owned()), "{:?}", root.attributes);
    eprintln!("trace {} from {}: {spans} spans", root.trace_id, root.service);

    // Spans still queued at exit reach the collector before the process ends (one runtime thread:
    // a wait on it would stall the export, time out and lose them): the Lease's release is last.
    let status = stack.processes[lifecycle].terminate().await.expect("the controller exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    let spans = collector.spans();
    let released = spans.iter().any(|s| s.service == "lifecycle-controller" && s.name == "lease.release");
    assert!(released, "no lease.release span from the lifecycle-controller after it exited");
}
