//! Connections to etcd kept between observations, one per cluster.
//!
//! A health probe used to open a balanced connection to every member and one more to each member
//! for its status, then drop them all: with TLS that is a handshake per member per probe. A pooled
//! connection is reused while it is asked for with the same endpoints and options, and closed once
//! unused for the idle limit. Entries are keyed by cluster, so two clusters (or namespaces) never
//! share one, even if their endpoints were to look alike.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{EtcdClient, EtcdOptions};
use crate::{ClientError, metrics::EtcdMetrics};

/// Pooled connections to etcd clusters.
#[derive(Clone)]
pub struct EtcdPool {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    idle: Duration,
    metrics: EtcdMetrics,
}

struct Entry {
    client: EtcdClient,
    options: EtcdOptions,
    used: Instant,
}

impl EtcdPool {
    /// A pool whose connections close after `idle` unused (zero: it keeps none).
    pub fn new(idle: Duration, metrics: EtcdMetrics) -> Self {
        Self { entries: Arc::default(), idle, metrics }
    }

    /// The connection of `cluster` (its `namespace/name`) through `endpoints`: the pooled one when
    /// it was made for these endpoints and options, else a new one, which replaces it.
    pub async fn get(
        &self,
        cluster: &str,
        endpoints: &[String],
        options: &EtcdOptions,
    ) -> Result<EtcdClient, ClientError> {
        if let Some(client) = self.reuse(cluster, endpoints, options) {
            return Ok(client);
        }
        let client = EtcdClient::lazy(endpoints, options.clone(), self.metrics.clone())?;
        if self.idle.is_zero() {
            return Ok(client);
        }
        let entry = Entry { client: client.clone(), options: options.clone(), used: Instant::now() };
        self.entries.lock().unwrap().insert(cluster.to_owned(), entry);
        Ok(client)
    }

    fn reuse(&self, cluster: &str, endpoints: &[String], options: &EtcdOptions) -> Option<EtcdClient> {
        let mut entries = self.entries.lock().unwrap();
        let now = Instant::now();
        entries.retain(|_, e| now.duration_since(e.used) < self.idle);
        let rewritten: Vec<String> = endpoints.iter().map(|e| options.rewrite.apply(e)).collect();
        let entry = entries
            .get_mut(cluster)
            .filter(|e| e.options == *options && e.client.endpoints() == rewritten)?;
        entry.used = now;
        Some(entry.client.clone())
    }

    /// Drops the connection of `cluster`: the next [`Self::get`] dials afresh (after the cluster
    /// did not answer through it, or it was deleted).
    pub fn forget(&self, cluster: &str) {
        self.entries.lock().unwrap().remove(cluster);
    }

    /// Clusters with a pooled connection.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// Whether no connection is pooled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
