//! A scripted Kubernetes API for tests on kube's tower-test mock: each expected
//! request is matched in order and answered; every request is recorded.

use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::{Client, client::Body};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

/// One request the code under test made.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// JSON body (null when empty).
    pub body: Value,
}

/// How to answer an expected request.
pub enum Reply {
    /// 200 with this body.
    Ok(Value),
    /// 200 echoing the request body (server-side apply), with server fields added.
    Echo,
    /// 200 with this object, its status replaced by the request's (a status apply).
    WithStatus(Value),
    /// 404 Not Found.
    NotFound,
    /// 409 AlreadyExists (a create of an object that exists).
    AlreadyExists,
    /// 409 Conflict (a write conditional on a resourceVersion that is no longer current).
    Conflict,
}

/// An expected request: method and path, and the reply.
pub struct Step {
    /// Expected method.
    pub method: &'static str,
    /// Expected path.
    pub path: String,
    /// The answer.
    pub reply: Reply,
}

/// Shorthand for a [`Step`].
pub fn step(method: &'static str, path: impl Into<String>, reply: Reply) -> Step {
    Step { method, path: path.into(), reply }
}

/// Starts the scripted API; returns the client and the record of requests.
pub fn scripted_api(steps: Vec<Step>) -> (Client, Arc<Mutex<Vec<Recorded>>>, tokio::task::JoinHandle<()>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let record = Arc::new(Mutex::new(Vec::new()));
    let task = tokio::spawn(serve(handle, steps, record.clone()));
    (Client::new(service, "default"), record, task)
}

async fn serve(
    mut handle: Handle<Request<Body>, Response<Body>>,
    steps: Vec<Step>,
    record: Arc<Mutex<Vec<Recorded>>>,
) {
    for (i, expected) in steps.into_iter().enumerate() {
        let (request, send) = handle.next_request().await.unwrap_or_else(|| panic!("step {i}: no request"));
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let got = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            body: body.clone(),
        };
        assert_eq!(
            (got.method.as_str(), got.path.as_str()),
            (expected.method, expected.path.as_str()),
            "step {i}: unexpected request"
        );
        record.lock().unwrap().push(got);
        let (status, reply) = match expected.reply {
            Reply::Ok(v) => (StatusCode::OK, v),
            Reply::Echo => {
                let mut v = body;
                v["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000001");
                v["metadata"]["resourceVersion"] = json!("1");
                (StatusCode::OK, v)
            }
            Reply::WithStatus(mut object) => {
                object["status"] = body["status"].clone();
                (StatusCode::OK, object)
            }
            Reply::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
            ),
            conflict @ (Reply::AlreadyExists | Reply::Conflict) => {
                let reason =
                    if matches!(conflict, Reply::AlreadyExists) { "AlreadyExists" } else { "Conflict" };
                (
                    StatusCode::CONFLICT,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": 409}),
                )
            }
        };
        send.send_response(
            Response::builder().status(status).body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap(),
        );
    }
}

/// An EtcdCluster object as the API server returns it.
pub fn cluster_object(spec: Value, status: Option<Value>) -> Value {
    let mut v = json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
        "metadata": {"name": "demo", "namespace": "prod", "uid": "0d7f0b52-4a4e-4f8e-9f55-2f6a0c3f5a11", "generation": 1},
        "spec": spec
    });
    if let Some(s) = status {
        v["status"] = s;
    }
    v
}

/// Path of the test cluster `prod/demo`.
pub const CLUSTER: &str = "/apis/etcd.operator.dev/v1alpha1/namespaces/prod/etcdclusters/demo";
/// Path of its StatefulSet.
pub const STS: &str = "/apis/apps/v1/namespaces/prod/statefulsets/demo";
/// Path of its ConfigMap.
pub const CM: &str = "/api/v1/namespaces/prod/configmaps/demo-config";
/// Path of its peer Service.
pub const PEER_SVC: &str = "/api/v1/namespaces/prod/services/demo";
/// Path of its client Service.
pub const CLIENT_SVC: &str = "/api/v1/namespaces/prod/services/demo-client";
/// Path of its metrics Service.
pub const METRICS_SVC: &str = "/api/v1/namespaces/prod/services/demo-metrics";
/// Path of its PodDisruptionBudget.
pub const PDB: &str = "/apis/policy/v1/namespaces/prod/poddisruptionbudgets/demo";
/// Path of PVCs in `prod`.
pub const PVCS: &str = "/api/v1/namespaces/prod/persistentvolumeclaims";

/// Path of the test cluster's lock Lease.
pub const LOCK: &str = "/apis/coordination.k8s.io/v1/namespaces/prod/leases/demo-etcd-operator-lock";

/// What GetClusterStatus reads before and while it asks etcd: the cluster, its StatefulSet, the
/// kubelet's view of the members (no pods), then its ConfigMap (none) for the spec check.
pub fn observing(cluster: &Value, sts: Value) -> Vec<Step> {
    vec![
        step("GET", CLUSTER, Reply::Ok(cluster.clone())),
        step("GET", STS, Reply::Ok(sts)),
        step(
            "GET",
            "/api/v1/namespaces/prod/pods",
            Reply::Ok(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []})),
        ),
        step("GET", CM, Reply::NotFound),
    ]
}

/// A Lease held by `holder`, renewed `age_seconds` ago, lasting `duration_seconds`.
pub fn lease(holder: &str, age_seconds: i64, duration_seconds: i32) -> Value {
    let renewed = std::time::SystemTime::now() - std::time::Duration::from_secs(age_seconds.max(0) as u64);
    let renewed: k8s_openapi::jiff::Timestamp = renewed.try_into().expect("a representable time");
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "demo-etcd-operator-lock", "namespace": "prod", "resourceVersion": "7"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration_seconds,
                 "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}
    })
}

/// Path of the Lease collection the locks are created in.
pub const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/prod/leases";

/// Steps of taking a free lock: the Lease is created (released locks are deleted).
pub fn lock_acquire() -> Vec<Step> {
    vec![step("POST", LEASES, Reply::Echo)]
}

/// Steps of releasing a lock this holder took: a delete conditional on the Lease it wrote.
pub fn lock_release() -> Vec<Step> {
    vec![step("DELETE", LOCK, Reply::Ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})))]
}

/// Path of the TokenReview API.
pub const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
/// Path of the SubjectAccessReview API.
pub const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// The API server accepting a token as service account `etcd-operator/<account>`.
pub fn token_accepted(account: &str) -> Step {
    let user = json!({"username": format!("system:serviceaccount:etcd-operator:{account}"), "uid": "u-1",
                      "groups": ["system:serviceaccounts", "system:serviceaccounts:etcd-operator", "system:authenticated"]});
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "metadata": {},
                        "spec": {}, "status": {"authenticated": true, "user": user, "audiences": ["etcd-operator"]}});
    step("POST", TOKEN_REVIEWS, Reply::Ok(review))
}

/// The API server answering an access review.
pub fn access_allowed(allowed: bool) -> Step {
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
                        "spec": {}, "status": {"allowed": allowed, "reason": "scripted"}});
    step("POST", ACCESS_REVIEWS, Reply::Ok(review))
}
