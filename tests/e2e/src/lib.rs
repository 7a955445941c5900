//! End-to-end test harness: kube-sim with a node that runs real etcd pods,
//! the operator's binaries as OS processes with their real flags, kubectl,
//! and a fake OTLP collector. Everything a test starts is stopped when the
//! [`Stack`] is dropped, also when the test fails; the logs of every process
//! and pod of a failed test are kept under `target/e2e-logs/`.

pub mod cli;
pub mod identity;
pub mod model;
pub mod otlp;
pub mod process;
pub mod rbac;
pub mod usage;
pub mod workload;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use kube::Client;
use kube_sim::KubeSim;
use process::{Launch, OperatorProcess};

/// Cluster `default/demo`: one member of Debian's etcd, claims deleted with it and when scaled
/// down (so each size leaves as many claims).
pub const ONE_MEMBER_DEMO: &str = "apiVersion: etcd.operator.dev/v1alpha1
kind: EtcdCluster
metadata:
  name: demo
  namespace: default
spec:
  size: 1
  version: 3.4.23
  storage:
    size: 1Gi
  pvcRetentionPolicy:
    whenDeleted: Delete
    whenScaled: Delete
";

/// Namespace of the operator's processes (the API's CA lives there).
pub use identity::NAMESPACE as OPERATOR_NAMESPACE;

/// The whole system under test.
pub struct Stack {
    /// The API server and its node.
    pub sim: KubeSim,
    /// A client for tests' own reads and writes.
    pub client: Client,
    /// The operator's processes, in start order.
    pub processes: Vec<OperatorProcess>,
    /// Whether the chart's accounts and roles were created (with the first process).
    identities: bool,
    /// The chart accounts processes were started as.
    accounts: std::collections::BTreeSet<String>,
    /// Environment every operator process gets on top of its own.
    pub process_env: Vec<(String, String)>,
    test: String,
    logs: PathBuf,
    dir: tempfile::TempDir,
}

impl Stack {
    /// kube-sim with a node (probes at least every second) and the operator's CRDs.
    pub async fn start(test: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (sim, client) = system_tests::sim_with_node(dir.path()).await;
        // The operator's namespace: the cluster-service keeps the API's CA there.
        let namespaces = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
        let namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": OPERATOR_NAMESPACE}}))
            .expect("namespace");
        namespaces.create(&Default::default(), &namespace).await.expect("the operator's namespace");
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        Self {
            sim,
            client,
            processes: Vec::new(),
            identities: false,
            accounts: Default::default(),
            process_env: Vec::new(),
            test: test.to_owned(),
            logs,
            dir,
        }
    }

    /// The node running the pods.
    pub fn node(&self) -> &Arc<kube_sim::node::Node> {
        self.sim.node().expect("started with a node")
    }

    /// Starts an operator binary as its chart account (a kubeconfig with that account's token);
    /// returns its index in [`Stack::processes`].
    pub async fn start_process(&mut self, name: &str, binary: &str, args: Vec<String>) -> usize {
        let kubeconfig = self.kubeconfig_of(binary).await;
        let p = OperatorProcess::start(Launch {
            name,
            binary,
            args,
            kubeconfig: &kubeconfig,
            hosts: self.node().hosts_file(),
            log_dir: &self.logs,
            env: self.process_env.clone(),
        });
        self.processes.push(p);
        self.processes.len() - 1
    }

    /// The kubeconfig of `binary`'s chart account (creating the chart's accounts and roles first).
    async fn kubeconfig_of(&mut self, binary: &str) -> PathBuf {
        if !self.identities {
            identity::install(&self.sim);
            self.identities = true;
        }
        let account = identity::account_of(binary);
        self.accounts.insert(account.clone());
        identity::kubeconfig(&self.client, &self.sim.kubeconfig, self.dir.path(), &account).await
    }

    /// Starts a cluster-service replica and waits until it is healthy; returns its gRPC endpoint.
    pub async fn start_cluster_service(&mut self, name: &str, extra: &[String]) -> String {
        // A port picked free can be taken before the process binds it: start again on others.
        for _ in 0..3 {
            let (i, endpoint) = self.launch_cluster_service(name, extra).await;
            match self.processes[i].wait_up().await {
                Ok(()) => return endpoint,
                Err(why) if OperatorProcess::lost_its_port(&why) => drop(self.processes.remove(i)),
                Err(why) => panic!("{why}"),
            }
        }
        panic!("{name} lost its ports three times");
    }

    async fn launch_cluster_service(&mut self, name: &str, extra: &[String]) -> (usize, String) {
        let port = process_harness::free_port();
        let snapshots = self.dir.path().join("snapshots");
        // Claim `local` of the backup examples is a directory under the volume root.
        std::fs::create_dir_all(self.backup_volume_root().join("local")).expect("backup claim dir");
        let backups = self.dir.path().join("backup-volumes");
        // Names of pods without an address yet fail at once instead of waiting on the host's DNS.
        let hosts = self.node().hosts_file().display().to_string();
        // Every address: pods (restore agents) reach it through the node's bridge, over TLS
        // verified against the CA the cluster-service publishes beside each cluster.
        let host_ip = self.node().host_ip();
        let mut args = vec![
            format!("--listen=0.0.0.0:{port}"),
            format!("--restore-endpoint=https://{host_ip}:{port}"),
            format!("--tls-san={host_ip}"),
            format!("--snapshot-dir={}", snapshots.display()),
            format!("--etcd-hosts-file={hosts}"),
            format!("--backup-volume-root={}", backups.display()),
        ];
        args.extend_from_slice(extra);
        let i = self.start_process(name, "cluster-service", args).await;
        (i, format!("https://127.0.0.1:{port}"))
    }

    /// The API's CA certificate as the cluster-service published it (ConfigMap
    /// `etcd-operator-api-ca`), in a file for the controllers' `--ca-file`.
    pub async fn api_ca_file(&self) -> PathBuf {
        let config_maps = kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
            self.client.clone(),
            OPERATOR_NAMESPACE,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let crt = loop {
            let published = config_maps.get_opt("etcd-operator-api-ca").await.ok().flatten();
            if let Some(crt) = published.and_then(|cm| cm.data?.remove("ca.crt")) {
                break crt;
            }
            assert!(Instant::now() < deadline, "the cluster-service published no CA in 30 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let path = self.dir.path().join("api-ca.crt");
        std::fs::write(&path, crt).expect("CA file written");
        path
    }

    /// Where the cluster-service finds the claims mounted for namespace `default`
    /// (`<--backup-volume-root>/default/<claimName>`).
    pub fn backup_volume_root(&self) -> PathBuf {
        self.dir.path().join("backup-volumes/default")
    }

    /// Starts a `<kind>-controller` with identity `name` against `endpoint`, with a 3 s lease, as
    /// the chart's service account `etcd-operator/etcd-operator-<kind>-controller` (its
    /// Kubernetes requests and its RPCs alike).
    pub async fn start_controller(
        &mut self,
        kind: &str,
        name: &str,
        endpoint: &str,
        extra: &[String],
    ) -> usize {
        // Its own identity, as its pod's projected token would give it.
        let account = identity::account_of(&format!("{kind}-controller"));
        let token = identity::api_token_file(&self.client, self.dir.path(), &account).await;
        let ca = self.api_ca_file().await;
        let mut args = vec![
            format!("--cluster-service-endpoint={endpoint}"),
            format!("--ca-file={}", ca.display()),
            "--lease-duration=3s".to_owned(),
            "--lease-renew-grace=1s".to_owned(),
            format!("--token-file={}", token.display()),
        ];
        args.extend_from_slice(extra);
        for _ in 0..3 {
            let i = self.start_process(name, &format!("{kind}-controller"), args.clone()).await;
            match self.processes[i].wait_up().await {
                Ok(()) => return i,
                // Its admin port was taken before it bound it: again, on another.
                Err(why) if OperatorProcess::lost_its_port(&why) => drop(self.processes.remove(i)),
                Err(why) => panic!("{why}"),
            }
        }
        panic!("{name} lost its admin port three times");
    }

    /// Runs kubectl against kube-sim (its own HOME, so no discovery cache is shared).
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        self.kubectl_command(args).output().expect("kubectl runs (scripts/setup.sh installs it)")
    }

    /// kubectl as a command, for watches.
    pub fn kubectl_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new("kubectl");
        cmd.args(args).env("KUBECONFIG", &self.sim.kubeconfig).env("HOME", self.dir.path());
        cmd
    }

    /// Runs kubectl and returns its stdout, failing the test with stderr when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply` of a YAML document, validated as kubectl validates by default (strict
    /// field validation by the server).
    pub fn kubectl_apply(&self, yaml: &str) -> String {
        let file = self.dir.path().join("apply.yaml");
        std::fs::write(&file, yaml).expect("manifest written");
        self.kubectl_ok(&["apply", "-f", file.to_str().expect("utf-8 path")])
    }

    /// Where kept logs go: `target/e2e-logs/<test>`.
    fn kept_logs(&self) -> PathBuf {
        let exe = std::env::current_exe().expect("test executable");
        let target = exe.ancestors().nth(3).map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
        target.join("e2e-logs").join(&self.test)
    }

    /// Copies the log of every operator process (`processes/`) and every pod's containers
    /// (`pods/`) under `to`.
    pub fn keep_logs(&self, to: &Path) -> std::io::Result<()> {
        copy_dir(&self.logs, &to.join("processes"))?;
        copy_dir(&self.node().dir().join("logs"), &to.join("pods"))
    }

    /// A scratch directory that lives as long as the stack.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Polls `check` every 200 ms until it holds, or panics after `limit` naming `what`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Copies a directory tree; a missing `from` (no pod ever ran, so the node wrote no logs) copies nothing.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)?.flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Operator processes die first (kill on drop), then kube-sim's node kills the pods.
        self.processes.clear();
        // Every test proves the chart's roles enough for what it drove the operator through.
        let refused = identity::refused(&self.sim);
        if !std::thread::panicking() && !refused.is_empty() {
            panic!("{}: the chart's roles lack what the operator used: {refused:#?}", self.test);
        }
        // And each process acted as its own account, not as kube-sim's admin.
        let seen = self.sim.audit();
        let silent: Vec<_> = self
            .accounts
            .iter()
            .filter(|a| !seen.contains_key(&format!("system:serviceaccount:{}:{a}", identity::NAMESPACE)))
            .collect();
        if !std::thread::panicking() && !silent.is_empty() {
            panic!("{}: no request was made as {silent:?}", self.test);
        }
        if std::thread::panicking() {
            let keep = self.kept_logs();
            let _ = std::fs::remove_dir_all(&keep);
            match self.keep_logs(&keep) {
                Ok(()) => eprintln!("logs of {} kept in {}", self.test, keep.display()),
                Err(e) => eprintln!("could not keep the logs of {}: {e}", self.test),
            }
        }
    }
}
