//! Flags every controller takes (each with an environment variable).

use std::{net::SocketAddr, time::Duration};

use clap::Args;
use etcd_operator_common::duration::parse_duration;
use etcd_operator_telemetry::TelemetryConfig;

/// Configuration shared by the controllers.
#[derive(Clone, Debug, Args)]
pub struct ControllerConfig {
    /// gRPC endpoint of the cluster-service: `https://` (or `http://` with `--insecure`).
    #[arg(long, env = "CLUSTER_SERVICE_ENDPOINT", default_value = "https://cluster-service:9090")]
    pub cluster_service_endpoint: String,
    /// CA certificate (PEM) the cluster-service's serving certificate must chain to: `ca.crt`
    /// of the ConfigMap the cluster-service publishes in its namespace.
    #[arg(long, env = "CLUSTER_SERVICE_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Call the cluster-service in plaintext (an `http://` endpoint), for local runs only.
    #[arg(long, env = "INSECURE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub insecure: bool,
    /// File holding the bearer token sent with every call to the cluster-service (a projected
    /// service-account token for its audience, reread as the kubelet renews it).
    #[arg(long, env = "TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Deadline of each call to the cluster-service.
    #[arg(long, env = "RPC_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub rpc_timeout: Duration,
    /// Namespace to watch; empty watches all namespaces.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub watch_namespace: String,
    /// Objects reconciled at once.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// How long a cluster's triggers are gathered into one reconcile: a reconcile's own writes
    /// and its StatefulSet's status moves come in bursts, each event a call otherwise. Every
    /// trigger waits this long; a cluster changing faster than this is reconciled when it pauses.
    #[arg(long, env = "DEBOUNCE", default_value = "500ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Namespace of this controller's leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Identity in leader election; the pod name in Kubernetes.
    #[arg(long, env = "POD_NAME", default_value_t = default_identity())]
    pub identity: String,
    /// How long a leader's Lease lasts without renewal; a standby takes over after it.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// How long before expiry the leader renews its Lease.
    #[arg(long = "lease-renew-grace", env = "LEASE_RENEW_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub lease_grace: Duration,
    /// How often the periodic controllers (health, recovery) look at each cluster; spread ±10% per cluster.
    #[arg(long, env = "PROBE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub probe_interval: Duration,
    /// Address of the admin HTTP endpoint (/healthz, /readyz, /metrics).
    #[arg(long, env = "ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// Logging and tracing.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

impl ControllerConfig {
    /// Refuses inconsistent settings with the flag names.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_grace >= self.lease_duration {
            return Err("--lease-renew-grace must be shorter than --lease-duration".into());
        }
        if self.lease_duration < Duration::from_secs(2) {
            return Err("--lease-duration must be at least 2s".into());
        }
        if self.probe_interval < Duration::from_secs(1) {
            return Err("--probe-interval must be at least 1s".into());
        }
        if self.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        // Each trigger restarts the wait: a long one could hold back a cluster that keeps changing.
        if self.debounce > MAX_DEBOUNCE {
            return Err(format!("--debounce must be at most {}s", MAX_DEBOUNCE.as_secs()));
        }
        Ok(())
    }
}

/// The longest `--debounce` taken.
const MAX_DEBOUNCE: Duration = Duration::from_secs(5);

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "controller".into());
    format!("{}-{}", host.trim(), std::process::id())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        config: ControllerConfig,
    }

    fn parsed(args: &[&str]) -> Result<ControllerConfig, String> {
        let config = Flags::try_parse_from(std::iter::once("controller").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .config;
        config.validate().map(|()| config)
    }

    #[test]
    fn debounce_defaults_to_half_a_second_and_is_bounded() {
        assert_eq!(parsed(&[]).unwrap().debounce, Duration::from_millis(500));
        assert_eq!(parsed(&["--debounce=0s"]).unwrap().debounce, Duration::ZERO);
        let refused = parsed(&["--debounce=6s"]).unwrap_err();
        assert!(refused.contains("--debounce must be at most 5s"), "{refused}");
        assert!(parsed(&["--debounce=soon"]).unwrap_err().contains("not a duration"));
    }
}
