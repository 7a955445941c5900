//! Leader election: only the holder of the controller's Lease reconciles.
//!
//! kube-lease-manager acquires and renews the Lease. On top of it, a fence
//! stops reconciling as soon as this instance cannot prove it still holds a
//! live lease: each read of the Lease that shows a new renewal by us moves a
//! local deadline to (start of the previous read) + lease duration — a lower
//! bound on when the renewal happened, so the deadline never outlives the
//! lease as others see it. When reads fail or show another holder, the
//! controller is stopped without waiting for the renewal loop to notice.

use std::time::{Duration, Instant};

use etcd_operator_telemetry::metrics::ControllerMetrics;
use k8s_openapi::{api::coordination::v1::Lease, apimachinery::pkg::apis::meta::v1::MicroTime};
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::{sync::watch, task::JoinHandle};
use tracing::Instrument;

/// Who elects, on which Lease, with which timing.
#[derive(Clone, Debug)]
pub struct Election {
    /// Lease name (one per controller).
    pub lease_name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This instance (pod name).
    pub identity: String,
    /// Lease duration.
    pub duration: Duration,
    /// Renew this long before expiry.
    pub grace: Duration,
}

/// How often the fence reads the Lease.
const FENCE_PERIOD: Duration = Duration::from_millis(500);

/// Tracks whether this instance provably holds an unexpired lease. Pure state machine.
#[derive(Debug)]
pub struct Fence {
    duration: Duration,
    last_renew_seen: Option<MicroTime>,
    deadline: Option<Instant>,
    previous_read: Instant,
}

impl Fence {
    /// A fence for leases of `duration`, starting now.
    pub fn new(duration: Duration, now: Instant) -> Self {
        Self { duration, last_renew_seen: None, deadline: None, previous_read: now }
    }

    /// Records one read of the Lease started at `started`: `holder` and `renew` as read, or `None` when the read failed.
    pub fn observe(&mut self, started: Instant, read: Option<(Option<&str>, Option<&MicroTime>)>, me: &str) {
        match read {
            Some((Some(holder), renew))
                if holder == me && renew.is_some() && renew != self.last_renew_seen.as_ref() =>
            {
                self.last_renew_seen = renew.cloned();
                // The renewal happened after the previous read began.
                self.deadline = Some(self.previous_read + self.duration);
            }
            // Our own lease, already seen: nothing new.
            Some((Some(holder), _)) if holder == me => {}
            Some(_) => {
                self.last_renew_seen = None;
                self.deadline = None;
            }
            None => {}
        }
        self.previous_read = started;
    }

    /// Whether reconciling is allowed at `now`.
    pub fn valid(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now < d)
    }
}

/// Runs `controller()` only while this instance leads; returns when `shutdown` turns true.
///
/// The controller task is aborted the moment leadership is lost or cannot
/// be proven; on shutdown the Lease is released so a standby takes over at once.
pub async fn run_while_leader<F, Fut>(
    client: Client,
    election: Election,
    metrics: ControllerMetrics,
    mut shutdown: watch::Receiver<bool>,
    controller: F,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // The API may be unreachable at start: keep trying (unready) until it answers or we stop.
    let manager = loop {
        let built = LeaseManagerBuilder::new(client.clone(), &election.lease_name)
            .with_namespace(&election.namespace)
            .with_identity(&election.identity)
            .with_duration(election.duration.as_secs().max(1))
            .with_grace(election.grace.as_secs().max(1))
            .build()
            .await;
        match built {
            Ok(m) => break m,
            Err(e) => tracing::warn!(lease = %election.lease_name, "cannot use the lease yet: {e}"),
        }
        tokio::select! {
            () = stopping(&mut shutdown) => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    };
    let (mut elected, manager_task) = manager.watch().await;
    let leases: Api<Lease> = Api::namespaced(client, &election.namespace);
    let mut fence = Fence::new(election.duration, Instant::now());
    let mut ticker = tokio::time::interval(FENCE_PERIOD);
    let mut running: Option<Reconciling> = None;
    let stop = |running: &mut Option<Reconciling>, why: &str| {
        if running.take().is_some() {
            tracing::warn!(lease = %election.lease_name, "stopped reconciling: {why}");
        }
    };
    loop {
        tokio::select! {
            () = stopping(&mut shutdown) => break,
            changed = elected.changed() => {
                if changed.is_err() { break; }
                let elected_now = *elected.borrow_and_update();
                if !elected_now {
                    stop(&mut running, "lost the lease");
                }
            }
            _ = ticker.tick() => {
                let started = Instant::now();
                let read = tokio::time::timeout(FENCE_PERIOD * 2, leases.get_opt(&election.lease_name)).await;
                match read {
                    Ok(Ok(lease)) => {
                        let spec = lease.and_then(|l| l.spec).unwrap_or_default();
                        fence.observe(started, Some((spec.holder_identity.as_deref(), spec.renew_time.as_ref())), &election.identity);
                    }
                    _ => fence.observe(started, None, &election.identity),
                }
            }
        }
        let elected_now = *elected.borrow();
        let leading = elected_now && fence.valid(Instant::now());
        metrics.set_leader(leading);
        if leading && running.is_none() {
            tracing::info!(lease = %election.lease_name, identity = %election.identity, "became leader; reconciling");
            running = Some(Reconciling(tokio::spawn(controller())));
        } else if !leading {
            stop(&mut running, "leadership not confirmed within the lease duration");
        }
    }
    stop(&mut running, "shutting down");
    metrics.set_leader(false);
    // Closing the channel makes the manager release the Lease.
    drop(elected);
    let release = tracing::info_span!("lease.release", lease = %election.lease_name);
    match manager_task.instrument(release).await {
        Ok(Ok(_)) => tracing::info!(lease = %election.lease_name, "released the lease"),
        Ok(Err(e)) => tracing::warn!(lease = %election.lease_name, "could not release the lease: {e}"),
        Err(e) => tracing::warn!("lease manager task failed: {e}"),
    }
    Ok(())
}

/// The reconcile task; aborted when dropped, so it never outlives leadership
/// (nor this function, if its caller drops it).
struct Reconciling(JoinHandle<()>);

impl Drop for Reconciling {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves once shutdown is asked for (the watch guard never outlives the await).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await.map(drop);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> MicroTime {
        MicroTime(Timestamp::from_second(1_800_000_000 + s).unwrap())
    }

    #[test]
    fn deadline_follows_observed_renewals_conservatively() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut f = Fence::new(Duration::from_secs(15), start);
        assert!(!f.valid(at(0)), "not valid before any confirmation");
        f.observe(at(500), Some((Some("me"), Some(&t(0)))), "me");
        assert!(f.valid(at(1000)));
        // Deadline counts from the read before the one that saw the renewal.
        assert!(f.valid(at(14_999)) && !f.valid(at(15_000)));
        // The same renewal seen again does not extend the deadline.
        f.observe(at(10_000), Some((Some("me"), Some(&t(0)))), "me");
        assert!(!f.valid(at(15_001)));
        // A new renewal does.
        f.observe(at(10_500), Some((Some("me"), Some(&t(10)))), "me");
        assert!(f.valid(at(20_000)) && !f.valid(at(25_000)));
        // Failed reads change nothing; the deadline simply passes.
        f.observe(at(11_000), None, "me");
        assert!(f.valid(at(20_000)) && !f.valid(at(25_001)));
        // Another holder ends it at once.
        f.observe(at(11_500), Some((Some("other"), Some(&t(11)))), "me");
        assert!(!f.valid(at(11_600)));
    }
}
