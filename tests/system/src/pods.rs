//! Watching member pods while the operator restarts them: which restarted, in
//! what order, and how many were down at once.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client, api::ListParams};

/// What a watcher of the pods saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Members in the order their pods were replaced.
    pub restarted: Vec<String>,
    /// The most members not ready at once.
    pub most_down: usize,
    /// The pods not ready when the most were, and why (for the failure message).
    pub worst: Vec<String>,
}

/// Why a pod is not ready: being deleted, not running, or its Ready condition's reason.
fn why_not_ready(p: &Pod) -> String {
    let name = p.metadata.name.clone().unwrap_or_default();
    if p.metadata.deletion_timestamp.is_some() {
        return format!("{name}: deleting");
    }
    let status = p.status.as_ref();
    let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
    let containers = status.and_then(|s| s.container_statuses.as_ref());
    let restarts: i32 = containers.map(|cs| cs.iter().map(|c| c.restart_count).sum()).unwrap_or_default();
    format!("{name}: phase {phase}, {restarts} container restarts")
}

/// Whether a pod passes readiness and is not being deleted.
pub fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn selector(cluster: &str) -> ListParams {
    ListParams::default().labels(&format!("app.kubernetes.io/instance={cluster}"))
}

/// Samples the `size` member pods of `cluster` (namespace `default`) every 100 ms until `stop`.
pub fn watch(
    client: &Client,
    cluster: &str,
    size: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Seen> {
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let selector = selector(cluster);
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let mut uids = BTreeMap::<String, String>::new();
        while !stop.load(Ordering::SeqCst) {
            if let Ok(list) = pods.list(&selector).await {
                let ready = list.items.iter().filter(|p| is_ready(p)).count();
                let down = size.saturating_sub(ready);
                if down > seen.most_down {
                    seen.most_down = down;
                    let at = unix_now();
                    seen.worst = list
                        .items
                        .iter()
                        .filter(|p| !is_ready(p))
                        .map(|p| format!("{at} {}", why_not_ready(p)))
                        .collect();
                }
                for p in &list.items {
                    let (name, uid) = (p.metadata.name.clone().unwrap(), p.metadata.uid.clone().unwrap());
                    if uids.insert(name.clone(), uid.clone()).is_some_and(|old| old != uid) {
                        seen.restarted.push(name);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    })
}

/// Now as Unix seconds and milliseconds, to line a failure up with the members' logs.
fn unix_now() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("t={}.{:03}", t.as_secs(), t.subsec_millis())
}

/// Waits up to a minute until every one of the `size` member pods passes readiness (a cluster
/// just started or rolled may not yet); fails naming each pod that is not, and why.
pub async fn all_ready(client: &Client, cluster: &str, size: usize) {
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let mut last = Vec::new();
    for _ in 0..600 {
        let list = pods.list(&selector(cluster)).await.expect("pods");
        if list.items.len() == size && list.items.iter().all(is_ready) {
            return;
        }
        last = list.items;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let why: Vec<String> = last.iter().filter(|p| !is_ready(p)).map(why_not_ready).collect();
    panic!("member pods of {cluster} not all ready in 60 s: {} of {size} exist; {why:?}", last.len());
}
