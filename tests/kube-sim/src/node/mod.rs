//! The node agent: the scheduler and kubelet of kube-sim. It binds every
//! unscheduled pod to its one node and runs each pod as real processes in a
//! network namespace of its own (see `README.md` for the design and its
//! limits), reports pod status, serves cluster DNS through hosts files, and
//! offers fault injection for tests.

mod faults;
mod net;
mod runtime;
mod scheduling;

pub use net::{dns, network, network::HostCut};
use runtime::{container, pod, volumes};
pub use runtime::{images, service_account};

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinHandle};

use self::{dns::Dns, images::ImageTable, network::Network, network::Sandbox, runtime::status::PodRuntime};
use crate::{api::ApiState, objects};

/// How often the agent looks at the pods.
const SYNC: Duration = Duration::from_millis(200);
/// How often running pods' ConfigMap and Secret volumes are brought up to date (the kubelet's
/// periodic sync plus its cache take up to about a minute; tests need not wait that long).
const VOLUME_REFRESH: Duration = Duration::from_secs(1);

/// Settings of the node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Node name (`spec.nodeName` of its pods).
    pub name: String,
    /// Directory for PVC data, emptyDirs, logs and the host's hosts file.
    pub dir: PathBuf,
    /// Image → program table.
    pub images: ImageTable,
    /// Cluster domain of DNS names.
    pub cluster_domain: String,
    /// Cap on probe periods, so tests need not wait 10 s per probe (probing more often only finds problems sooner).
    pub max_probe_period: Option<Duration>,
    /// Container restart back-off: first delay and cap.
    pub restart_backoff: (Duration, Duration),
}

impl NodeConfig {
    /// Defaults: node `kube-sim-node`, domain `cluster.local`, default images, back-off 1 s doubling to 30 s.
    pub fn new(dir: &Path) -> Self {
        Self {
            name: "kube-sim-node".into(),
            dir: dir.to_path_buf(),
            images: ImageTable::with_defaults(),
            cluster_domain: "cluster.local".into(),
            max_probe_period: None,
            restart_backoff: (Duration::from_secs(1), Duration::from_secs(30)),
        }
    }
}

/// What every pod task of the node shares.
pub struct NodeCtx {
    /// Settings.
    pub config: NodeConfig,
    /// The API server's state.
    pub api: Arc<ApiState>,
    /// Pod networking.
    pub network: Network,
    /// Hosts files.
    pub dns: Dns,
    /// Port of the `kubernetes` Service on the node's address.
    pub api_port: u16,
    forwarder: tokio::task::AbortHandle,
    sandboxes: Mutex<HashMap<String, (Value, Sandbox)>>,
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap_or_default().to_owned()
}

impl NodeCtx {
    /// The node's address (the bridge), reported as hostIP.
    pub fn host_ip(&self) -> String {
        self.network.gateway().to_string()
    }

    /// Per-pod scratch directory (emptyDirs, ConfigMap volumes); removed with the pod.
    pub fn pod_dir(&self, pod: &Value) -> PathBuf {
        self.config.dir.join("pods").join(uid(pod))
    }

    /// Container logs of a pod; kept after the pod is gone.
    pub fn log_dir(&self, pod: &Value) -> PathBuf {
        let m = &pod["metadata"];
        self.config.dir.join("logs").join(format!(
            "{}_{}_{}",
            m["namespace"].as_str().unwrap_or_default(),
            m["name"].as_str().unwrap_or_default(),
            uid(pod)
        ))
    }

    fn remember_sandbox(&self, pod: &Value, sandbox: &Sandbox) {
        self.sandboxes.lock().unwrap().insert(uid(pod), (pod.clone(), sandbox.clone()));
    }

    fn forget_sandbox(&self, pod: &Value) {
        self.sandboxes.lock().unwrap().remove(&uid(pod));
    }

    /// Rewrites the hosts files from the current pods and services.
    pub fn refresh_dns(&self) {
        let (pods, services) = self.api.store.read(|t| (t.list("/pods", None), t.list("/services", None)));
        let sandboxes = self.sandboxes.lock().unwrap().clone();
        let viewers: Vec<(Value, PathBuf)> = sandboxes
            .into_iter()
            .map(|(u, (old, sandbox))| {
                let pod = pods.iter().find(|p| uid(p) == u).cloned().unwrap_or(old);
                (pod, Network::hosts_path(&sandbox))
            })
            .collect();
        let viewers: Vec<dns::Viewer<'_>> =
            viewers.iter().map(|(pod, path)| dns::Viewer { pod, path: path.clone() }).collect();
        self.dns.refresh(&pods, &services, &viewers);
    }
}

struct PodEntry {
    namespace: String,
    name: String,
    rt: Arc<Mutex<PodRuntime>>,
    term: watch::Sender<Option<Duration>>,
    task: JoinHandle<()>,
}

/// A running node agent.
pub struct Node {
    ctx: Arc<NodeCtx>,
    pods: Mutex<HashMap<String, PodEntry>>,
    up: AtomicBool,
    refreshed: Mutex<std::time::Instant>,
    policies: net::policy::Loaded,
}

impl Node {
    /// Creates the node's network and directories.
    pub fn create(api: Arc<ApiState>, config: NodeConfig) -> Result<Arc<Self>, String> {
        std::fs::create_dir_all(&config.dir).map_err(|e| format!("{}: {e}", config.dir.display()))?;
        let network = Network::create()?;
        let gateway = network.gateway();
        let dns =
            Dns::new(&config.cluster_domain, config.dir.join("hosts")).with_api_server(gateway.to_string());
        // The `kubernetes` Service: pods reach the API server on the node's address, same port.
        let api_port = api.address.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(443);
        let listener = std::net::TcpListener::bind((gateway, api_port))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(|e| format!("the kubernetes Service on {gateway}:{api_port}: {e}"))?;
        let forwarder = tokio::spawn(service_account::forward(listener, api.address.clone())).abort_handle();
        let ctx =
            Arc::new(NodeCtx { config, api, network, dns, api_port, forwarder, sandboxes: Mutex::default() });
        // For scripts: the address pods reach host processes at (the node's InternalIP).
        let host_ip = ctx.config.dir.join("host-ip");
        std::fs::write(&host_ip, ctx.host_ip()).map_err(|e| format!("{}: {e}", host_ip.display()))?;
        ctx.refresh_dns();
        let refreshed = Mutex::new(std::time::Instant::now());
        let policies = net::policy::Loaded::default();
        Ok(Arc::new(Self { ctx, pods: Mutex::default(), up: AtomicBool::new(true), refreshed, policies }))
    }

    /// Runs the agent until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SYNC);
        loop {
            tick.tick().await;
            if self.up.load(Ordering::SeqCst) {
                self.sync();
            }
        }
    }

    fn sync(&self) {
        let ctx = &self.ctx;
        let node = ctx.config.name.clone();
        // The scheduler's part: bind pods that have no node.
        let _ = ctx.api.store.transact(|txn| {
            for mut pod in txn.list("/pods", None) {
                let unbound = pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
                if unbound && pod["metadata"].get("deletionTimestamp").is_none() {
                    let key = (
                        "/pods".to_owned(),
                        pod["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                        pod["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                    );
                    match scheduling::unschedulable(txn, &pod) {
                        None => pod["spec"]["nodeName"] = json!(node),
                        Some(why) if scheduling::mark_unschedulable(&mut pod, &why) => {}
                        Some(_) => continue,
                    }
                    txn.put(key, pod);
                }
            }
            Ok(())
        });
        let pods: Vec<Value> = ctx.api.store.read(|t| t.list("/pods", None));
        let mut entries = self.pods.lock().unwrap();
        for pod in pods.iter().filter(|p| p["spec"]["nodeName"] == node.as_str()) {
            let id = uid(pod);
            let deleting = pod["metadata"].get("deletionTimestamp").is_some();
            match entries.get(&id) {
                Some(e) if deleting => {
                    if e.term.borrow().is_none() {
                        let grace = pod["metadata"]["deletionGracePeriodSeconds"].as_u64().unwrap_or(30);
                        let _ = e.term.send(Some(Duration::from_secs(grace)));
                    }
                }
                Some(_) => {}
                None if deleting => self.remove_object(pod),
                None if matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) => {}
                None => {
                    let rt = Arc::new(Mutex::new(pod::new_runtime(pod, ctx.host_ip())));
                    let (term, term_rx) = watch::channel(None);
                    let task = tokio::spawn(pod::run(ctx.clone(), pod.clone(), rt.clone(), term_rx));
                    let m = &pod["metadata"];
                    let namespace = m["namespace"].as_str().unwrap_or_default().to_owned();
                    let name = m["name"].as_str().unwrap_or_default().to_owned();
                    entries.insert(id, PodEntry { namespace, name, rt, term, task });
                }
            }
        }
        // Force-deleted pods lose their processes at once; finished workers are forgotten.
        let live: Vec<String> = pods.iter().map(uid).collect();
        let gone: Vec<String> = entries
            .iter()
            .filter(|(id, e)| !live.contains(id) || e.task.is_finished())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(e) = entries.remove(&id) {
                self.teardown(e);
            }
        }
        let in_use: Vec<PathBuf> =
            entries.values().flat_map(|e| e.rt.lock().unwrap().volume_dirs.clone()).collect();
        drop(entries);
        self.refresh_volumes(&pods);
        self.enforce_policies();
        ctx.refresh_dns();
        let pvcs: Vec<String> =
            ctx.api.store.read(|t| t.list("/persistentvolumeclaims", None)).iter().map(uid).collect();
        volumes::collect_garbage(&ctx.config.dir, &pvcs, &in_use);
    }

    /// Brings the ConfigMap and Secret volumes of this node's pods up to date, once a period.
    fn refresh_volumes(&self, pods: &[Value]) {
        let mut last = self.refreshed.lock().unwrap();
        if last.elapsed() < VOLUME_REFRESH {
            return;
        }
        *last = std::time::Instant::now();
        let node = self.ctx.config.name.as_str();
        self.ctx.api.store.read(|txn| {
            for pod in pods.iter().filter(|p| p["spec"]["nodeName"] == node) {
                volumes::refresh(txn, &self.ctx.api.tokens, &self.ctx.pod_dir(pod), pod);
            }
        });
    }

    /// Loads each running pod's NetworkPolicy ingress rules into its namespace (only changes).
    fn enforce_policies(&self) {
        use net::policy::{PolicyPod, allowed, nft_script};
        let (namespaces, policies) = self
            .ctx
            .api
            .store
            .read(|t| (t.list("/namespaces", None), t.list("networking.k8s.io/networkpolicies", None)));
        let sandboxes: Vec<(Value, Sandbox)> = self.ctx.sandboxes.lock().unwrap().values().cloned().collect();
        let pods: Vec<PolicyPod> =
            sandboxes.iter().map(|(pod, s)| PolicyPod { pod: pod.clone(), ip: s.ip }).collect();
        let node = [
            self.ctx.network.gateway(),
            self.ctx.network.kubelet_address(),
            self.ctx.network.clients_address(),
        ];
        for (target, (_, sandbox)) in pods.iter().zip(&sandboxes) {
            let allowed = allowed(target, &pods, &namespaces, &policies);
            self.policies.ensure(&sandbox.netns, &nft_script(&allowed, &node), allowed.is_none());
        }
        self.policies.retain(&sandboxes.iter().map(|(_, s)| s.netns.clone()).collect::<Vec<_>>());
    }

    /// Removes a deleted pod that has nothing running here.
    fn remove_object(&self, pod: &Value) {
        let m = &pod["metadata"];
        let key = (
            "/pods".to_owned(),
            m["namespace"].as_str().unwrap_or_default().to_owned(),
            m["name"].as_str().unwrap_or_default().to_owned(),
        );
        let _ = self.ctx.api.store.transact(|txn| {
            if let Some(current) = txn.get(&key).filter(|c| c["metadata"]["uid"] == m["uid"]).cloned() {
                objects::finish_deletion(txn, &key, current);
            }
            Ok(())
        });
    }

    /// Stops a pod's processes at once and removes its network namespace.
    fn teardown(&self, e: PodEntry) {
        e.task.abort();
        let mut rt = e.rt.lock().unwrap();
        for c in rt.init.iter().chain(&rt.containers) {
            if let Some(pid) = c.pid {
                container::signal(pid, container::Signal::KILL);
            }
        }
        if let Some(sandbox) = rt.sandbox.take() {
            self.ctx.network.delete_sandbox(&sandbox);
            self.ctx.sandboxes.lock().unwrap().retain(|_, (_, s)| s.netns != sandbox.netns);
        }
    }

    /// Kills every pod process and removes the node's network (kube-sim is stopping).
    pub fn shutdown(&self) {
        self.up.store(false, Ordering::SeqCst);
        let entries: Vec<PodEntry> = self.pods.lock().unwrap().drain().map(|(_, e)| e).collect();
        for e in entries {
            self.teardown(e);
        }
        self.ctx.network.shutdown();
        self.ctx.forwarder.abort();
    }

    /// The file a process on the host bind-mounts as `/etc/hosts` to resolve cluster names.
    pub fn hosts_file(&self) -> &Path {
        self.ctx.dns.host_file()
    }

    /// The host's address on the node's bridge: how pods reach processes on the host.
    pub fn host_ip(&self) -> String {
        self.ctx.host_ip()
    }

    /// The address a test's clients bind to so that they stand in for application pods: a cut
    /// of the host path ([`Node::cut_host_path`]) leaves them connected.
    pub fn clients_address(&self) -> std::net::Ipv4Addr {
        self.ctx.network.clients_address()
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        &self.ctx.config.dir
    }
}
