//! The command line: global connection flags and one subcommand per task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Drive etcd clusters through the etcd operator's gRPC API.
///
/// Every call carries a Kubernetes token and RBAC decides it: unless --token is given, the tool
/// asks Kubernetes (with the kubeconfig's credentials, as `kubectl create token` does) for a
/// short-lived token of --service-account for the API's audience. The API's certificate is
/// verified against the CA the operator publishes (ConfigMap etcd-operator-api-ca), unless
/// --ca-file names one.
///
/// Exit codes: 0 done; 1 the operation failed or stopped; 2 bad usage; 3 the server could not
/// be reached (or answered too late); 4 not authenticated or not allowed; 5 no such cluster;
/// 6 refused (an invalid value, or unsafe or impossible now); 7 local configuration (server,
/// kubeconfig, CA); 130 interrupted (the operation goes on in the operator).
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach and authenticate to the API.
#[derive(Clone, Debug, Args)]
pub struct Global {
    /// The cluster-service's gRPC address, such as https://127.0.0.1:9090.
    #[arg(long, env = "ETCDOPCTL_SERVER", global = true)]
    pub server: Option<String>,
    /// Namespace of the cluster (default: the kubeconfig context's, else "default").
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Bearer token to send as is (instead of asking for one of --service-account).
    #[arg(long, env = "ETCDOPCTL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Service account whose token is asked for: NAME (in the cluster's namespace) or
    /// NAMESPACE/NAME.
    #[arg(long, env = "ETCDOPCTL_SERVICE_ACCOUNT", default_value = "etcd-tooling", global = true)]
    pub service_account: String,
    /// Audience the token is asked for (the chart's api.audience).
    #[arg(long, default_value = "etcd-operator", global = true)]
    pub audience: String,
    /// CA certificate to verify the server with (default: the one the operator publishes).
    #[arg(long, env = "ETCDOPCTL_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Namespace of the operator, where it publishes its CA.
    #[arg(long, default_value = "etcd-operator", global = true)]
    pub operator_namespace: String,
    /// ConfigMap the operator publishes its CA in (key ca.crt).
    #[arg(long, default_value = "etcd-operator-api-ca", global = true)]
    pub ca_config_map: String,
    /// Accept an http:// server (plaintext; for local runs only).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Deadline of each call, in seconds.
    #[arg(long, default_value_t = 30, global = true)]
    pub timeout: u64,
}

/// How answers are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables, for people.
    #[default]
    Table,
    /// JSON, for programs.
    Json,
    /// YAML.
    Yaml,
}

/// Whether a change waits for the cluster to get there.
#[derive(Clone, Debug, Args)]
pub struct Wait {
    /// Return once the change is accepted, without following it.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to follow the change, in seconds, before giving up (it goes on).
    #[arg(long, default_value_t = 600)]
    pub wait_timeout: u64,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List clusters: their phase, members and the operation in progress.
    List {
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
        /// Print again whenever something changes (Ctrl-C ends).
        #[arg(short, long)]
        watch: bool,
    },
    /// Show one cluster: members, conditions and the operation in progress.
    Status {
        cluster: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
        /// Print again whenever something changes (Ctrl-C ends).
        #[arg(short, long)]
        watch: bool,
        /// Observe the cluster now (every member is called) instead of the recorded status.
        #[arg(long)]
        fresh: bool,
    },
    /// Set the number of members; members are added and removed one at a time.
    Scale {
        cluster: String,
        /// Members wanted, 1 to 9 (0 stops the cluster: see `stop`).
        size: i32,
        #[command(flatten)]
        wait: Wait,
    },
    /// Stop every member, keeping their data and a verified snapshot (spec.size 0).
    Stop {
        cluster: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Start a stopped cluster again with all its data.
    Restart {
        cluster: String,
        /// Members to start with.
        #[arg(long)]
        size: i32,
        #[command(flatten)]
        wait: Wait,
    },
    /// Move the cluster to another etcd version, one member at a time, as etcd allows.
    Upgrade {
        cluster: String,
        /// The version, 3.<minor>.<patch>.
        #[arg(value_name = "VERSION")]
        to: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Replace a member: remove it, recreate its volume empty, add it back and promote it.
    ReplaceMember {
        cluster: String,
        /// The member (pod) to replace.
        member: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Defragment members' databases, one at a time (all members without --member).
    Defrag {
        cluster: String,
        /// Only this member (pod).
        #[arg(long)]
        member: Option<String>,
    },
    /// Back up a cluster now, list backups, or show one.
    Backup {
        #[command(subcommand)]
        action: BackupAction,
    },
    /// Create a new cluster from a backup that succeeded (the source cluster is not touched).
    Restore {
        /// Name of the new cluster.
        cluster: String,
        /// The EtcdBackup to restore (in the same namespace).
        #[arg(long)]
        from_backup: String,
        /// Members of the new cluster.
        #[arg(long, default_value_t = 3)]
        size: i32,
        /// etcd version of the new cluster, 3.<minor>.<patch> (not older than the backup's).
        #[arg(long)]
        etcd_version: String,
        /// Volume size of each member.
        #[arg(long, default_value = "8Gi")]
        storage_size: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Show the cluster's certificates and when they expire.
    Certs {
        cluster: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What `backup` does.
#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Take a backup now and follow it until the snapshot is stored and verified.
    Now {
        cluster: String,
        /// Name of the EtcdBackup (default: <cluster>-<UTC time>).
        #[arg(long)]
        name: Option<String>,
        /// A PersistentVolumeClaim the cluster-service writes to (the backup volume).
        #[arg(long, required_unless_present = "storage_json", conflicts_with = "storage_json")]
        claim: Option<String>,
        /// Directory within the claim (default: the cluster's name).
        #[arg(long, requires = "claim")]
        path: Option<String>,
        /// spec.storage as JSON, for S3 (see the EtcdBackup CRD).
        #[arg(long)]
        storage_json: Option<String>,
        #[command(flatten)]
        wait: Wait,
    },
    /// List backups, newest first (of one cluster when named).
    List {
        cluster: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one backup: where it is stored, its size, revision and checksum.
    Show {
        name: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
