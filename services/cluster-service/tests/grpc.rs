//! The real gRPC server on a TCP socket, called by the generated clients.

use std::{net::SocketAddr, time::Duration};

use cluster_service::grpc;
use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_proto::v1alpha1::{self as pb, cluster_service_client::ClusterServiceClient};
use etcd_operator_service::{ServiceConfig, Services};
use scripted_api::{CLUSTER, Reply, access_allowed, scripted_api, step, token_accepted};
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt;

/// Starts the server on a free loopback port; it stops when the test's runtime ends.
async fn start(client: kube::Client) -> SocketAddr {
    start_with(client, grpc::Limits::default()).await
}

/// [`start`] within `limits`.
async fn start_with(client: kube::Client, limits: grpc::Limits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = Services::new(client.clone(), ServiceConfig::default(), EtcdMetrics::default());
    let metrics = etcd_operator_telemetry::metrics::RpcMetrics::register(&mut Default::default());
    let reviews = etcd_operator_client::access::AccessReviews::new(client, vec!["etcd-operator".into()]);
    let auth = cluster_service::auth::Auth::new(reviews, None);
    let plaintext = grpc::Transport::Plaintext;
    tokio::spawn(grpc::serve(listener, plaintext, service, auth, limits, metrics, std::future::pending()));
    addr
}

/// `message` with a bearer token.
fn authed<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", "Bearer scripted".parse().unwrap());
    r
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

fn demo() -> Option<pb::ClusterRef> {
    Some(pb::ClusterRef { namespace: "prod".into(), name: "demo".into() })
}

#[tokio::test]
async fn invalid_input_is_refused_with_every_field_named() {
    // Authenticated once (then remembered), authorized once the reference is well-formed (as
    // Kubernetes authorizes before validating); nothing else reaches Kubernetes.
    let (kube, record, _api) = scripted_api(vec![token_accepted("tooling"), access_allowed(true)]);
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
    let status = client.create_cluster(authed(request)).await.unwrap_err();
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
    let status = client.create_cluster(authed(request)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status.get_details_bad_request().unwrap();
    let fields: Vec<_> = bad.field_violations.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["spec.size", "spec.version", "spec.storage_size"]);
    assert!(bad.field_violations[1].description.contains("can lose committed writes"));
    assert!(status.message().contains("spec.size: must be between 0 and 9"));

    let status = client
        .get_cluster_status(authed(pb::GetClusterStatusRequest { cluster: None, ..Default::default() }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "cluster");
    let paths: Vec<String> = record.lock().unwrap().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [scripted_api::TOKEN_REVIEWS, scripted_api::ACCESS_REVIEWS],
        "nothing but the caller's reviews for invalid input"
    );
}

#[tokio::test]
async fn unknown_clusters_are_not_found() {
    let steps = vec![token_accepted("tooling"), access_allowed(true), step("GET", CLUSTER, Reply::NotFound)];
    let (kube, _record, api) = scripted_api(steps);
    let mut client = ClusterServiceClient::new(channel(start(kube).await).await);
    let status = client
        .get_cluster_status(authed(pb::GetClusterStatusRequest { cluster: demo(), ..Default::default() }))
        .await
        .unwrap_err();
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
    let mut request = authed(pb::GetClusterStatusRequest { cluster: demo(), ..Default::default() });
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = client.get_cluster_status(request).await.unwrap_err();
    assert!(matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    // Health without a token (probes); reflection for an authenticated caller.
    let (kube, _record, _api) = scripted_api(vec![token_accepted("tooling")]);
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
    let unauthenticated = reflection.server_reflection_info(tokio_stream::iter(vec![request.clone()])).await;
    assert_eq!(unauthenticated.unwrap_err().code(), Code::Unauthenticated);
    let mut stream = reflection
        .server_reflection_info(authed(tokio_stream::iter(vec![request])))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"etcd_operator.v1alpha1.ClusterService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}

#[tokio::test]
async fn calls_without_a_token_or_the_right_are_refused_naming_the_caller_and_the_permission() {
    // Refused on every cluster of the namespace, then on the one named.
    let steps = vec![token_accepted("tooling"), access_allowed(false), access_allowed(false)];
    let (kube, record, api) = scripted_api(steps);
    let mut client = ClusterServiceClient::new(channel(start(kube).await).await);
    let status = client
        .get_cluster_status(pb::GetClusterStatusRequest { cluster: demo(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("no bearer token"), "{}", status.message());
    let status = client
        .delete_cluster(authed(pb::DeleteClusterRequest { cluster: demo(), force: true }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "system:serviceaccount:etcd-operator:tooling may not delete etcdclusters.etcd.operator.dev \"demo\" in namespace \"prod\": scripted"
    );
    assert!(!status.message().contains("scripted-token"));
    api.await.unwrap();
    let record = record.lock().unwrap();
    let every = &record[1].body["spec"]["resourceAttributes"];
    assert_eq!(every["verb"], "delete", "force asks for delete: {every}");
    assert!(every.get("name").is_none(), "first on every cluster: {every}");
    assert_eq!(record[2].body["spec"]["resourceAttributes"]["name"], "demo");
}

#[tokio::test]
async fn oversized_messages_and_calls_past_the_connections_limit_are_refused() {
    // An API server that never answers: the first call waits on its caller's review.
    let (service, _handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let kube = kube::Client::new(service, "default");
    let limits = grpc::Limits { calls_per_connection: 1, max_message_bytes: 1 << 20, ..Default::default() };
    let conn = channel(start_with(kube, limits).await).await;
    let mut first = ClusterServiceClient::new(conn.clone());
    let waiting = tokio::spawn(async move {
        first
            .get_cluster_status(authed(pb::GetClusterStatusRequest { cluster: demo(), ..Default::default() }))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = ClusterServiceClient::new(conn.clone());
    let status = second
        .get_cluster_status(authed(pb::GetClusterStatusRequest { cluster: demo(), ..Default::default() }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    waiting.abort();

    // Over all connections too.
    let (service, _handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let addr = start_with(kube::Client::new(service, "default"), grpc::Limits { calls: 1, ..limits }).await;
    let mut first = ClusterServiceClient::new(channel(addr).await);
    let waiting = tokio::spawn(async move {
        first
            .get_cluster_status(authed(pb::GetClusterStatusRequest { cluster: demo(), ..Default::default() }))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut other = ClusterServiceClient::new(channel(addr).await);
    let status = other
        .get_cluster_status(authed(pb::GetClusterStatusRequest { cluster: demo(), ..Default::default() }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    waiting.abort();

    let (kube, _record, _api) = scripted_api(vec![token_accepted("tooling")]);
    let mut client = ClusterServiceClient::new(channel(start_with(kube, limits).await).await);
    let huge = pb::ListClustersRequest { namespace: "x".repeat(2 << 20), ..Default::default() };
    let status = client.list_clusters(authed(huge)).await.unwrap_err();
    assert!(matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted), "{status:?}");
    assert!(status.message().contains("message length too large"), "{}", status.message());
}
