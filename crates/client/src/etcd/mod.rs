//! etcd client: membership, maintenance and snapshots.
//!
//! Cluster-wide calls (member list/add/promote/remove, alarms) go through one
//! balanced connection to every endpoint. Calls whose answer is per member
//! (status, defragment, snapshot, move-leader) use a cached connection to
//! that member alone, so the answer cannot come from a different member.

mod auth;
mod endpoints;
mod pool;
mod served;
mod snapshot;
mod tls;
mod types;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use etcd_client::{AlarmAction, Client, ConnectOptions, MemberAddOptions};
use tokio::sync::Mutex;
use tracing::Instrument;

pub use auth::{AuthState, ROOT_ROLE};
pub use endpoints::EndpointRewrite;
/// Kinds of etcd alarms.
pub use etcd_client::AlarmType;
pub use pool::EtcdPool;
pub use served::{Versions, served_certificate, versions};
pub use tls::EtcdTls;
pub use types::{Alarm, EndpointStatus, MemberInfo, Membership, SnapshotInfo};

use crate::{ClientError, metrics::EtcdMetrics};

/// How to connect to etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for each call (snapshots use `snapshot_timeout`).
    pub request_timeout: Duration,
    /// Limit for streaming a whole snapshot.
    pub snapshot_timeout: Duration,
    /// Host rewrites applied to every endpoint (DNS stand-in for local runs).
    pub rewrite: EndpointRewrite,
    /// TLS for `https` endpoints: the CA to trust, the client certificate, the name to verify.
    pub tls: Option<EtcdTls>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            snapshot_timeout: Duration::from_secs(600),
            rewrite: EndpointRewrite::default(),
            tls: None,
        }
    }
}

/// A connection to one etcd cluster.
#[derive(Clone)]
pub struct EtcdClient {
    /// The balanced connection to every endpoint, made by the first cluster-wide call (a pooled
    /// client that only asks members one by one never makes it).
    cluster: Arc<tokio::sync::OnceCell<Client>>,
    endpoints: Vec<String>,
    options: EtcdOptions,
    members: Arc<Mutex<HashMap<String, Client>>>,
    metrics: EtcdMetrics,
}

impl EtcdClient {
    /// Connects to the cluster through the given client endpoints.
    pub async fn connect(
        endpoints: &[String],
        options: EtcdOptions,
        metrics: EtcdMetrics,
    ) -> Result<Self, ClientError> {
        let client = Self::lazy(endpoints, options, metrics)?;
        client.cluster_client().await?;
        Ok(client)
    }

    /// [`Self::connect`] without dialling: connections are made by the first calls that need them.
    pub fn lazy(
        endpoints: &[String],
        options: EtcdOptions,
        metrics: EtcdMetrics,
    ) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::InvalidArgument("no etcd endpoints".into()));
        }
        let endpoints: Vec<String> = endpoints.iter().map(|e| options.rewrite.apply(e)).collect();
        Ok(Self { cluster: Arc::default(), endpoints, options, members: Arc::default(), metrics })
    }

    async fn cluster_client(&self) -> Result<Client, ClientError> {
        self.cluster.get_or_try_init(|| connect_client(&self.endpoints, &self.options)).await.cloned()
    }

    /// The endpoints this client talks to (after rewriting).
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    async fn member_client(&self, endpoint: &str) -> Result<Client, ClientError> {
        let endpoint = self.options.rewrite.apply(endpoint);
        let mut cache = self.members.lock().await;
        if let Some(c) = cache.get(&endpoint) {
            return Ok(c.clone());
        }
        let c = connect_client(std::slice::from_ref(&endpoint), &self.options).await?;
        cache.insert(endpoint, c.clone());
        Ok(c)
    }

    /// Runs one call with the request timeout and records its metrics.
    ///
    /// Reads (`Idempotent::Yes`) are retried on another connection attempt when
    /// the balanced channel routed them to an unreachable or hung member; writes
    /// never are, because a lost answer does not mean the change was not made.
    async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        id: Option<u64>,
        idempotent: Idempotent,
        f: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let cluster = self.cluster_client().await?;
        self.call_to(&self.endpoints.join(","), cluster, operation, id, idempotent, f).await
    }

    /// [`Self::call`] on a connection to `target` alone (one member): errors and spans name it,
    /// not every endpoint of the cluster.
    async fn call_to<T, F, Fut>(
        &self,
        target: &str,
        client: Client,
        operation: &'static str,
        id: Option<u64>,
        idempotent: Idempotent,
        mut f: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let span = tracing::info_span!("etcd", otel.name = %format!("etcd.{operation}"), otel.kind = "client", etcd.operation = operation, etcd.endpoints = %target, etcd.outcome = tracing::field::Empty);
        let result = self
            .call_attempts(target, &client, operation, id, idempotent, &mut f)
            .instrument(span.clone())
            .await;
        span.record("etcd.outcome", outcome(&result));
        result
    }

    async fn call_attempts<T, F, Fut>(
        &self,
        target: &str,
        client: &Client,
        operation: &'static str,
        id: Option<u64>,
        idempotent: Idempotent,
        f: &mut F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let attempts = if idempotent == Idempotent::Yes { READ_ATTEMPTS } else { 1 };
        let mut result = Err(ClientError::Etcd("not attempted".into()));
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
            }
            let started = Instant::now();
            result = match tokio::time::timeout(self.options.request_timeout, f(client.clone())).await {
                Ok(r) => r.map_err(|e| ClientError::from_etcd(target, id, e)),
                Err(_) => Err(ClientError::Timeout { operation, timeout: self.options.request_timeout }),
            };
            self.metrics.observe(operation, outcome(&result), started);
            // A hung member (stopped, or its disk stalled) times out where a dead one refuses:
            // either way the next attempt may be routed to another member.
            if !matches!(result, Err(ClientError::Unavailable { .. } | ClientError::Timeout { .. })) {
                break;
            }
        }
        result
    }

    /// Lists members and the cluster ID.
    pub async fn member_list(&self) -> Result<Membership, ClientError> {
        let resp = self
            .call("member_list", None, Idempotent::Yes, |mut c| async move { c.member_list().await })
            .await?;
        let cluster_id = resp.header().map(|h| h.cluster_id()).unwrap_or_default();
        let members = resp.members().iter().map(MemberInfo::from).collect();
        Ok(Membership { cluster_id, members })
    }

    /// Membership as the member serving `endpoint` knows it (answers without quorum: etcd serves
    /// member lists from its local state).
    pub async fn member_list_from(&self, endpoint: &str) -> Result<Membership, ClientError> {
        let member = self.member_client(endpoint).await?;
        let resp = self
            .call_to(endpoint, member, "member_list", None, Idempotent::Yes, |mut c| async move {
                c.member_list().await
            })
            .await?;
        let cluster_id = resp.header().map(|h| h.cluster_id()).unwrap_or_default();
        let members = resp.members().iter().map(MemberInfo::from).collect();
        Ok(Membership { cluster_id, members })
    }

    /// Adds a non-voting learner with the given peer URLs and returns it.
    pub async fn add_learner(&self, peer_urls: &[String]) -> Result<MemberInfo, ClientError> {
        let resp = self
            .call("member_add_learner", None, Idempotent::No, |mut c| async move {
                c.member_add(peer_urls, Some(MemberAddOptions::new().with_is_learner())).await
            })
            .await?;
        resp.member()
            .map(MemberInfo::from)
            .ok_or_else(|| ClientError::Etcd("member add returned no member".into()))
    }

    /// Promotes a learner; fails with [`ClientError::LearnerNotInSync`] until it caught up.
    pub async fn promote(&self, id: u64) -> Result<(), ClientError> {
        self.call(
            "member_promote",
            Some(id),
            Idempotent::No,
            |mut c| async move { c.member_promote(id).await },
        )
        .await
        .map(drop)
    }

    /// Sets a member's peer URLs (as `etcdctl member update`); the other members dial it there.
    pub async fn update_peer_urls(&self, id: u64, peer_urls: &[String]) -> Result<(), ClientError> {
        let urls = peer_urls.to_vec();
        self.call("member_update", Some(id), Idempotent::Yes, |mut c| {
            let urls = urls.clone();
            async move { c.member_update(id, urls).await }
        })
        .await
        .map(drop)
    }

    /// Removes a member from the cluster.
    pub async fn remove(&self, id: u64) -> Result<(), ClientError> {
        self.call("member_remove", Some(id), Idempotent::No, |mut c| async move { c.member_remove(id).await })
            .await
            .map(drop)
    }

    /// Status of the member serving `endpoint`.
    pub async fn status(&self, endpoint: &str) -> Result<EndpointStatus, ClientError> {
        let member = self.member_client(endpoint).await?;
        let resp =
            self.call_to(endpoint, member, "status", None, Idempotent::Yes, |mut c| async move {
                c.status().await
            })
            .await?;
        Ok(EndpointStatus::new(endpoint, &resp))
    }

    /// Asks the leader (reached through `leader_endpoint`) to hand leadership to `to`.
    pub async fn move_leader(&self, leader_endpoint: &str, to: u64) -> Result<(), ClientError> {
        let leader = self.member_client(leader_endpoint).await?;
        self.call_to(leader_endpoint, leader, "move_leader", Some(to), Idempotent::No, |mut c| async move {
            c.move_leader(to).await
        })
        .await
        .map(drop)
    }

    /// Closes the connections to members other than `endpoints` (members that left, kept by a
    /// pooled client).
    pub async fn retain_members(&self, endpoints: &[String]) {
        let keep: Vec<String> = endpoints.iter().map(|e| self.options.rewrite.apply(e)).collect();
        self.members.lock().await.retain(|e, _| keep.contains(e));
    }

    /// Active alarms of the whole cluster.
    pub async fn alarms(&self) -> Result<Vec<Alarm>, ClientError> {
        let resp = self
            .call("alarm_list", None, Idempotent::Yes, |mut c| async move {
                c.alarm(AlarmAction::Get, AlarmType::None, None).await
            })
            .await?;
        Ok(resp.alarms().iter().map(Alarm::from).collect())
    }

    /// Compacts the key history up to `revision`, physically (the freed pages can then be defragmented).
    pub async fn compact(&self, revision: i64) -> Result<(), ClientError> {
        self.call("compact", None, Idempotent::Yes, |mut c| async move {
            c.compact(revision, Some(etcd_client::CompactionOptions::new().with_physical())).await
        })
        .await
        .map(drop)
    }

    /// Disarms every active alarm (call only after the cause is fixed).
    pub async fn disarm_alarms(&self) -> Result<(), ClientError> {
        for alarm in self.alarms().await? {
            // Disarming an alarm that is already gone is harmless, so this may be retried.
            self.call("alarm_disarm", Some(alarm.member_id), Idempotent::Yes, |mut c| {
                let mut opts = etcd_client::AlarmOptions::new();
                opts.with_member(alarm.member_id);
                async move { c.alarm(AlarmAction::Deactivate, alarm.kind, Some(opts)).await }
            })
            .await?;
        }
        Ok(())
    }

    /// Defragments the one member serving `endpoint`.
    pub async fn defragment(&self, endpoint: &str) -> Result<(), ClientError> {
        let mut c = self.member_client(endpoint).await?;
        let started = Instant::now();
        // Defragmentation blocks the member and can take long; it gets the snapshot limit.
        let result = match tokio::time::timeout(self.options.snapshot_timeout, c.defragment()).await {
            Ok(r) => r.map(drop).map_err(|e| ClientError::from_etcd(endpoint, None, e)),
            Err(_) => {
                Err(ClientError::Timeout { operation: "defragment", timeout: self.options.snapshot_timeout })
            }
        };
        self.metrics.observe("defragment", outcome(&result), started);
        result
    }
}

/// Whether a call may be repeated after an unanswered attempt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Idempotent {
    Yes,
    No,
}

/// Attempts of a read routed to an unreachable member.
const READ_ATTEMPTS: u32 = 3;

fn outcome<T>(result: &Result<T, ClientError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ClientError::Timeout { .. }) => "timeout",
        Err(ClientError::Unavailable { .. }) => "unavailable",
        Err(_) => "error",
    }
}

async fn connect_client(endpoints: &[String], options: &EtcdOptions) -> Result<Client, ClientError> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(options.connect_timeout)
        .with_timeout(options.request_timeout)
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    let endpoints = endpoints::one_scheme(endpoints, options.tls.is_some());
    if let Some(tls) = options.tls.as_ref().filter(|_| endpoints.iter().all(|e| e.starts_with("https://"))) {
        opts = opts.with_tls(tls.options());
    }
    let target = endpoints.join(",");
    match tokio::time::timeout(options.connect_timeout, Client::connect(&endpoints, Some(opts))).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(ClientError::from_etcd(&target, None, e)),
        Err(_) => Err(ClientError::Timeout { operation: "connect", timeout: options.connect_timeout }),
    }
}
