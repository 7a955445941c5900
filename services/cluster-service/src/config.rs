//! Command-line and environment configuration.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use etcd_operator_client::etcd::{EndpointRewrite, EtcdOptions};
use etcd_operator_client::storage::ObjectStorage;
use etcd_operator_common::duration::parse_duration;
use etcd_operator_service::{
    ServiceConfig, api_tls::decide::ServingNames, backup::decide::endpoint::AllowedEndpoint,
};
use etcd_operator_telemetry::TelemetryConfig;

/// gRPC server hosting ClusterService (and the later Scaling, Health, Recovery and Backup services).
#[derive(Clone, Debug, Parser)]
#[command(name = "cluster-service", version, about)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "CLUSTER_SERVICE_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: SocketAddr,
    /// Kubernetes cluster DNS domain used in etcd member URLs.
    #[arg(long, env = "CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Rewrite an etcd endpoint host (host[:port]=host:port), repeatable; for running outside the cluster.
    #[arg(long = "etcd-endpoint-rewrite", env = "ETCD_ENDPOINT_REWRITES", value_delimiter = ',')]
    pub etcd_endpoint_rewrites: Vec<String>,
    /// Resolve etcd member hosts through this hosts file first (re-read on every connect); for running outside the cluster.
    #[arg(long, env = "ETCD_HOSTS_FILE")]
    pub etcd_hosts_file: Option<std::path::PathBuf>,
    /// Limit for connecting to an etcd member.
    #[arg(long, env = "ETCD_CONNECT_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub etcd_connect_timeout: Duration,
    /// Limit for each etcd call.
    #[arg(long, env = "ETCD_REQUEST_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub etcd_request_timeout: Duration,
    /// How long an etcd connection kept between observations may go unused before it is closed
    /// (0s: none is kept, every observation dials).
    #[arg(long, env = "ETCD_IDLE_TIMEOUT", default_value = "3m", value_parser = parse_duration)]
    pub etcd_idle_timeout: Duration,
    /// Identity of this replica in per-cluster locks; the pod name in Kubernetes.
    #[arg(long, env = "POD_NAME", default_value_t = default_identity())]
    pub identity: String,
    /// How long a per-cluster lock outlives a crashed holder.
    #[arg(long, env = "CLUSTER_LOCK_DURATION", default_value = "30s", value_parser = parse_duration)]
    pub lock_duration: Duration,
    /// Directory (a mounted volume) where ScaleToZero stores the snapshot it takes first; without it clusters cannot be stopped.
    #[arg(long, env = "SNAPSHOT_DIR")]
    pub snapshot_dir: Option<std::path::PathBuf>,
    /// Directory under which backup claims are mounted, one directory per namespace and claim name:
    /// EtcdBackups of namespace NS with `storage.volume` write to `<dir>/NS/<claimName>/<path>`, so a
    /// namespace reaches only the claims mounted for it. Without it only S3 storage can be used.
    #[arg(long, env = "BACKUP_VOLUME_ROOT")]
    pub backup_volume_root: Option<std::path::PathBuf>,
    /// How long etcd must not hear from a member before the recovery controller's calls replace it
    /// (and before a scale-up adds again, empty, a learner that ran and went silent).
    #[arg(long, env = "REPLACE_AFTER", default_value = "5m", value_parser = parse_duration)]
    pub replace_after: Duration,
    /// Share of free pages in a member's database (1 - in use / size) from which health defragments it.
    #[arg(long, env = "DEFRAG_THRESHOLD", default_value_t = 0.5)]
    pub defrag_threshold: f64,
    /// Databases smaller than this many bytes are never defragmented.
    #[arg(long, env = "DEFRAG_MIN_SIZE", default_value_t = 64 << 20)]
    pub defrag_min_size: i64,
    /// A member is defragmented at most once per this period (NOSPACE recovery at most once per sixth of it).
    #[arg(long, env = "MAINTENANCE_COOLDOWN", default_value = "1h", value_parser = parse_duration)]
    pub maintenance_cooldown: Duration,
    /// Image of the restore agent, the init container of every member (restores, and admits empty members).
    #[arg(
        long,
        env = "RESTORE_AGENT_IMAGE",
        default_value = "ghcr.io/etcd-k8s-operator/etcd-operator:0.1.0"
    )]
    pub restore_agent_image: String,
    /// How member pods reach this service's gRPC API to fetch a restore snapshot (the Service's
    /// URL): `https://` unless `--insecure`.
    #[arg(long, env = "RESTORE_ENDPOINT", default_value = "https://cluster-service.etcd-operator.svc:9090")]
    pub restore_endpoint: String,
    /// Serve gRPC in plaintext, for local runs only: bearer tokens then cross the network
    /// readable. Authentication and authorization stay on.
    #[arg(long, env = "INSECURE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub insecure: bool,
    /// Secret (in `--operator-namespace`) keeping the API's CA, made by the first replica to start.
    #[arg(long, env = "TLS_CA_SECRET", default_value = "etcd-operator-api-ca")]
    pub tls_ca_secret: String,
    /// ConfigMap (in `--operator-namespace`) publishing the CA's certificate as `ca.crt`, for
    /// the controllers to verify this server.
    #[arg(long, env = "TLS_CA_CONFIG_MAP", default_value = "etcd-operator-api-ca")]
    pub tls_ca_config_map: String,
    /// Name of the Service in front of this server: the serving certificate names
    /// `<name>`, `<name>.<ns>`, `<name>.<ns>.svc` and `<name>.<ns>.svc.<cluster domain>`.
    #[arg(long, env = "SERVICE_NAME", default_value = "cluster-service")]
    pub service_name: String,
    /// A further DNS name or IP address of the serving certificate (repeatable).
    #[arg(long = "tls-san", env = "TLS_SANS", value_delimiter = ',')]
    pub tls_sans: Vec<String>,
    /// Lifetime of each serving certificate; it is renewed in memory at two thirds of it.
    #[arg(long, env = "TLS_SERVING_VALIDITY", default_value = "720h", value_parser = parse_duration)]
    pub tls_serving_validity: Duration,
    /// Give every cluster a members' NetworkPolicy unless its spec.networkPolicy.enabled says otherwise.
    #[arg(long, env = "MEMBER_NETWORK_POLICY", default_value_t = false, action = clap::ArgAction::Set)]
    pub member_network_policy: bool,
    /// Namespace of this service's pods (let in on the members' client port by that policy).
    #[arg(long, env = "OPERATOR_NAMESPACE", default_value = "etcd-operator")]
    pub operator_namespace: String,
    /// Labels of this service's pods, `k=v,...` (let in on the members' client port by that policy).
    #[arg(long, env = "OPERATOR_POD_LABELS", default_value = "app.kubernetes.io/name=cluster-service")]
    pub operator_pod_labels: String,
    /// Audiences a caller's bearer token must be meant for (TokenReview): the projected
    /// service-account tokens of the operator's pods and tooling ask for `etcd-operator`.
    #[arg(long, env = "AUTH_AUDIENCES", value_delimiter = ',', default_value = "etcd-operator")]
    pub auth_audiences: Vec<String>,
    /// Serve calls for this namespace only (a namespace-scoped install); others are refused.
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// An S3 endpoint origin EtcdBackups may name, `scheme://host[:port]` (repeatable; without
    /// any, only AWS's own endpoints): a tenant must not point the operator at any address.
    #[arg(long = "s3-endpoint", env = "S3_ENDPOINTS", value_delimiter = ',')]
    pub s3_endpoints: Vec<String>,
    /// Largest gRPC message taken or sent, in bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 4 << 20)]
    pub max_message_bytes: usize,
    /// Longest any call runs, whatever deadline its caller set.
    #[arg(long, env = "CALL_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub call_timeout: Duration,
    /// Calls served at once on one connection; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "CALLS_PER_CONNECTION", default_value_t = 64)]
    pub calls_per_connection: usize,
    /// Calls served at once over all connections; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "MAX_CALLS", default_value_t = 512)]
    pub max_calls: usize,
    /// Address of the admin HTTP endpoint (/healthz, /readyz, /metrics).
    #[arg(long, env = "ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// Logging and tracing.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

impl Config {
    /// The gRPC server's limits these flags describe.
    pub fn limits(&self) -> crate::grpc::Limits {
        crate::grpc::Limits {
            max_message_bytes: self.max_message_bytes,
            call_timeout: self.call_timeout,
            calls_per_connection: self.calls_per_connection,
            calls: self.max_calls,
        }
    }

    /// The names the serving certificate carries.
    pub fn serving_names(&self) -> ServingNames {
        ServingNames {
            service: self.service_name.clone(),
            namespace: self.operator_namespace.clone(),
            cluster_domain: self.cluster_domain.clone(),
            extra: self.tls_sans.clone(),
        }
    }

    /// Refuses a restore endpoint whose scheme disagrees with `--insecure`: the restore agent
    /// speaks what the endpoint says, and the server serves what the flag says.
    fn check_transport(&self) -> Result<(), String> {
        let scheme = self.restore_endpoint.split_once("://").map(|(s, _)| s);
        match (self.insecure, scheme) {
            (false, Some("https")) | (true, Some("http")) => Ok(()),
            (false, _) => Err(format!(
                "--restore-endpoint {:?} must be an https:// URL: the API serves TLS (plaintext only with --insecure)",
                self.restore_endpoint
            )),
            (true, _) => Err(format!(
                "--restore-endpoint {:?} must be an http:// URL: with --insecure the API serves plaintext",
                self.restore_endpoint
            )),
        }
    }

    /// The service-layer settings these flags describe; `api_ca` is the CA certificate (PEM)
    /// member pods verify this server with (`None` with `--insecure`).
    pub fn service_config(&self, api_ca: Option<String>) -> Result<ServiceConfig, String> {
        if !(0.0..=1.0).contains(&self.defrag_threshold) {
            return Err(format!("--defrag-threshold must be between 0 and 1, not {}", self.defrag_threshold));
        }
        self.check_transport()?;
        let validity = chrono::Duration::from_std(self.tls_serving_validity).unwrap_or(chrono::Duration::MAX);
        etcd_operator_service::api_tls::decide::check_validity(validity)?;
        Ok(ServiceConfig {
            cluster_domain: self.cluster_domain.clone(),
            etcd: EtcdOptions {
                connect_timeout: self.etcd_connect_timeout,
                request_timeout: self.etcd_request_timeout,
                rewrite: EndpointRewrite::parse(&self.etcd_endpoint_rewrites)?
                    .with_hosts_file(self.etcd_hosts_file.clone()),
                ..EtcdOptions::default()
            },
            etcd_idle: self.etcd_idle_timeout,
            holder_identity: self.identity.clone(),
            lock_duration: self.lock_duration,
            snapshots: self
                .snapshot_dir
                .as_deref()
                .map(ObjectStorage::local)
                .transpose()
                .map_err(|e| format!("--snapshot-dir: {e}"))?,
            backup_volume_root: self.backup_volume_root.clone(),
            replace_grace: self.replace_after,
            maintenance: etcd_operator_service::health::MaintenancePolicy {
                fragmentation_threshold: self.defrag_threshold,
                min_db_size: self.defrag_min_size,
                cooldown: self.maintenance_cooldown,
            },
            restore_agent: etcd_operator_resource::templates::RestoreAgent {
                image: self.restore_agent_image.clone(),
                endpoint: self.restore_endpoint.clone(),
                ca: api_ca,
            },
            member_network_policy: self.member_network_policy,
            operator_pods: etcd_operator_resource::templates::network_policy::OperatorPods {
                namespace: self.operator_namespace.clone(),
                labels: labels(&self.operator_pod_labels)?,
            },
            s3_endpoints: self
                .s3_endpoints
                .iter()
                .map(|e| AllowedEndpoint::parse(e).map_err(|why| format!("--s3-endpoint: {why}")))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// `k=v,...` as a label map; every pair must have a key and a value.
fn labels(s: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
                Ok((k.trim().to_owned(), v.trim().to_owned()))
            }
            _ => Err(format!("--operator-pod-labels: {p:?} is not key=value")),
        })
        .collect()
}

/// Host name and process ID: unique among processes that could run at once.
fn default_identity() -> String {
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "cluster-service".into());
    format!("{}-{}", host.trim(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_defaults() {
        let c = Config::parse_from([
            "cluster-service",
            "--etcd-endpoint-rewrite",
            "a:2379=127.0.0.1:1",
            "--etcd-request-timeout",
            "750ms",
        ]);
        assert_eq!(c.listen.port(), 9090);
        let s = c.service_config(None).unwrap();
        assert_eq!(s.etcd.request_timeout, Duration::from_millis(750));
        assert_eq!(s.etcd.rewrite.apply("http://a:2379"), "http://127.0.0.1:1");
        let bad = Config::parse_from(["cluster-service", "--etcd-endpoint-rewrite", "nonsense"]);
        assert!(bad.service_config(None).unwrap_err().contains("host[:port]=host:port"));
        let s3 =
            Config::parse_from(["cluster-service", "--s3-endpoint", "https://minio:9000,http://10.0.0.1"]);
        assert_eq!(s3.service_config(None).unwrap().s3_endpoints.len(), 2);
        let bad = Config::parse_from(["cluster-service", "--s3-endpoint", "minio:9000"]);
        assert!(bad.service_config(None).unwrap_err().starts_with("--s3-endpoint: \"minio:9000\" is not"));
    }

    #[test]
    fn the_restore_endpoint_speaks_what_the_server_serves() {
        let tls = Config::parse_from(["cluster-service"]);
        assert!(!tls.insecure);
        assert_eq!(tls.service_config(Some("ca".into())).unwrap().restore_agent.ca.as_deref(), Some("ca"));
        let plain_endpoint = Config::parse_from(["cluster-service", "--restore-endpoint=http://a:1"]);
        let err = plain_endpoint.service_config(None).unwrap_err();
        assert!(err.contains("must be an https:// URL") && err.contains("--insecure"), "{err}");
        let insecure = Config::parse_from(["cluster-service", "--insecure", "--restore-endpoint=http://a:1"]);
        assert!(insecure.insecure && insecure.service_config(None).is_ok());
        let mixed = Config::parse_from(["cluster-service", "--insecure"]);
        assert!(mixed.service_config(None).unwrap_err().contains("must be an http:// URL"));
        let short = Config::parse_from(["cluster-service", "--tls-serving-validity=1s"]);
        assert!(short.service_config(None).unwrap_err().contains("--tls-serving-validity"));
        let names = Config::parse_from(["cluster-service", "--tls-san=10.0.0.1,api.example"]).serving_names();
        assert_eq!(names.extra, ["10.0.0.1", "api.example"]);
    }
}
