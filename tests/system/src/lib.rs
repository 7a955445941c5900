//! Shared setup of the system tests: a kube-sim and clients for it.

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
