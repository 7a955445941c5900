//! Managers against kube's tower-test mock API server: the exact requests
//! they send, and how they read the answers.

use http::{Request, Response, StatusCode};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::ConfigMap};
use kube::{Client, client::Body};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

use etcd_operator_resource::managers::{ConfigMapManager, StatefulSetManager};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn mock_client() -> (Client, ApiHandle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// Receives the next request, checks it with `check`, answers with `status` and `body`.
async fn expect(
    handle: &mut ApiHandle,
    status: StatusCode,
    body: Value,
    check: impl FnOnce(&Request<Body>, Value),
) {
    let (request, send) = handle.next_request().await.expect("a request");
    let (parts, req_body) = request.into_parts();
    let bytes = req_body.collect_bytes().await.unwrap();
    let json =
        if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    check(&Request::from_parts(parts, Body::empty()), json);
    send.send_response(
        Response::builder().status(status).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap(),
    );
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

fn statefulset() -> StatefulSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "demo", "namespace": "prod"},
        "spec": {"replicas": 3, "serviceName": "demo", "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "etcd"}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn apply_is_a_forced_server_side_apply_under_the_field_manager() {
    let (client, mut handle) = mock_client();
    let manager = StatefulSetManager::new(client, "prod", "etcd-operator/lifecycle");
    let server = tokio::spawn(async move {
        expect(&mut handle, StatusCode::OK, serde_json::to_value(statefulset()).unwrap(), |req, body| {
            assert_eq!(req.method(), "PATCH");
            assert_eq!(req.uri().path(), "/apis/apps/v1/namespaces/prod/statefulsets/demo");
            let query = req.uri().query().unwrap();
            assert!(query.contains("fieldManager=etcd-operator%2Flifecycle"), "{query}");
            assert!(query.contains("force=true"), "{query}");
            assert_eq!(req.headers()["content-type"], "application/apply-patch+yaml");
            assert_eq!(body["spec"]["replicas"], 3);
        })
        .await;
    });
    let applied = manager.create(&statefulset()).await.unwrap();
    assert_eq!(applied.spec.unwrap().replicas, Some(3));
    server.await.unwrap();
}

#[tokio::test]
async fn scale_patches_only_the_scale_subresource() {
    let (client, mut handle) = mock_client();
    let manager = StatefulSetManager::new(client, "prod", "etcd-operator/scaling");
    let server = tokio::spawn(async move {
        let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "demo"}, "spec": {"replicas": 5}});
        expect(&mut handle, StatusCode::OK, scale, |req, body| {
            assert_eq!(req.method(), "PATCH");
            assert_eq!(req.uri().path(), "/apis/apps/v1/namespaces/prod/statefulsets/demo/scale");
            assert_eq!(req.headers()["content-type"], "application/merge-patch+json");
            assert_eq!(body, json!({"spec": {"replicas": 5}}));
        })
        .await;
    });
    manager.scale("demo", 5).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn missing_objects_read_as_none_and_delete_as_already_gone() {
    let (client, mut handle) = mock_client();
    let manager = ConfigMapManager::new(client, "prod", "etcd-operator/lifecycle");
    let server = tokio::spawn(async move {
        expect(&mut handle, StatusCode::NOT_FOUND, not_found(), |req, _| {
            assert_eq!(req.method(), "GET");
            assert_eq!(req.uri().path(), "/api/v1/namespaces/prod/configmaps/demo-config");
        })
        .await;
        expect(&mut handle, StatusCode::NOT_FOUND, not_found(), |req, _| assert_eq!(req.method(), "DELETE"))
            .await;
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo-config"}});
        expect(&mut handle, StatusCode::OK, cm, |req, body| {
            assert_eq!(req.method(), "DELETE");
            assert_eq!(body["propagationPolicy"], "Background");
        })
        .await;
    });
    assert!(manager.get("demo-config").await.unwrap().is_none());
    assert!(!manager.delete("demo-config").await.unwrap());
    assert!(manager.delete("demo-config").await.unwrap());
    server.await.unwrap();
}

#[tokio::test]
async fn api_failures_name_the_object_and_are_classified() {
    let (client, mut handle) = mock_client();
    let manager = ConfigMapManager::new(client, "prod", "etcd-operator/lifecycle");
    let server = tokio::spawn(async move {
        let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "ServiceUnavailable", "code": 503, "message": "etcd leader changed"});
        expect(&mut handle, StatusCode::SERVICE_UNAVAILABLE, unavailable, |_, _| {}).await;
        let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"});
        expect(&mut handle, StatusCode::CONFLICT, conflict, |_, _| {}).await;
    });
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "demo-config"}})).unwrap();
    let err = manager.apply(&cm).await.unwrap_err();
    assert!(err.is_transient());
    assert!(err.to_string().contains("apply ConfigMap prod/demo-config"), "{err}");
    let err = manager.apply(&cm).await.unwrap_err();
    assert!(err.is_conflict() && !err.is_transient());
    server.await.unwrap();
}
