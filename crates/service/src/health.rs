//! HealthService: probe members and record their health; one-member maintenance.

use etcd_operator_client::etcd::EtcdClient;
use etcd_operator_common::ClusterRef;

use crate::{ClusterService, ServiceError, cluster::ClusterOutcome, decisions::maintenance::may_defragment};

/// Sizes of a member's database around a defragmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragmentOutcome {
    /// Bytes before.
    pub before: i64,
    /// Bytes after.
    pub after: i64,
}

impl ClusterService {
    /// Probes every member on its own connection and records the result.
    #[tracing::instrument(name = "CheckHealth", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "CheckHealth"))]
    pub async fn check_health(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        self.get_cluster_status(r).await
    }

    /// Defragments one member, holding the cluster lock so no other change runs meanwhile.
    #[tracing::instrument(name = "DefragmentMember", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "DefragmentMember", member = %member))]
    pub async fn defragment_member(
        &self,
        r: &ClusterRef,
        member: &str,
    ) -> Result<DefragmentOutcome, ServiceError> {
        self.locked(r, async {
            let observation = self.observe(r).await?;
            may_defragment(&observation, member)?;
            let names = self.names(r);
            let endpoint = names.client_url(member);
            let client = EtcdClient::connect(
                std::slice::from_ref(&endpoint),
                self.etcd_options(),
                self.etcd_metrics(),
            )
            .await?;
            let before = client.status(&endpoint).await?.db_size;
            client.defragment(&endpoint).await?;
            let after = client.status(&endpoint).await?.db_size;
            tracing::info!(member, before, after, "defragmented");
            Ok(DefragmentOutcome { before, after })
        })
        .await
    }
}
