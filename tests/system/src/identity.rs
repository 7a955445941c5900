//! Identities for the operator's components when tests run them outside
//! pods: a ServiceAccount per component in `etcd-operator`, a ClusterRole
//! granting the gRPC API permissions of the RPCs it calls (from the
//! cluster-service's own table), and a token for the API's audience from the
//! TokenRequest API, written to a file as the kubelet would project it.

use std::path::{Path, PathBuf};

use cluster_service::auth::Rpc;
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding},
};
use kube::{Api, Client, api::PostParams};
use serde_json::json;

/// Namespace of the components' accounts.
pub const NAMESPACE: &str = "etcd-operator";
/// Audience the cluster-service accepts tokens for (its default).
pub const AUDIENCE: &str = "etcd-operator";

/// The RPCs each controller calls.
pub fn controller_rpcs(controller: &str) -> &'static [Rpc] {
    match controller {
        "lifecycle" => &[Rpc::ReconcileCluster, Rpc::FinalizeCluster],
        "scaling" => &[Rpc::Scale],
        "health" => &[Rpc::CheckHealth],
        "recovery" => &[Rpc::MemberMaintenance],
        "backup" => &[Rpc::RunBackup, Rpc::ReconcileSchedule],
        other => panic!("no controller {other}"),
    }
}

async fn create<K>(api: &Api<K>, object: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), &serde_json::from_value(object).expect("object")).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating an identity object: {e}"),
    }
}

/// Creates account `name` allowed `rpcs` on every namespace's objects; returns the file in `dir`
/// holding a token of it for the cluster-service (valid an hour).
pub async fn token_file(client: &Client, dir: &Path, name: &str, rpcs: &[Rpc]) -> PathBuf {
    let path = dir.join(format!("{name}.token"));
    std::fs::write(&path, token(client, name, rpcs).await).expect("token file");
    path
}

/// Creates account `name` allowed `rpcs` on every namespace's objects; a token of it for the
/// cluster-service (valid an hour).
pub async fn token(client: &Client, name: &str, rpcs: &[Rpc]) -> String {
    create(&Api::<Namespace>::all(client.clone()), json!({"metadata": {"name": NAMESPACE}})).await;
    let rules: Vec<serde_json::Value> = rpcs
        .iter()
        .map(|rpc| {
            let (verb, resource, sub) = rpc.needs();
            let resource = if sub.is_empty() { resource.to_owned() } else { format!("{resource}/{sub}") };
            json!({"apiGroups": [cluster_service::auth::rpc::GROUP], "resources": [resource], "verbs": [verb]})
        })
        .collect();
    let role = format!("etcd-operator-api:{name}");
    create(&Api::<ClusterRole>::all(client.clone()), json!({"metadata": {"name": role}, "rules": rules}))
        .await;
    let binding = json!({
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
    });
    create(&Api::<ClusterRoleBinding>::all(client.clone()), binding).await;
    account_token(client, NAMESPACE, name, &[AUDIENCE]).await
}

/// A token of account `namespace/name` (created when missing) for `audiences` (the API server's
/// when empty), valid an hour, from the TokenRequest API.
pub async fn account_token(client: &Client, namespace: &str, name: &str, audiences: &[&str]) -> String {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    create(&accounts, json!({"metadata": {"name": name}})).await;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let answer =
        accounts.create_token_request(name, &PostParams::default(), &request).await.expect("TokenRequest");
    answer.status.expect("token").token
}

/// The authenticator and authorizer of a cluster-service that reviews callers with `client`,
/// serving `namespace` only when given (a namespace-scoped install).
pub fn auth(client: &Client, namespace: Option<&str>) -> cluster_service::auth::Auth {
    let reviews = etcd_operator_client::access::AccessReviews::new(client.clone(), vec![AUDIENCE.into()]);
    cluster_service::auth::Auth::new(reviews, namespace.map(String::from))
}
