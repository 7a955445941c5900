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
    connect(sim, dir).await
}

/// kube-sim with a node that runs pods (root only); probes at least every second, quick restarts.
pub async fn start_with_node() -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let mut node = kube_sim::node::NodeConfig::new(&dir.path().join("node"));
    node.max_probe_period = Some(std::time::Duration::from_secs(1));
    node.restart_backoff = (std::time::Duration::from_millis(200), std::time::Duration::from_secs(2));
    let sim = KubeSim::start_with_node("127.0.0.1:0".parse().unwrap(), dir.path(), node).await.unwrap();
    connect(sim, dir).await
}

async fn connect(sim: KubeSim, dir: tempfile::TempDir) -> Sim {
    let kubeconfig = Kubeconfig::read_from(&sim.kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    let client = Client::try_from(config).unwrap();
    Sim { sim, client, _dir: dir }
}

impl Sim {
    /// A client that authenticates as service account `namespace/name` (created when missing)
    /// with a token from the TokenRequest API.
    pub async fn client_as(&self, namespace: &str, name: &str) -> Client {
        let token = self.token_for(namespace, name, &[]).await;
        self.client_with_token(&token).await
    }

    /// A token of service account `namespace/name` (created when missing) for `audiences` (the
    /// API server's when empty).
    pub async fn token_for(&self, namespace: &str, name: &str, audiences: &[&str]) -> String {
        use k8s_openapi::api::{
            authentication::v1::{TokenRequest, TokenRequestSpec},
            core::v1::ServiceAccount,
        };
        let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(self.client.clone(), namespace);
        let account = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        match accounts.create(&Default::default(), &account).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("service account {namespace}/{name}: {e}"),
        }
        let spec = TokenRequestSpec {
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            ..Default::default()
        };
        let request = TokenRequest { spec, ..Default::default() };
        let answer = accounts.create_token_request(name, &Default::default(), &request).await.unwrap();
        answer.status.unwrap().token
    }

    /// A client that presents `token`.
    pub async fn client_with_token(&self, token: &str) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.sim.kubeconfig).unwrap();
        let mut config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
        config.auth_info.token = Some(token.to_owned().into());
        Client::try_from(config).unwrap()
    }
}

/// Polls `check` every 100 ms until it holds, or panics after `secs` seconds naming `what`.
pub async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Runs kubectl against the sim with `home` as its cache; whether it succeeded, and its stdout
/// then stderr.
pub fn kubectl(s: &Sim, home: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::{
        io::Write,
        process::{Command, Stdio},
    };
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &s.sim.kubeconfig)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed (scripts/setup.sh)");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
