//! Shared setup of the system tests: a kube-sim, clients for it, and the
//! cluster-service and controller contexts running in-process on real sockets.

pub mod identity;
pub mod pods;
pub mod real;
pub mod requests;
pub mod secure;

/// The median of benchmark samples.
pub fn median(mut samples: Vec<std::time::Duration>) -> std::time::Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// kube-sim with a node that runs pods (probes at least every second, quick restarts), the
/// operator's CRDs installed, and a client for it; `dir` holds its state.
pub async fn sim_with_node(dir: &std::path::Path) -> (KubeSim, Client) {
    use std::time::Duration;
    let mut node = kube_sim::node::NodeConfig::new(&dir.join("node"));
    node.max_probe_period = Some(Duration::from_secs(1));
    node.restart_backoff = (Duration::from_millis(500), Duration::from_secs(5));
    // The operator's image runs its binaries from this build, each by its command's name (the
    // restore agent as init container; the chart's Deployments).
    let agent = operator_binary("restore-agent");
    // Every member's init container: without it no member starts.
    assert!(
        agent.exists(),
        "{} is missing: build it first (`cargo build -p restore-agent`, with `--release` for benches)",
        agent.display()
    );
    let binaries = agent.parent().expect("target dir").to_path_buf();
    node.images.add(&format!("{OPERATOR_IMAGE_REPOSITORY}={}", binaries.display())).expect("image rule");
    let sim = KubeSim::start_with_node("127.0.0.1:0".parse().expect("address"), dir, node)
        .await
        .unwrap_or_else(|e| panic!("kube-sim with a node: {e}"));
    let mut crds = String::new();
    for (_, crd) in etcd_operator_api::crd::all() {
        crds.push_str(&etcd_operator_api::crd::to_yaml(&crd));
    }
    sim.apply_yaml(&crds).expect("CRDs install");
    let kubeconfig = Kubeconfig::read_from(&sim.kubeconfig).expect("kubeconfig");
    let config =
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
    (sim, Client::try_from(config).expect("client"))
}

/// Repository of the operator's image (the restore agent's default image).
pub const OPERATOR_IMAGE_REPOSITORY: &str = "ghcr.io/etcd-k8s-operator/etcd-operator";

/// A binary of this workspace's build (`scripts/test.sh` builds them before the tests).
pub fn operator_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> → target/<profile>/<name>; a binary that runs the stack (the
    // fault campaign's runner) is in target/<profile> itself.
    let dir = exe.parent().expect("target dir");
    let profile = if dir.ends_with("deps") { dir.parent().expect("target dir") } else { dir };
    profile.join(name)
}

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use kube_sim::KubeSim;

/// A running kube-sim; its directory lives as long as it.
pub struct Sim {
    /// The server.
    pub sim: KubeSim,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Starts kube-sim on a free loopback port.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = KubeSim::start("127.0.0.1:0".parse().expect("address"), dir.path())
            .await
            .expect("kube-sim starts");
        Self { sim, _dir: dir }
    }

    /// Installs the operator's CRDs (generated from the Rust types).
    pub async fn install_crds(&self) {
        let mut yaml = String::new();
        for (_, crd) in etcd_operator_api::crd::all() {
            yaml.push_str(&etcd_operator_api::crd::to_yaml(&crd));
        }
        self.sim.apply_yaml(&yaml).expect("CRDs install");
    }

    /// A new client with its own connections, as another process would have.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.sim.kubeconfig).expect("kubeconfig");
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
        Client::try_from(config).expect("client")
    }
}

/// Flags of a controller, parsed as its binary would.
#[derive(clap::Parser)]
struct ControllerArgs {
    #[command(flatten)]
    controller: etcd_operator_controller::config::ControllerConfig,
}

impl Sim {
    /// Starts a cluster-service on a loopback socket, talking to this kube-sim; returns its endpoint.
    ///
    /// No pods run in kube-sim yet, so etcd never answers; connects give up fast.
    pub async fn start_cluster_service(&self) -> String {
        self.start_cluster_service_for(None).await
    }

    /// [`Sim::start_cluster_service`] of a namespace-scoped install serving `namespace` only.
    pub async fn start_cluster_service_for(&self, namespace: Option<&str>) -> String {
        // Plaintext, as with `--insecure`: these tests are about the calls, not the transport.
        self.serve(namespace, cluster_service::grpc::Transport::Plaintext, "http").await
    }

    /// A cluster-service serving TLS as the binary does: the API's CA made in (and published
    /// from) namespace `etcd-operator` of this kube-sim, a serving certificate for loopback.
    /// Returns the `https://` endpoint, the CA's file and the serving certificate's holder.
    pub async fn start_cluster_service_tls(
        &self,
        validity: chrono::Duration,
    ) -> (String, std::path::PathBuf, std::sync::Arc<cluster_service::tls::Serving>) {
        use etcd_operator_service::api_tls::{ApiCa, decide::ServingNames};
        let client = self.client().await;
        let ns = crate::identity::NAMESPACE;
        let namespaces = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
        let namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("namespace");
        let _ = namespaces.create(&Default::default(), &namespace).await;
        let api_ca = ApiCa::new(client, ns, "etcd-operator-api-ca", "etcd-operator-api-ca");
        let ca = api_ca.load_or_create(chrono::Utc::now()).await.expect("the API's CA");
        api_ca.publish(&ca).await.expect("the CA published");
        let names = ServingNames {
            service: "cluster-service".into(),
            namespace: ns.into(),
            cluster_domain: "cluster.local".into(),
            extra: Vec::new(),
        };
        let serving = std::sync::Arc::new(
            cluster_service::tls::Serving::new(ca.clone(), names, validity).expect("serving"),
        );
        let config = serving.server_config().expect("TLS configuration");
        let ca_file = self._dir.path().join("api-ca.crt");
        std::fs::write(&ca_file, &ca.crt).expect("CA written");
        let endpoint = self.serve(None, cluster_service::grpc::Transport::Tls(config), "https").await;
        tokio::spawn(serving.clone().keep_renewed(std::future::pending()));
        (endpoint.replace("127.0.0.1", "localhost"), ca_file, serving)
    }

    async fn serve(
        &self,
        namespace: Option<&str>,
        transport: cluster_service::grpc::Transport,
        scheme: &str,
    ) -> String {
        use etcd_operator_telemetry::metrics::RpcMetrics;
        let mut config = etcd_operator_service::ServiceConfig::default();
        config.etcd.connect_timeout = std::time::Duration::from_millis(200);
        let metrics = etcd_operator_client::metrics::EtcdMetrics::default();
        let client = self.client().await;
        let service = cluster_service::services(client.clone(), config, metrics, namespace);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let rpc_metrics = RpcMetrics::register(&mut Default::default());
        let auth = identity::auth(&client, namespace);
        tokio::spawn(cluster_service::grpc::serve(
            listener,
            transport,
            service,
            auth,
            Default::default(),
            rpc_metrics,
            std::future::pending(),
        ));
        format!("{scheme}://{addr}")
    }

    /// The context a controller process named `name` would build, against `endpoint`.
    pub async fn controller_context(
        &self,
        name: &'static str,
        endpoint: &str,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> std::sync::Arc<etcd_operator_controller::runtime::Context> {
        let timeout = etcd_operator_controller::rpc::RpcOptions::default().timeout;
        controller_context(name, self.client().await, self._dir.path(), endpoint, timeout, shutdown).await
    }
}

/// The context a controller process named `name` would build with `kube`, calling `endpoint`
/// with `rpc_timeout` as each call's deadline, as its own service account (token file in `dir`).
pub async fn controller_context(
    name: &'static str,
    kube: Client,
    dir: &std::path::Path,
    endpoint: &str,
    rpc_timeout: std::time::Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::sync::Arc<etcd_operator_controller::runtime::Context> {
    use clap::Parser;
    use etcd_operator_controller::rpc::{RpcClient, RpcOptions};
    use etcd_operator_telemetry::metrics::{ControllerMetrics, RpcMetrics};
    let mut registry = Default::default();
    let token_file =
        identity::token_file(&kube, dir, &format!("{name}-controller"), identity::controller_rpcs(name))
            .await;
    // In-process services serve plaintext (`Sim::start_cluster_service`).
    let options = RpcOptions {
        timeout: rpc_timeout,
        token_file: Some(token_file),
        insecure: true,
        ..RpcOptions::default()
    };
    let rpc = RpcClient::new(endpoint, options, RpcMetrics::register(&mut registry)).expect("endpoint");
    let mut config = ControllerArgs::parse_from([format!("{name}-controller")]).controller;
    config.rpc_timeout = rpc_timeout;
    std::sync::Arc::new(etcd_operator_controller::runtime::Context {
        name,
        kube,
        rpc,
        metrics: ControllerMetrics::register(&mut registry),
        config,
        synced: Default::default(),
        shutdown,
        exported: Default::default(),
    })
}
