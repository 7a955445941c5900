//! One pod on the node, from sandbox to teardown: network namespace,
//! volumes, init containers in order, app containers under supervision,
//! status reported on every change, and on deletion a graceful stop followed
//! by the removal of the Pod object.

use std::{
    collections::HashMap,
    net::Ipv4Addr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;
use tokio::sync::{Notify, watch};

use super::{
    status::{ContainerRuntime, PodRuntime},
    volumes,
};
use crate::node::NodeCtx;
use crate::{objects, store::Key};

/// Which container of the pod.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// `spec.initContainers[i]`.
    Init(usize),
    /// `spec.containers[i]`.
    Main(usize),
}

/// How one run of a container ended.
pub enum Outcome {
    /// The process exited (by itself or killed after a failed liveness probe).
    Exited { code: i32, ran: Duration },
    /// It could not be created; the waiting reason says why.
    NotCreated,
    /// The pod is being deleted.
    Terminating,
}

/// What a pod's tasks share (the supervisor runs each container of it).
#[derive(Clone)]
pub struct PodCtx {
    /// The node.
    pub node: Arc<NodeCtx>,
    /// The pod as it was when the node took it.
    pub pod: Value,
    /// What the node knows about it.
    pub rt: Arc<Mutex<PodRuntime>>,
    /// Wakes the status writer.
    pub changed: Arc<Notify>,
    /// `Some(grace)` once the pod is being deleted.
    pub term: watch::Receiver<Option<Duration>>,
    /// Network namespace.
    pub netns: String,
    /// Pod IP.
    pub pod_ip: Ipv4Addr,
    /// Volume name → host path.
    pub volumes: HashMap<String, PathBuf>,
    /// Directory of the containers' logs.
    pub log_dir: PathBuf,
}

/// Restart counts carried over from the stored status (a node restart keeps counting).
fn restarts(pod: &Value, field: &str, name: &str) -> u32 {
    pod["status"][field]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .and_then(|c| c["restartCount"].as_u64())
        .unwrap_or(0) as u32
}

/// A new runtime record for a pod.
pub fn new_runtime(pod: &Value, host_ip: String) -> PodRuntime {
    let list = |field: &str, status_field: &str| -> Vec<ContainerRuntime> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                ContainerRuntime::new(c, restarts(pod, status_field, c["name"].as_str().unwrap_or_default()))
            })
            .collect()
    };
    PodRuntime {
        host_ip,
        start_time: pod["status"]["startTime"].as_str().map_or_else(objects::now, String::from),
        init: list("initContainers", "initContainerStatuses"),
        containers: list("containers", "containerStatuses"),
        ..PodRuntime::default()
    }
}

fn pod_key(pod: &Value) -> Key {
    let m = &pod["metadata"];
    (
        "/pods".into(),
        m["namespace"].as_str().unwrap_or_default().into(),
        m["name"].as_str().unwrap_or_default().into(),
    )
}

/// Writes the pod's status if it changed (and the stored pod is still this one).
pub fn write_status(node: &NodeCtx, pod: &Value, rt: &Mutex<PodRuntime>) {
    let rt = rt.lock().unwrap().clone();
    let key = pod_key(pod);
    let uid = pod["metadata"]["uid"].clone();
    let _ = node.api.store.transact(|txn| {
        if let Some(current) = txn.get(&key).filter(|c| c["metadata"]["uid"] == uid).cloned() {
            let status = rt.status(&current["status"], &objects::now());
            if current["status"] != status {
                let mut next = current;
                next["status"] = status;
                txn.put(key.clone(), next);
            }
        }
        Ok(())
    });
}

/// Runs a pod until it is deleted; then removes the Pod object.
pub async fn run(
    node: Arc<NodeCtx>,
    pod: Value,
    rt: Arc<Mutex<PodRuntime>>,
    term: watch::Receiver<Option<Duration>>,
) {
    let changed = Arc::new(Notify::new());
    let writer = {
        let (node, pod, rt, changed) = (node.clone(), pod.clone(), rt.clone(), changed.clone());
        async move {
            loop {
                write_status(&node, &pod, &rt);
                changed.notified().await;
            }
        }
    };
    tokio::select! {
        () = lifecycle(node.clone(), pod.clone(), rt.clone(), changed, term) => {}
        () = writer => {}
    }
    // Teardown: the network goes, emptyDirs go, PVC directories stay.
    if let Some(sandbox) = rt.lock().unwrap().sandbox.take() {
        node.network.delete_sandbox(&sandbox);
    }
    node.forget_sandbox(&pod);
    let _ = std::fs::remove_dir_all(node.pod_dir(&pod));
    write_status(&node, &pod, &rt);
    let key = pod_key(&pod);
    let uid = pod["metadata"]["uid"].clone();
    let _ = node.api.store.transact(|txn| {
        if let Some(current) = txn.get(&key).filter(|c| c["metadata"]["uid"] == uid).cloned()
            && current["metadata"].get("deletionTimestamp").is_some()
        {
            objects::finish_deletion(txn, &key, current);
        }
        Ok(())
    });
}

fn set_pending(rt: &Mutex<PodRuntime>, changed: &Notify, pending: Option<(&str, String)>) {
    rt.lock().unwrap().pending = pending.map(|(r, m)| (r.to_owned(), m));
    changed.notify_one();
}

async fn wait_or_terminate(term: &watch::Receiver<Option<Duration>>, d: Duration) -> bool {
    let mut term = term.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = term.wait_for(Option::is_some) => true,
    }
}

async fn lifecycle(
    node: Arc<NodeCtx>,
    pod: Value,
    rt: Arc<Mutex<PodRuntime>>,
    changed: Arc<Notify>,
    term: watch::Receiver<Option<Duration>>,
) {
    let sandbox = loop {
        match node.network.create_sandbox(pod["status"]["podIP"].as_str().and_then(|ip| ip.parse().ok())) {
            Ok(s) => break s,
            Err(e) => set_pending(&rt, &changed, Some(("FailedCreatePodSandBox", e))),
        }
        if wait_or_terminate(&term, Duration::from_secs(2)).await {
            return;
        }
    };
    {
        let mut r = rt.lock().unwrap();
        r.sandbox = Some(sandbox.clone());
        r.pod_ip = Some(sandbox.ip.to_string());
        r.pending = None;
    }
    write_status(&node, &pod, &rt);
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    if let Err(e) =
        node.dns.write_resolv_conf(&crate::node::net::network::Network::resolv_conf_path(&sandbox), namespace)
    {
        tracing::warn!("resolv.conf of {}: {e}", sandbox.netns);
    }
    node.remember_sandbox(&pod, &sandbox);
    node.refresh_dns();
    let pod_dir = node.pod_dir(&pod);
    let volumes = loop {
        let with_account = node.api.store.read(|txn| {
            let mut v = volumes::prepare(txn, &node.api.tokens, &node.config.dir, &pod_dir, &pod)?;
            if super::service_account::automount(&pod) {
                let api = &node.api;
                let dir = super::service_account::write_files(txn, &api.tokens, &pod_dir, &pod, &api.ca_pem)?;
                v.insert(super::service_account::VOLUME.to_owned(), dir);
            }
            Ok::<_, String>(v)
        });
        match with_account {
            Ok(v) => break v,
            Err(e) => set_pending(&rt, &changed, Some(("FailedMount", e))),
        }
        if wait_or_terminate(&term, Duration::from_secs(1)).await {
            return;
        }
    };
    rt.lock().unwrap().volume_dirs = volumes.values().cloned().collect();
    set_pending(&rt, &changed, None);
    let log_dir = node.log_dir(&pod);
    let _ = std::fs::create_dir_all(&log_dir);
    let ctx =
        PodCtx { node, pod, rt, changed, term, netns: sandbox.netns, pod_ip: sandbox.ip, volumes, log_dir };
    if !ctx.run_init_containers().await {
        return;
    }
    let containers = ctx.pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
    futures::future::join_all(containers.into_iter().enumerate().map(|(i, c)| ctx.supervise(i, c))).await;
    let deleted = ctx.term.borrow().is_some();
    if !deleted {
        // The restart policy ended every container: the pod is finished until deleted.
        let failed =
            ctx.rt.lock().unwrap().containers.iter().any(
                |c| matches!(c.state, super::status::State::Terminated { exit_code, .. } if exit_code != 0),
            );
        ctx.rt.lock().unwrap().finished = Some(if failed { "Failed" } else { "Succeeded" });
        ctx.changed.notify_one();
        let mut term = ctx.term.clone();
        let _ = term.wait_for(Option::is_some).await;
    }
}

impl PodCtx {
    /// Runs init containers in order; false when the pod ends (deleted, or failed under `Never`).
    async fn run_init_containers(&self) -> bool {
        let never = self.pod["spec"]["restartPolicy"] == "Never";
        let (base, max) = self.node.config.restart_backoff;
        let inits = self.pod["spec"]["initContainers"].as_array().cloned().unwrap_or_default();
        for (i, c) in inits.iter().enumerate() {
            let mut backoff = base;
            loop {
                match self.run_once(Slot::Init(i), c).await {
                    Outcome::Terminating => return false,
                    Outcome::Exited { code: 0, .. } => break,
                    Outcome::Exited { .. } if never => {
                        self.rt.lock().unwrap().finished = Some("Failed");
                        self.changed.notify_one();
                        let mut term = self.term.clone();
                        let _ = term.wait_for(Option::is_some).await;
                        return false;
                    }
                    Outcome::Exited { .. } => self.update(Slot::Init(i), |c| c.restart_count += 1),
                    Outcome::NotCreated => {}
                }
                if self.sleep_or_terminate(backoff).await {
                    return false;
                }
                backoff = (backoff * 2).min(max);
            }
        }
        self.rt.lock().unwrap().initialized = true;
        self.changed.notify_one();
        true
    }

    /// `namespace/name`, for logs.
    pub fn name(&self) -> String {
        format!(
            "{}/{}",
            self.pod["metadata"]["namespace"].as_str().unwrap_or_default(),
            self.pod["metadata"]["name"].as_str().unwrap_or_default()
        )
    }
}
