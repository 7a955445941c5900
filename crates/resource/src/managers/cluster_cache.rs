//! EtcdClusters as a watch last delivered them: the recorded status that
//! GetClusterStatus answers by default, without a read of the API server per
//! call (tooling may call it a thousand times a second).

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use etcd_operator_api::EtcdCluster;
use futures::StreamExt;
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};

/// Read side of a watch of EtcdClusters.
#[derive(Clone)]
pub struct ClusterCache {
    store: Store<EtcdCluster>,
    /// False until the first list, and from a watch error until the watch recovers: then the
    /// cache may be behind by more than a watch's latency, and callers read the API instead.
    current: Arc<AtomicBool>,
}

impl ClusterCache {
    /// A cache of the clusters in `namespace` (all when `None`), and the watch that fills it,
    /// for the caller to run for as long as the cache is used.
    pub fn new(client: Client, namespace: Option<&str>) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let api: Api<EtcdCluster> = match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let (store, writer) = reflector::store();
        let current = Arc::new(AtomicBool::new(false));
        let flag = current.clone();
        let watch = watcher(api, watcher::Config::default())
            .default_backoff()
            // Only what a status answer needs is kept: managed fields are most of an object.
            .modify(|c| c.meta_mut().managed_fields = None)
            .reflect(writer)
            .for_each(move |event| {
                match event {
                    Ok(watcher::Event::InitDone | watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                        flag.store(true, Ordering::Release);
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Err(e) => {
                        flag.store(false, Ordering::Release);
                        tracing::warn!("watching EtcdClusters for recorded status: {e}; reads go to the API");
                    }
                }
                std::future::ready(())
            });
        (Self { store, current }, watch)
    }

    /// The cluster as last watched, when the watch is current and has seen it; `None` means
    /// "ask the API server" (not yet listed, the watch failing, or a cluster created since).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<EtcdCluster>> {
        if !self.current.load(Ordering::Acquire) {
            return None;
        }
        self.store.get(&ObjectRef::new(name).within(namespace))
    }
}
