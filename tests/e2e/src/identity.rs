//! Each operator process under its own Kubernetes identity, as in its pod: the chart's
//! ServiceAccounts and roles (from `deploy/etcd-operator.yaml`, generated from the chart), a
//! kubeconfig per account whose `tokenFile` holds a TokenRequest token of it, and for the
//! controllers a token for the cluster-service's audience. kube-sim's audit then sees every
//! component's own requests and RPCs, and refuses whatever the chart does not grant.

use std::path::{Path, PathBuf};

use kube::Client;
use kube_sim::KubeSim;
use serde::Deserialize;
use system_tests::identity::{AUDIENCE, account_token};

/// The generated install manifest (checked against the chart by `scripts/chart.py check`).
const INSTALL: &str = include_str!("../../../deploy/etcd-operator.yaml");
/// Namespace of the operator's processes and accounts (the chart's, as system_tests uses).
pub use system_tests::identity::NAMESPACE;
const KINDS: [&str; 5] = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];

/// Creates the chart's accounts and roles (not its Deployments: the processes run on the host).
pub fn install(sim: &KubeSim) {
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(INSTALL)
        .filter_map(|d| serde_json::Value::deserialize(d).ok())
        .filter(|d| KINDS.iter().any(|k| d["kind"] == *k))
        .collect();
    let yaml =
        docs.iter().map(|d| serde_yaml_ng::to_string(d).expect("yaml")).collect::<Vec<_>>().join("---\n");
    sim.apply_yaml(&yaml).expect("the chart's accounts and roles");
}

/// The chart's account of an operator binary (`cluster-service`, `<kind>-controller`).
pub fn account_of(binary: &str) -> String {
    format!("etcd-operator-{binary}")
}

/// A kubeconfig for kube-sim (`admin` is the admin's) that authenticates as `account` with a
/// token file, as a pod's mounted token does; written into `dir`.
pub async fn kubeconfig(client: &Client, admin: &Path, dir: &Path, account: &str) -> PathBuf {
    let token = account_token(client, NAMESPACE, account, &[]).await;
    let token_file = dir.join(format!("{account}.kube-token"));
    std::fs::write(&token_file, token).expect("token file");
    let text = std::fs::read_to_string(admin).expect("kube-sim's kubeconfig");
    let mut config: serde_json::Value = serde_yaml_ng::from_str(&text).expect("kubeconfig YAML");
    for user in config["users"].as_array_mut().expect("users") {
        user["user"] = serde_json::json!({"tokenFile": token_file});
    }
    let path = dir.join(format!("{account}.kubeconfig"));
    std::fs::write(&path, serde_yaml_ng::to_string(&config).expect("yaml")).expect("kubeconfig written");
    path
}

/// A file holding a token of `account` for the cluster-service's audience.
pub async fn api_token_file(client: &Client, dir: &Path, account: &str) -> PathBuf {
    let path = dir.join(format!("{account}.api-token"));
    std::fs::write(&path, account_token(client, NAMESPACE, account, &[AUDIENCE]).await).expect("token file");
    path
}

/// What kube-sim refused the chart's accounts (requests, and RPCs through the cluster-service's
/// access reviews): each entry a grant the chart lacks.
pub fn refused(sim: &KubeSim) -> Vec<(String, Vec<kube_sim::auth::audit::Use>)> {
    let prefix = format!("system:serviceaccount:{NAMESPACE}:etcd-operator-");
    sim.denials()
        .into_iter()
        .filter(|(user, _)| user.starts_with(&prefix))
        .map(|(user, uses)| (user, uses.into_iter().collect()))
        .collect()
}
