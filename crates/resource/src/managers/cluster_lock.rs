//! The per-cluster lock: a Lease per EtcdCluster, so two cluster-service
//! replicas never change one cluster at once. The lease has a bounded
//! duration, so a crashed holder's lock expires by itself.

use std::time::Duration;

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

/// Decides who holds a lease at `now`. Pure.
pub fn lock_state(lease: &Lease, me: &str, now: Timestamp) -> LockState {
    let spec = lease.spec.clone().unwrap_or_default();
    let Some(holder) = spec.holder_identity.filter(|h| !h.is_empty()) else { return LockState::Free };
    if holder == me {
        return LockState::Mine;
    }
    let renewed = spec.renew_time.or(spec.acquire_time).map(|t| t.0);
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    match renewed.and_then(|r| r.checked_add(jiff::SignedDuration::from_secs(duration)).ok()) {
        Some(until) if until > now => LockState::HeldBy { holder, until },
        _ => LockState::Free,
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
}

/// Lease name of a cluster's lock.
pub fn lock_name(cluster: &str) -> String {
    format!("{cluster}-etcd-operator-lock")
}

/// Lease name of the lock that lets one replica at a time run a backup.
pub fn backup_lock_name(backup: &str) -> String {
    format!("{backup}-etcd-backup-lock")
}

impl ClusterLock {
    /// A lock client for `holder` (unique per process), holding leases for `duration`.
    pub fn new(client: Client, holder: impl Into<String>, duration: Duration) -> Self {
        Self { client, holder: holder.into(), duration }
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
    pub async fn try_acquire_lease(&self, namespace: &str, name: &str) -> Result<Acquired, ResourceError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        let name = name.to_owned();
        let now = Timestamp::now();
        let current = api.get_opt(&name).await.map_err(|e| Self::err("get", namespace, &name, e))?;
        let result = match &current {
            None => api.create(&PostParams::default(), &self.desired(namespace, &name, None, now)).await,
            Some(lease) => match lock_state(lease, &self.holder, now) {
                LockState::HeldBy { holder, until } => return Ok(Acquired::No { holder, until }),
                LockState::Free | LockState::Mine => {
                    api.replace(
                        &name,
                        &PostParams::default(),
                        &self.desired(namespace, &name, Some(lease), now),
                    )
                    .await
                }
            },
        };
        match result {
            Ok(_) => Ok(Acquired::Yes),
            // Lost the race: someone wrote the lease between our read and write.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let lease = api.get_opt(&name).await.map_err(|e| Self::err("get", namespace, &name, e))?;
                match lease.map(|l| lock_state(&l, &self.holder, Timestamp::now())) {
                    Some(LockState::HeldBy { holder, until }) => Ok(Acquired::No { holder, until }),
                    _ => Ok(Acquired::No { holder: "unknown".into(), until: Timestamp::now() }),
                }
            }
            Err(e) => Err(Self::err("acquire", namespace, &name, e)),
        }
    }

    /// Releases the lock if this holder still has it (deletes the Lease, conditionally).
    pub async fn release(&self, namespace: &str, cluster: &str) -> Result<(), ResourceError> {
        self.release_lease(namespace, &lock_name(cluster)).await
    }

    /// [`ClusterLock::release`] on a Lease of any name.
    pub async fn release_lease(&self, namespace: &str, name: &str) -> Result<(), ResourceError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        let name = name.to_owned();
        let Some(lease) = api.get_opt(&name).await.map_err(|e| Self::err("get", namespace, &name, e))? else {
            return Ok(());
        };
        if lock_state(&lease, &self.holder, Timestamp::now()) != LockState::Mine {
            return Ok(());
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            // Gone, or taken over after expiry: either way it is no longer ours to release.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(Self::err("release", namespace, &name, e)),
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
    fn held_until_expiry_then_free() {
        let t0: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let l = lease(Some("replica-a"), t0, 30);
        let at = |s: i64| t0.checked_add(jiff::SignedDuration::from_secs(s)).unwrap();
        assert_eq!(
            lock_state(&l, "replica-b", at(10)),
            LockState::HeldBy { holder: "replica-a".into(), until: at(30) }
        );
        assert_eq!(lock_state(&l, "replica-a", at(10)), LockState::Mine);
        assert_eq!(lock_state(&l, "replica-b", at(31)), LockState::Free, "a crashed holder's lock expires");
        assert_eq!(lock_state(&lease(None, t0, 30), "replica-b", at(1)), LockState::Free);
    }
}
