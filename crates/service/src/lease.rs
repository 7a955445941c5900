//! Holding a Lease for as long as a call runs: taken once, renewed in the
//! background, and the call stopped as soon as the lease can no longer be
//! proven ours (lost to another holder, or not renewed for most of its
//! duration). Stopping a call mid-step is safe: every multi-step operation
//! records its intent first and resumes from the record.

use std::time::Instant;

use etcd_operator_resource::managers::{Acquired, ClusterLock};

use crate::ServiceError;

/// Runs `work` holding Lease `namespace/lease`; ABORTED when another holder has it or when it is
/// lost while `work` runs (then `work` is dropped at its next await).
pub(crate) async fn hold<T>(
    lock: &ClusterLock,
    namespace: &str,
    lease: &str,
    what: &str,
    work: impl Future<Output = Result<T, ServiceError>>,
) -> Result<T, ServiceError> {
    if let Acquired::No { holder, until } = lock.try_acquire_lease(namespace, lease).await? {
        return Err(ServiceError::Aborted(format!(
            "{what} is being changed by {holder} (lock held until {until}); retry later"
        )));
    }
    let result = tokio::select! {
        result = work => result,
        lost = renew(lock, namespace, lease, what) => Err(lost),
    };
    if let Err(e) = lock.release_lease(namespace, lease).await {
        // The lease expires on its own; the next holder waits at most its duration.
        tracing::warn!(lease, "could not release the lock: {e}");
    }
    result
}

/// Renews every third of the duration until the lease is lost; answers why.
async fn renew(lock: &ClusterLock, namespace: &str, lease: &str, what: &str) -> ServiceError {
    let duration = lock.duration();
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(duration / 3).await;
        fail::fail_point!("lease::renew", |_| ServiceError::Aborted(format!(
            "{what}: renewing the lock failed (failpoint); the call was stopped before the lock could expire"
        )));
        match lock.try_acquire_lease(namespace, lease).await {
            Ok(Acquired::Yes) => renewed = Instant::now(),
            Ok(Acquired::No { holder, .. }) => {
                return ServiceError::Aborted(format!(
                    "{what}: the lock was lost to {holder}; the call was stopped"
                ));
            }
            // One missed renewal is not a lost lock, but the call stops well before others could take it.
            Err(e) if renewed.elapsed() + duration / 3 >= duration * 2 / 3 => {
                return ServiceError::Aborted(format!(
                    "{what}: the lock could not be renewed for {:?} ({e}); the call was stopped before it could expire",
                    renewed.elapsed()
                ));
            }
            Err(e) => tracing::warn!(lease, "renewing the lock failed, retrying: {e}"),
        }
    }
}
