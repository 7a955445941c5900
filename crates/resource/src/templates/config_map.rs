//! The ConfigMap holding a cluster's bootstrap configuration as `ETCD_*`
//! environment variables, which etcd reads natively.

use std::collections::BTreeMap;

use etcd_operator_api::cluster::AutoCompactionMode;
use k8s_openapi::api::core::v1::ConfigMap;
use sha2::{Digest, Sha256};

use super::TemplateContext;
use crate::ResourceError;

/// `--initial-cluster-state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialClusterState {
    /// Bootstrapping a new cluster.
    New,
    /// Joining a running cluster.
    Existing,
}

/// Decisions of the service layer that the bootstrap configuration records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapConfig {
    /// Members listed in `--initial-cluster` (pod names).
    pub initial_members: Vec<String>,
    /// New cluster or joining an existing one.
    pub state: InitialClusterState,
}

impl BootstrapConfig {
    /// A brand-new cluster of `size` members (ordinals 0..size).
    pub fn new_cluster(names: &crate::names::ClusterNames, size: i32) -> Self {
        Self {
            initial_members: (0..size).map(|i| names.member(i)).collect(),
            state: InitialClusterState::New,
        }
    }

    /// Reads back what an existing ConfigMap records, so re-applying it changes nothing.
    pub fn from_config_map(cm: &ConfigMap) -> Option<Self> {
        let data = cm.data.as_ref()?;
        let state = match data.get("ETCD_INITIAL_CLUSTER_STATE")?.as_str() {
            "new" => InitialClusterState::New,
            "existing" => InitialClusterState::Existing,
            _ => return None,
        };
        let initial_members = data
            .get("ETCD_INITIAL_CLUSTER")?
            .split(',')
            .filter_map(|entry| entry.split_once('=').map(|(name, _)| name.to_owned()))
            .collect();
        Some(Self { initial_members, state })
    }
}

/// Builds the ConfigMap.
pub fn config_map(
    ctx: &TemplateContext<'_>,
    bootstrap: &BootstrapConfig,
) -> Result<ConfigMap, ResourceError> {
    let data = config_data(ctx, bootstrap);
    Ok(ConfigMap {
        metadata: ctx.metadata(ctx.names.config_map(), "ConfigMap")?,
        data: Some(data),
        ..ConfigMap::default()
    })
}

/// The `ETCD_*` variables; also hashed into the pod template so changes roll out.
pub(crate) fn config_data(
    ctx: &TemplateContext<'_>,
    bootstrap: &BootstrapConfig,
) -> BTreeMap<String, String> {
    let names = &ctx.names;
    let spec = &ctx.cluster.spec;
    let initial_cluster = bootstrap
        .initial_members
        .iter()
        .map(|m| format!("{m}={}", names.peer_url(m)))
        .collect::<Vec<_>>()
        .join(",");
    let mut data = BTreeMap::from([
        ("ETCD_INITIAL_CLUSTER".to_owned(), initial_cluster),
        (
            "ETCD_INITIAL_CLUSTER_STATE".to_owned(),
            match bootstrap.state {
                InitialClusterState::New => "new",
                InitialClusterState::Existing => "existing",
            }
            .to_owned(),
        ),
        // The token is unique per cluster object, so a recreated cluster never joins old members.
        (
            "ETCD_INITIAL_CLUSTER_TOKEN".to_owned(),
            format!("{}-{}", names.name, ctx.cluster.metadata.uid.as_deref().unwrap_or_default()),
        ),
        ("ETCD_DATA_DIR".to_owned(), "/var/lib/etcd/data".to_owned()),
        // Plain HTTP even with spec.tls: probes carry no certificate, and it serves only metrics and health.
        ("ETCD_LISTEN_METRICS_URLS".to_owned(), format!("http://0.0.0.0:{}", crate::names::METRICS_PORT)),
        (
            "ETCD_AUTO_COMPACTION_MODE".to_owned(),
            match spec.etcd.auto_compaction_mode {
                AutoCompactionMode::Periodic => "periodic",
                AutoCompactionMode::Revision => "revision",
            }
            .to_owned(),
        ),
        (
            "ETCD_AUTO_COMPACTION_RETENTION".to_owned(),
            spec.etcd.auto_compaction_retention.clone().unwrap_or_else(|| "1h".to_owned()),
        ),
    ]);
    let optional = [
        ("ETCD_QUOTA_BACKEND_BYTES", spec.etcd.quota_backend_bytes),
        ("ETCD_SNAPSHOT_COUNT", spec.etcd.snapshot_count),
        ("ETCD_HEARTBEAT_INTERVAL", spec.etcd.heartbeat_interval_ms.map(i64::from)),
        ("ETCD_ELECTION_TIMEOUT", spec.etcd.election_timeout_ms.map(i64::from)),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            data.insert(key.to_owned(), v.to_string());
        }
    }
    data
}

/// Hash of the settings that need a member restart to take effect.
///
/// The `ETCD_INITIAL_*` keys are left out: etcd ignores them once a member
/// has data, so changing them (as scaling does) must not restart members.
pub(crate) fn restart_hash(data: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in data.iter().filter(|(k, _)| !k.starts_with("ETCD_INITIAL_")) {
        hasher.update(k.as_bytes());
        hasher.update(b"=");
        hasher.update(v.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(&hasher.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::fixtures::cluster;

    fn bootstrap(n: i32) -> BootstrapConfig {
        BootstrapConfig {
            initial_members: (0..n).map(|i| format!("demo-{i}")).collect(),
            state: InitialClusterState::New,
        }
    }

    #[test]
    fn lists_every_initial_member_with_its_dns_peer_url() {
        let c = cluster(
            "size: 3\nversion: 3.5.17\netcd:\n  quotaBackendBytes: 4294967296\n  heartbeatIntervalMs: 100\n  electionTimeoutMs: 1000",
        );
        let cm = config_map(&TemplateContext::new(&c, "cluster.local"), &bootstrap(3)).unwrap();
        let data = cm.data.unwrap();
        assert_eq!(
            data["ETCD_INITIAL_CLUSTER"],
            "demo-0=http://demo-0.demo.prod.svc.cluster.local:2380,demo-1=http://demo-1.demo.prod.svc.cluster.local:2380,demo-2=http://demo-2.demo.prod.svc.cluster.local:2380"
        );
        assert_eq!(data["ETCD_INITIAL_CLUSTER_STATE"], "new");
        assert_eq!(data["ETCD_INITIAL_CLUSTER_TOKEN"], "demo-0d7f0b52-4a4e-4f8e-9f55-2f6a0c3f5a11");
        assert_eq!(data["ETCD_QUOTA_BACKEND_BYTES"], "4294967296");
        assert_eq!(data["ETCD_HEARTBEAT_INTERVAL"], "100");
        assert_eq!(data["ETCD_ELECTION_TIMEOUT"], "1000");
        assert!(!data.contains_key("ETCD_SNAPSHOT_COUNT"));
        assert_eq!(cm.metadata.owner_references.unwrap()[0].kind, "EtcdCluster");
    }

    #[test]
    fn bootstrap_round_trips_through_the_config_map() {
        let c = cluster("size: 3\nversion: 3.5.17");
        let ctx = TemplateContext::new(&c, "cluster.local");
        let b = BootstrapConfig::new_cluster(&ctx.names, 3);
        assert_eq!(b, bootstrap(3));
        let cm = config_map(&ctx, &b).unwrap();
        assert_eq!(BootstrapConfig::from_config_map(&cm), Some(b));
    }

    #[test]
    fn restart_hash_ignores_membership_but_not_tuning() {
        let c = cluster("size: 3\nversion: 3.5.17");
        let ctx = TemplateContext::new(&c, "cluster.local");
        let three = restart_hash(&config_data(&ctx, &bootstrap(3)));
        assert_eq!(three, restart_hash(&config_data(&ctx, &bootstrap(5))));
        let tuned = cluster("size: 3\nversion: 3.5.17\netcd:\n  snapshotCount: 5000");
        assert_ne!(
            three,
            restart_hash(&config_data(&TemplateContext::new(&tuned, "cluster.local"), &bootstrap(3)))
        );
    }
}
