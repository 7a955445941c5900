//! kube-sim: a Kubernetes API server stand-in for tests and local demos.
//!
//! It serves the Kubernetes REST API over HTTPS on loopback, writes a
//! kubeconfig, and keeps objects in memory: unmodified kube-rs clients and
//! kubectl work against it. `README.md` lists what it implements and where
//! it approximates Kubernetes.

pub mod api;
pub mod auth;
pub mod controllers;
pub mod convert;
pub mod error;
pub mod fields;
pub mod managed;
pub mod node;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod protowrite;
pub mod registry;
pub mod selectors;
pub mod server;
pub mod store;
pub mod validation;

pub use error::StartError;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde_json::json;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::api::ApiState;

/// A running kube-sim API server.
pub struct KubeSim {
    /// Address it listens on.
    pub addr: SocketAddr,
    /// Path of the kubeconfig that reaches it.
    pub kubeconfig: PathBuf,
    state: Arc<ApiState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    controllers: JoinHandle<()>,
    node: Option<(Arc<node::Node>, JoinHandle<()>)>,
}

impl KubeSim {
    /// Starts a server on `addr` (port 0 picks one) and writes `dir/kubeconfig`; pods are not run.
    pub async fn start(addr: SocketAddr, dir: &Path) -> Result<Self, StartError> {
        Self::start_with(addr, dir, None).await
    }

    /// Starts a server and a node that runs pods as processes (needs root; see the README).
    pub async fn start_with_node(
        addr: SocketAddr,
        dir: &Path,
        node: node::NodeConfig,
    ) -> Result<Self, StartError> {
        Self::start_with(addr, dir, Some(node)).await
    }

    async fn start_with(
        addr: SocketAddr,
        dir: &Path,
        node: Option<node::NodeConfig>,
    ) -> Result<Self, StartError> {
        let bind = |source| StartError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let tls = server::Tls::generate().map_err(StartError::Tls)?;
        let kubeconfig = server::write_kubeconfig(dir, addr, &tls.ca_pem).map_err(StartError::Kubeconfig)?;
        let state = Arc::new(ApiState {
            registry: registry::Registry::default(),
            store: store::Store::default(),
            address: addr.to_string(),
            ca_pem: tls.ca_pem.clone(),
            tokens: auth::Tokens::generate().map_err(StartError::TokenKey)?,
            audit: Default::default(),
            requests: Default::default(),
        });
        for ns in ["default", "kube-system", "kube-public"] {
            let t = api::Target {
                rt: state.registry.find("", "v1", "namespaces").expect("namespaces are served"),
                namespace: String::new(),
                name: None,
                sub: None,
            };
            api::create_object(&state, &t, json!({"metadata": {"name": ns}}))
                .map_err(|answer| StartError::Namespace { namespace: ns, answer })?;
        }
        bootstrap_rbac(&state)?;
        let router = axum::Router::new().fallback(api::handle).with_state(state.clone());
        let node = match node {
            Some(config) => {
                let node = node::Node::create(state.clone(), config).map_err(StartError::Node)?;
                Some((node.clone(), tokio::spawn(node.run())))
            }
            None => None,
        };
        let controllers = tokio::spawn(controllers::run(state.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, tls, router, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, kubeconfig, state, stop: Some(stop), task: Some(task), controllers, node })
    }

    /// Creates every object of the YAML documents in `yaml` (CRDs first, so their resources exist).
    pub fn apply_yaml(&self, yaml: &str) -> Result<usize, String> {
        use serde::Deserialize;
        let mut docs = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
            let v = serde_json::Value::deserialize(doc).map_err(|e| format!("invalid YAML: {e}"))?;
            if v.is_object() {
                docs.push(v);
            }
        }
        docs.sort_by_key(|d| d["kind"] != "CustomResourceDefinition");
        for doc in &docs {
            let api_version = doc["apiVersion"].as_str().unwrap_or_default();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let kind = doc["kind"].as_str().unwrap_or_default();
            let rt = self
                .state
                .registry
                .all()
                .into_iter()
                .find(|t| t.group == group && t.version == version && t.kind == kind)
                .ok_or_else(|| format!("{api_version} {kind} is not served"))?;
            let namespace = doc["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
            let t = api::Target { rt, namespace, name: None, sub: None };
            api::create_object(&self.state, &t, doc.clone()).map_err(|e| e.message)?;
        }
        Ok(docs.len())
    }

    /// What each user was allowed so far (requests, and access reviews answered "allowed").
    pub fn audit(&self) -> std::collections::BTreeMap<String, std::collections::BTreeSet<auth::audit::Use>> {
        self.state.audit.uses()
    }

    /// What each user was refused so far (requests, and access reviews answered "denied").
    pub fn denials(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeSet<auth::audit::Use>> {
        self.state.audit.denials()
    }

    /// The object store (for fault injection and test assertions).
    pub fn store(&self) -> &store::Store {
        &self.state.store
    }

    /// The node running pods, when started with one.
    pub fn node(&self) -> Option<&Arc<node::Node>> {
        self.node.as_ref().map(|(n, _)| n)
    }

    /// Stops serving; the node's processes are killed and its network removed.
    pub async fn stop(mut self) {
        self.stop_node();
        self.controllers.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl KubeSim {
    fn stop_node(&mut self) {
        if let Some((node, task)) = self.node.take() {
            task.abort();
            node.shutdown();
        }
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        self.stop_node();
        self.controllers.abort();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The default role kube-apiserver bootstraps that every authenticated user has:
/// `system:basic-user` (it may ask what it may do, `kubectl auth can-i`).
fn bootstrap_rbac(state: &ApiState) -> Result<(), StartError> {
    let role = json!({"metadata": {"name": "system:basic-user", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
    "rules": [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
    ]});
    let binding = json!({"metadata": {"name": "system:basic-user", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:basic-user"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]});
    for (plural, object) in [("clusterroles", role), ("clusterrolebindings", binding)] {
        let t = api::Target {
            rt: state.registry.find("rbac.authorization.k8s.io", "v1", plural).expect("RBAC is served"),
            namespace: String::new(),
            name: None,
            sub: None,
        };
        api::create_object(state, &t, object)
            .map_err(|answer| StartError::Bootstrap { object: plural, answer })?;
    }
    Ok(())
}
