//! The health controller: probes every cluster periodically through the
//! cluster-service, which records what it finds in status.

use std::{sync::Arc, time::Duration};

use etcd_operator_api::EtcdCluster;
use etcd_operator_proto::v1alpha1 as pb;
use kube::runtime::controller::Action;

use super::{at_least_every, cluster_ref, observed, seen_generation};
use crate::{ControllerError, runtime::Context};

/// Spreads probes of many clusters over time: ±10%, derived from the name so it is stable.
pub fn jittered(interval: Duration, key: &str) -> Duration {
    let hash = key.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let spread = interval.as_millis() as u64 / 5;
    let offset = if spread == 0 { 0 } else { hash % spread };
    interval - Duration::from_millis(spread / 2) + Duration::from_millis(offset)
}

/// Probes one cluster.
pub async fn reconcile(cluster: Arc<EtcdCluster>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    observed(&ctx, &cluster, async {
        let r = cluster_ref(&cluster)?;
        let next = jittered(ctx.config.probe_interval, &format!("{}/{}", r.namespace, r.name));
        let req = pb::CheckHealthRequest { cluster: Some(r), seen_generation: seen_generation(&cluster) };
        let resp = ctx
            .rpc
            .call("HealthService", "CheckHealth", |c| {
                let req = c.request(req.clone());
                async move { c.health().check_health(req).await }
            })
            .await?;
        Ok(at_least_every(resp.requeue.as_ref(), next))
    })
    .await
}

/// Runs the health controller until shutdown or loss of leadership.
pub async fn run(ctx: Arc<Context>) {
    super::run_on_clusters(ctx, reconcile, super::Owns::Nothing, super::Exports::Clusters).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent_and_is_stable() {
        let a = jittered(Duration::from_secs(30), "prod/a");
        assert_eq!(a, jittered(Duration::from_secs(30), "prod/a"));
        for key in ["prod/a", "prod/b", "dev/main", ""] {
            let d = jittered(Duration::from_secs(30), key);
            assert!(d >= Duration::from_secs(27) && d <= Duration::from_secs(33), "{key}: {d:?}");
        }
    }
}
