//! restore-agent: the init container of every etcd member; prepares its data directory.
//!
//! A member that already has data is left alone. A member of a cluster being
//! restored (its restore token is set) gets its data directory restored: the
//! agent fetches the snapshot from the cluster-service, checks its sha256,
//! runs etcd's own restore (`etcdutl snapshot restore`, `etcdctl` for 3.4,
//! with `--bump-revision`/`--mark-compacted` where the tool has them) into a
//! scratch directory next to the data directory and renames it into place, so
//! a member is either fully restored or not at all. Any other member with an
//! empty data directory starts only once etcd's membership says it never ran
//! ([`admission`]). A member about to start on 3.6 with data an older etcd
//! wrote first passes etcd's own pre-upgrade check ([`v2store`]).

#![warn(clippy::too_many_lines)]

mod admission;
mod fetch;
mod tool;
mod v2store;

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use etcd_operator_telemetry::TelemetryConfig;

/// Restores one member's data directory from the snapshot its cluster is being restored from.
#[derive(Clone, Debug, Parser)]
#[command(name = "restore-agent", version, about)]
pub struct Args {
    /// gRPC endpoint of the cluster-service (`http://` only when the operator runs `--insecure`).
    #[arg(long, env = "CLUSTER_SERVICE_ENDPOINT")]
    pub endpoint: String,
    /// CA certificate (PEM) an `https://` endpoint is verified with (mounted from the ConfigMap
    /// the operator keeps beside the cluster).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Namespace of the cluster.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: String,
    /// EtcdCluster name.
    #[arg(long)]
    pub cluster: String,
    /// This member's name (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub member: String,
    /// The member's etcd data directory.
    #[arg(long, env = "ETCD_DATA_DIR")]
    pub data_dir: PathBuf,
    /// etcd version of the cluster (chooses etcdutl or etcdctl).
    #[arg(long)]
    pub etcd_version: String,
    /// The cluster's restore token; empty when no restore is in progress.
    #[arg(long, env = "RESTORE_TOKEN", default_value = "", hide_env_values = true)]
    pub token: String,
    /// Members of the restored cluster, `name=peerURL,...` (the ConfigMap's value).
    #[arg(long, env = "ETCD_INITIAL_CLUSTER")]
    pub initial_cluster: String,
    /// Cluster token of the restored cluster (the ConfigMap's value).
    #[arg(long, env = "ETCD_INITIAL_CLUSTER_TOKEN")]
    pub initial_cluster_token: String,
    /// `new` while the cluster bootstraps, `existing` once it formed (the ConfigMap's value).
    #[arg(long, env = "ETCD_INITIAL_CLUSTER_STATE", default_value = "existing")]
    pub initial_cluster_state: String,
    /// How often (milliseconds) a member waiting to be added asks the other members again.
    #[arg(long, default_value_t = 1000)]
    pub admission_poll_ms: u64,
    /// How long the snapshot stream may stay silent before the agent gives up (and exits, to be
    /// restarted by the kubelet): a stalled connection never hangs a member's start forever.
    #[arg(long, env = "READ_IDLE_TIMEOUT", default_value = "60s", value_parser = etcd_operator_common::duration::parse_duration)]
    pub read_idle_timeout: std::time::Duration,
    /// Directory with this member's peer certificate (`tls.crt`, `tls.key`, `ca.crt`) when the
    /// peer port speaks TLS: the other members are asked for the membership as this member.
    #[arg(long)]
    pub peer_tls_dir: Option<PathBuf>,
    /// Restore tool to use instead of searching for etcdutl/etcdctl.
    #[arg(long, env = "RESTORE_TOOL")]
    pub tool: Option<PathBuf>,
    /// Logging and tracing.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let guard = match etcd_operator_telemetry::logging::init("restore-agent", &args.telemetry, "info") {
        Ok(g) => g,
        Err(e) => {
            eprintln!("restore-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match run(&args).await {
        Ok(outcome) => {
            tracing::info!(member = args.member, "{outcome}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A failed init container is restarted by the kubelet: a restore is retried from scratch.
            tracing::error!(member = args.member, "{e}");
            // Where Kubernetes mounted it, the reason shows in the pod's status.
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/dev/termination-log") {
                let _ = std::io::Write::write_all(&mut f, e.as_bytes());
            }
            ExitCode::FAILURE
        }
    };
    guard.shutdown().await;
    code
}

async fn run(args: &Args) -> Result<String, String> {
    if args.data_dir.join("member").is_dir() {
        let checked = if v2store::needed(&args.etcd_version, &args.data_dir) {
            let tool = tool::RestoreTool::find(args.tool.as_deref(), &args.etcd_version)?;
            format!("; {}", v2store::check(tool.path(), &args.data_dir)?)
        } else {
            String::new()
        };
        return Ok(format!("{} holds data: the member starts on it{checked}", args.data_dir.display()));
    }
    if args.token.is_empty() {
        return admit(args).await;
    }
    restore(args).await.map_err(|e| format!("restore failed: {e}"))
}

/// Restores the data directory from the snapshot the cluster-service streams.
async fn restore(args: &Args) -> Result<String, String> {
    let peer_url = tool::peer_url(&args.initial_cluster, &args.member)?;
    let scratch = scratch_dir(&args.data_dir);
    // Left over from an interrupted attempt: start over.
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| format!("removing {}: {e}", scratch.display()))?;
    }
    std::fs::create_dir_all(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let snapshot = scratch.join("snapshot.db");
    let header = fetch::fetch(args, &snapshot).await?;
    let restored = scratch.join("data");
    let tool = tool::RestoreTool::find(args.tool.as_deref(), &args.etcd_version)?;
    // A cluster token of its own per snapshot: a member holding data of the cluster that was lost
    // (same names and URLs) can never be taken for a member of the restored one.
    let sha = &header.sha256[..header.sha256.len().min(12)];
    let cluster_token = format!("{}-restore-{sha}", args.initial_cluster_token);
    tool.restore(&tool::Restore {
        snapshot: &snapshot,
        data_dir: &restored,
        member: &args.member,
        peer_url: &peer_url,
        initial_cluster: &args.initial_cluster,
        cluster_token: &cluster_token,
    })?;
    std::fs::rename(&restored, &args.data_dir)
        .map_err(|e| format!("moving {} to {}: {e}", restored.display(), args.data_dir.display()))?;
    std::fs::remove_dir_all(&scratch).map_err(|e| format!("removing {}: {e}", scratch.display()))?;
    Ok(format!(
        "restored from {} ({} bytes, revision {}, sha256 {}) with {}",
        header.source, header.size_bytes, header.revision, header.sha256, tool
    ))
}

/// Holds an empty member back until the membership shows it may start empty; refuses one that ran before.
async fn admit(args: &Args) -> Result<String, String> {
    let peer_url = tool::peer_url(&args.initial_cluster, &args.member)?;
    let mut said = String::new();
    loop {
        let answers =
            admission::membership(&args.initial_cluster, &args.member, args.peer_tls_dir.as_deref()).await?;
        let state = &args.initial_cluster_state;
        match admission::decide(&args.member, &peer_url, state, answers.as_deref()) {
            admission::Verdict::Start(why) => return Ok(why),
            admission::Verdict::Refuse(why) => return Err(why),
            admission::Verdict::Wait(why) => {
                if why != said {
                    tracing::info!(member = args.member, "{why}");
                    said = why;
                }
                tokio::time::sleep(std::time::Duration::from_millis(args.admission_poll_ms)).await;
            }
        }
    }
}

/// `<data-dir>.restore`: on the same volume, so the final rename is atomic.
fn scratch_dir(data_dir: &std::path::Path) -> PathBuf {
    beside(data_dir, ".restore")
}

/// `<data-dir><suffix>`: a sibling of the data directory on the same volume.
fn beside(data_dir: &std::path::Path, suffix: &str) -> PathBuf {
    let mut s = data_dir.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
