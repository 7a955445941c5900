//! Fault injection and inspection for tests: crash or pause a container,
//! cut a pod off the network, lose a PVC's data, stop the whole node, run a
//! command inside a container.

use std::{net::Ipv4Addr, path::PathBuf, sync::atomic::Ordering, time::Duration};

use super::{
    Node,
    net::network::{HostCut, Sandbox},
    runtime::{container, pod, volumes},
};

impl Node {
    fn with_pod<T>(
        &self,
        ns: &str,
        name: &str,
        f: impl FnOnce(&super::PodEntry) -> Option<T>,
    ) -> Result<T, String> {
        // The pod of that name now (as `kubectl exec` reaches it), not a predecessor still stopping.
        let current = self.ctx.api.store.read(|t| {
            t.get(&("/pods".to_owned(), ns.to_owned(), name.to_owned()))
                .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_owned))
        });
        let pods = self.pods.lock().unwrap();
        let entry = current
            .and_then(|uid| pods.get(&uid))
            .or_else(|| pods.values().find(|e| e.namespace == ns && e.name == name))
            .ok_or_else(|| format!("pod {ns}/{name} is not running on the node"))?;
        f(entry).ok_or_else(|| format!("pod {ns}/{name}: not started yet"))
    }

    /// The pid of a running container.
    pub fn pid(&self, ns: &str, pod: &str, container: &str) -> Result<u32, String> {
        self.with_pod(ns, pod, |e| e.rt.lock().unwrap().containers.iter().find(|c| c.name == container)?.pid)
    }

    fn pids(&self, ns: &str, pod: &str) -> Result<Vec<u32>, String> {
        self.with_pod(ns, pod, |e| {
            Some(e.rt.lock().unwrap().containers.iter().filter_map(|c| c.pid).collect())
        })
    }

    fn sandbox(&self, ns: &str, pod: &str) -> Result<Sandbox, String> {
        self.with_pod(ns, pod, |e| e.rt.lock().unwrap().sandbox.clone())
    }

    /// A pod's IP.
    pub fn pod_ip(&self, ns: &str, pod: &str) -> Result<Ipv4Addr, String> {
        self.sandbox(ns, pod).map(|s| s.ip)
    }

    /// The network namespace a pod runs in (`ip netns exec <it> ...` runs a command there, with the
    /// pod's cluster DNS: the way to reach a pod by name, as `kubectl exec` would).
    pub fn netns(&self, ns: &str, pod: &str) -> Result<String, String> {
        self.sandbox(ns, pod).map(|s| s.netns)
    }

    /// Kills a container's process (SIGKILL); the restart policy decides what follows.
    pub fn crash(&self, ns: &str, pod: &str, container: &str) -> Result<(), String> {
        container::signal(self.pid(ns, pod, container)?, container::Signal::KILL);
        Ok(())
    }

    /// Freezes (SIGSTOP) every container of a pod.
    pub fn pause(&self, ns: &str, pod: &str) -> Result<(), String> {
        self.pids(ns, pod)?.into_iter().for_each(|p| container::signal(p, container::Signal::STOP));
        Ok(())
    }

    /// Thaws (SIGCONT) a paused pod.
    pub fn resume(&self, ns: &str, pod: &str) -> Result<(), String> {
        self.pids(ns, pod)?.into_iter().for_each(|p| container::signal(p, container::Signal::CONT));
        Ok(())
    }

    /// Cuts a pod off from every other pod and the host (its link goes down).
    pub fn partition(&self, ns: &str, pod: &str) -> Result<(), String> {
        self.ctx.network.set_connected(&self.sandbox(ns, pod)?, false)
    }

    /// Reconnects a partitioned pod.
    pub fn heal(&self, ns: &str, pod: &str) -> Result<(), String> {
        self.ctx.network.set_connected(&self.sandbox(ns, pod)?, true)
    }

    /// Cuts the host's own path to every pod (the operator's, when it runs on the host) while
    /// the kubelet's probes still reach them; `None` reconnects. See [`HostCut`].
    pub fn cut_host_path(&self, cut: Option<HostCut>) -> Result<(), String> {
        self.ctx.network.cut_host_path(cut)
    }

    /// Deletes everything in a PVC's directory (a lost disk); running processes keep open files.
    pub fn wipe_pvc(&self, ns: &str, claim: &str) -> Result<(), String> {
        let key = ("/persistentvolumeclaims".to_owned(), ns.to_owned(), claim.to_owned());
        let uid = self
            .ctx
            .api
            .store
            .read(|t| t.get(&key).and_then(|p| p["metadata"]["uid"].as_str().map(String::from)))
            .ok_or_else(|| format!("persistentvolumeclaim {ns}/{claim} not found"))?;
        let dir = volumes::pvc_dir(&self.ctx.config.dir, &uid);
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
            let p = entry.path();
            let result = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            result.map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }

    /// The node goes down: every process is killed, pods are reported NotReady, nothing runs until [`Node::start`].
    pub fn stop(&self) {
        self.up.store(false, Ordering::SeqCst);
        let entries: Vec<_> = self.pods.lock().unwrap().drain().map(|(_, e)| e).collect();
        for e in entries {
            let pod_json = self
                .ctx
                .api
                .store
                .read(|t| t.get(&("/pods".to_owned(), e.namespace.clone(), e.name.clone())).cloned());
            let rt = e.rt.clone();
            self.teardown(e);
            {
                let mut r = rt.lock().unwrap();
                r.node_down = true;
                for c in &mut r.containers {
                    c.ready = false;
                    c.pid = None;
                }
            }
            if let Some(p) = pod_json {
                pod::write_status(&self.ctx, &p, &rt);
            }
        }
    }

    /// The node comes back: its pods are started again.
    pub fn start(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Runs a command inside a container's namespaces.
    pub async fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        argv: &[&str],
    ) -> Result<std::process::Output, String> {
        let pid = self.pid(ns, pod, container)?;
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        container::exec_in(pid, &argv, Duration::from_secs(30)).await
    }

    /// Where a container's output goes (the newest pod of that name).
    pub fn log_path(&self, ns: &str, pod: &str, container: &str) -> Option<PathBuf> {
        let prefix = format!("{ns}_{pod}_");
        let dir = self.ctx.config.dir.join("logs");
        let mut dirs: Vec<_> = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        dirs.sort();
        dirs.pop().map(|(_, p)| p.join(format!("{container}.log")))
    }
}
