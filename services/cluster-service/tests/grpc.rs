//! The real gRPC server on a TCP socket, called by the generated clients.

use std::{net::SocketAddr, time::Duration};

use cluster_service::grpc;
use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_proto::v1alpha1::{self as pb, cluster_service_client::ClusterServiceClient};
use etcd_operator_service::{ServiceConfig, Services};
use scripted_api::{CLUSTER, Reply, scripted_api, step};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

/// Starts the server on a free loopback port; it stops when the test's runtime ends.
async fn start(client: kube::Client) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = Services::new(client, ServiceConfig::default(), EtcdMetrics::default());
    let metrics = etcd_operator_telemetry::metrics::RpcMetrics::register(&mut Default::default());
    tokio::spawn(grpc::serve(listener, service, metrics, std::future::pending()));
    addr
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

fn demo() -> Option<pb::ClusterRef> {
    Some(pb::ClusterRef { namespace: "prod".into(), name: "demo".into() })
}

#[tokio::test]
async fn invalid_input_is_refused_with_every_field_named() {
    let (kube, record, _api) = scripted_api(vec![]);
    let mut client = ClusterServiceClient::new(channel(start(kube).await).await);
    let request = pb::CreateClusterRequest {
        cluster: Some(pb::ClusterRef { namespace: "prod".into(), name: "Demo_1".into() }),
        spec: Some(pb::ClusterSpec {
            size: 10,
            version: "3.5.2".into(),
            storage_size: "lots".into(),
            ..Default::default()
        }),
    };
    let status = client.create_cluster(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status.get_details_bad_request().expect("google.rpc.BadRequest details");
    let fields: Vec<_> = bad.field_violations.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["cluster.name"], "malformed references are refused before the spec rules run");

    let request = pb::CreateClusterRequest {
        cluster: demo(),
        spec: Some(pb::ClusterSpec {
            size: 10,
            version: "3.5.2".into(),
            storage_size: "lots".into(),
            ..Default::default()
        }),
    };
    let status = client.create_cluster(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status.get_details_bad_request().unwrap();
    let fields: Vec<_> = bad.field_violations.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["spec.size", "spec.version", "spec.storage_size"]);
    assert!(bad.field_violations[1].description.contains("can lose committed writes"));
    assert!(status.message().contains("spec.size: must be between 0 and 9"));

    let status = client.get_cluster_status(pb::GetClusterStatusRequest { cluster: None }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "cluster");
    assert!(record.lock().unwrap().is_empty(), "nothing reaches Kubernetes for invalid input");
}

#[tokio::test]
async fn unknown_clusters_are_not_found() {
    let (kube, _record, api) = scripted_api(vec![step("GET", CLUSTER, Reply::NotFound)]);
    let mut client = ClusterServiceClient::new(channel(start(kube).await).await);
    let status =
        client.get_cluster_status(pb::GetClusterStatusRequest { cluster: demo() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("prod/demo"));
    api.await.unwrap();
}

#[tokio::test]
async fn deadlines_are_honoured() {
    // An API server that never answers.
    let (service, _handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let kube = kube::Client::new(service, "default");
    let mut client = ClusterServiceClient::new(channel(start(kube).await).await);
    let mut request = tonic::Request::new(pb::GetClusterStatusRequest { cluster: demo() });
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = client.get_cluster_status(request).await.unwrap_err();
    assert!(matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let (kube, _record, _api) = scripted_api(vec![]);
    let addr = start(kube).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(addr).await);
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "etcd_operator.v1alpha1.ClusterService".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        resp.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel(addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream =
        reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"etcd_operator.v1alpha1.ClusterService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}
