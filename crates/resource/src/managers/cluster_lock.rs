//! The per-cluster lock: a Lease per EtcdCluster, so two cluster-service
//! replicas never change one cluster at once. The lease has a bounded
//! duration, so a crashed holder's lock expires by itself.
//!
//! Expiry is judged on the observer's own clock, as client-go's leader
//! election does with `observedTime`: another holder's lease is free only once
//! this process has seen it unchanged (same resourceVersion) for a whole lease
//! duration. The holder's `renewTime` is another machine's clock and is never
//! compared with ours, so clock skew between replicas cannot hand out a lock
//! early; the cost is that a crashed holder's lock is taken over up to one
//! duration after the taker first looked.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{self, Timestamp},
};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams, Preconditions},
};

use crate::ResourceError;

/// Lock state read from a Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it, or the holder's lease expired.
    Free,
    /// This holder already holds it.
    Mine,
    /// Someone else holds it until the given time.
    HeldBy {
        /// Holder identity.
        holder: String,
        /// When the lease expires unless renewed.
        until: Timestamp,
    },
}

/// Decides who holds a lease that this observer has seen unchanged for `unchanged_for`. Pure.
pub fn lock_state(lease: &Lease, me: &str, unchanged_for: Duration) -> LockState {
    let spec = lease.spec.clone().unwrap_or_default();
    let Some(holder) = spec.holder_identity.filter(|h| !h.is_empty()) else { return LockState::Free };
    if holder == me {
        return LockState::Mine;
    }
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
    match duration.checked_sub(unchanged_for).filter(|left| !left.is_zero()) {
        Some(left) => LockState::HeldBy {
            holder,
            until: Timestamp::now()
                .checked_add(jiff::SignedDuration::try_from(left).unwrap_or_default())
                .unwrap_or_else(|_| Timestamp::now()),
        },
        None => LockState::Free,
    }
}

/// What an attempt to lock returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The lock is ours until released or expired.
    Yes,
    /// Another holder has it.
    No {
        /// Holder identity.
        holder: String,
        /// When its lease expires unless renewed.
        until: Timestamp,
    },
}

/// Takes and releases per-cluster locks as one holder.
#[derive(Clone)]
pub struct ClusterLock {
    client: Client,
    holder: String,
    duration: Duration,
    /// Per Lease (`namespace/name`): the resourceVersion last seen and when (our clock) it was first seen.
    observed: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    /// Per Lease this holder wrote and has not released: the Lease as written. A renewal writes
    /// onto it and the release deletes exactly it, without reading first (a lock cost four
    /// requests per call, a quarter of what a thousand new clusters asked of the API server).
    written: Arc<Mutex<HashMap<String, Lease>>>,
}

/// Lease name of a cluster's lock.
pub fn lock_name(cluster: &str) -> String {
    format!("{cluster}-etcd-operator-lock")
}

/// Name of the Lease held while the operator saves a snapshot of `cluster` for itself.
pub fn snapshot_lock_name(cluster: &str) -> String {
    format!("{cluster}-etcd-snapshot-lock")
}

/// Lease name of the lock that lets one replica at a time run a backup.
pub fn backup_lock_name(backup: &str) -> String {
    format!("{backup}-etcd-backup-lock")
}

impl ClusterLock {
    /// A lock client for `holder` (unique per process), holding leases for `duration`.
    pub fn new(client: Client, holder: impl Into<String>, duration: Duration) -> Self {
        Self { client, holder: holder.into(), duration, observed: Arc::default(), written: Arc::default() }
    }

    /// The lease duration this holder writes.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// How long (our clock) `lease` has been seen unchanged: zero on a new resourceVersion.
    fn unchanged_for(&self, namespace: &str, name: &str, lease: &Lease) -> Duration {
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        let entry =
            observed.entry(format!("{namespace}/{name}")).or_insert_with(|| (rv.clone(), Instant::now()));
        if entry.0 != rv {
            *entry = (rv, Instant::now());
        }
        entry.1.elapsed()
    }

    fn err(verb: &'static str, namespace: &str, name: &str, source: kube::Error) -> ResourceError {
        ResourceError::Api {
            verb,
            kind: "Lease".into(),
            namespace: namespace.into(),
            name: name.into(),
            source: Box::new(source),
        }
    }

    fn desired(&self, namespace: &str, name: &str, previous: Option<&Lease>, now: Timestamp) -> Lease {
        let transitions =
            previous.and_then(|l| l.spec.as_ref()).and_then(|s| s.lease_transitions).unwrap_or(0);
        Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                resource_version: previous.and_then(|l| l.metadata.resource_version.clone()),
                labels: Some(
                    [("app.kubernetes.io/managed-by".to_owned(), "etcd-operator".to_owned())].into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.holder.clone()),
                lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(transitions + 1),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Tries once to take (or renew) the lock of `cluster`; never waits.
    ///
    /// Writes are conditional on the read resourceVersion, so of two holders
    /// racing for a free lock exactly one wins.
    pub async fn try_acquire(&self, namespace: &str, cluster: &str) -> Result<Acquired, ResourceError> {
        self.try_acquire_lease(namespace, &lock_name(cluster)).await
    }

    /// [`ClusterLock::try_acquire`] on a Lease of any name (for locks on other objects).
    ///
    /// A Lease this holder wrote is renewed onto what it wrote; otherwise it is created, as
    /// released locks are deleted. Only when that write conflicts is the Lease read and judged.
    pub async fn try_acquire_lease(&self, namespace: &str, name: &str) -> Result<Acquired, ResourceError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        let now = Timestamp::now();
        let attempt = match self.written(namespace, name) {
            Some(mine) => {
                api.replace(name, &PostParams::default(), &self.desired(namespace, name, Some(&mine), now))
                    .await
            }
            None => api.create(&PostParams::default(), &self.desired(namespace, name, None, now)).await,
        };
        match attempt {
            Ok(lease) => Ok(self.wrote(namespace, name, lease)),
            // It exists, or changed since this holder wrote it: read it and judge.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                self.forget(namespace, name);
                self.acquire_read(&api, namespace, name, now).await
            }
            Err(e) => Err(Self::err("acquire", namespace, name, e)),
        }
    }

    /// Reads the Lease and takes it if it is free (or already ours), conditional on that read.
    async fn acquire_read(
        &self,
        api: &Api<Lease>,
        namespace: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<Acquired, ResourceError> {
        let current = api.get_opt(name).await.map_err(|e| Self::err("get", namespace, name, e))?;
        let result = match &current {
            None => api.create(&PostParams::default(), &self.desired(namespace, name, None, now)).await,
            Some(lease) => {
                match lock_state(lease, &self.holder, self.unchanged_for(namespace, name, lease)) {
                    LockState::HeldBy { holder, until } => return Ok(Acquired::No { holder, until }),
                    LockState::Free | LockState::Mine => {
                        let desired = self.desired(namespace, name, Some(lease), now);
                        api.replace(name, &PostParams::default(), &desired).await
                    }
                }
            }
        };
        match result {
            Ok(lease) => Ok(self.wrote(namespace, name, lease)),
            // Lost the race: someone wrote the lease between our read and write.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let lease = api.get_opt(name).await.map_err(|e| Self::err("get", namespace, name, e))?;
                match lease.map(|l| lock_state(&l, &self.holder, Duration::ZERO)) {
                    Some(LockState::HeldBy { holder, until }) => Ok(Acquired::No { holder, until }),
                    _ => Ok(Acquired::No { holder: "unknown".into(), until: Timestamp::now() }),
                }
            }
            Err(e) => Err(Self::err("acquire", namespace, name, e)),
        }
    }

    fn written(&self, namespace: &str, name: &str) -> Option<Lease> {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).get(&format!("{namespace}/{name}")).cloned()
    }

    fn wrote(&self, namespace: &str, name: &str, lease: Lease) -> Acquired {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.insert(format!("{namespace}/{name}"), lease);
        Acquired::Yes
    }

    fn forget(&self, namespace: &str, name: &str) -> Option<Lease> {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).remove(&format!("{namespace}/{name}"))
    }

    /// Releases the lock if this holder still has it (deletes the Lease, conditionally).
    pub async fn release(&self, namespace: &str, cluster: &str) -> Result<(), ResourceError> {
        self.release_lease(namespace, &lock_name(cluster)).await
    }

    /// [`ClusterLock::release`] on a Lease of any name: deletes the Lease as this holder last
    /// wrote it (a Lease changed since, taken over after expiry, is not ours to delete); without
    /// such a record, reads it first.
    pub async fn release_lease(&self, namespace: &str, name: &str) -> Result<(), ResourceError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        let lease = match self.forget(namespace, name) {
            Some(mine) => mine,
            None => {
                let read = api.get_opt(name).await.map_err(|e| Self::err("get", namespace, name, e))?;
                match read {
                    Some(lease) if lock_state(&lease, &self.holder, Duration::ZERO) == LockState::Mine => {
                        lease
                    }
                    _ => return Ok(()),
                }
            }
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            // Gone, or taken over after expiry: either way it is no longer ours to release.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(Self::err("release", namespace, name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed: Timestamp, seconds: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(Into::into),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn held_until_the_observer_has_seen_it_unchanged_for_a_whole_duration() {
        let t0: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let l = lease(Some("replica-a"), t0, 30);
        let secs = Duration::from_secs;
        assert!(
            matches!(lock_state(&l, "replica-b", secs(10)), LockState::HeldBy { ref holder, .. } if holder == "replica-a")
        );
        assert_eq!(lock_state(&l, "replica-a", secs(10)), LockState::Mine);
        assert_eq!(lock_state(&l, "replica-b", secs(30)), LockState::Free, "a crashed holder's lock expires");
        assert_eq!(lock_state(&lease(None, t0, 30), "replica-b", secs(0)), LockState::Free);
        // A renewTime far in the past (another machine's clock) alone frees nothing.
        let skewed = lease(Some("replica-a"), "2000-01-01T00:00:00Z".parse().unwrap(), 30);
        assert!(matches!(lock_state(&skewed, "replica-b", secs(0)), LockState::HeldBy { .. }));
    }
}
