//! Starting kube-sim and a kube-rs client for it.
// Shared by several test binaries; not every one uses every field.
#![allow(dead_code)]

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use kube_sim::KubeSim;

/// A running kube-sim with a client; the directory lives as long as it.
pub struct Sim {
    pub sim: KubeSim,
    pub client: Client,
    _dir: tempfile::TempDir,
}

pub async fn start() -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let sim = KubeSim::start("127.0.0.1:0".parse().unwrap(), dir.path()).await.unwrap();
    let kubeconfig = Kubeconfig::read_from(&sim.kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    let client = Client::try_from(config).unwrap();
    Sim { sim, client, _dir: dir }
}
