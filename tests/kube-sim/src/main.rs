//! kube-sim binary: serve the API until Ctrl-C or SIGTERM.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

/// A Kubernetes API server stand-in on loopback, for tests and local demos.
#[derive(Parser)]
#[command(name = "kube-sim", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory for the kubeconfig it writes.
    #[arg(long, default_value = ".kube-sim")]
    dir: PathBuf,
    /// YAML files (or directories of them) whose objects are created at start, CRDs first.
    #[arg(long)]
    apply: Vec<PathBuf>,
    /// Run pods as processes on a node (needs root and iproute2); without it pods stay Pending.
    #[arg(long)]
    node: bool,
    /// Extra image rule `repository=/local/binary` (or `repository=` to run commands as written); repeatable.
    #[arg(long = "image", value_name = "RULE")]
    images: Vec<String>,
    /// Cap on probe periods in seconds (probes run at least this often).
    #[arg(long, value_name = "SECONDS")]
    max_probe_period: Option<u64>,
    /// Cluster domain of the DNS names pods resolve.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
}

impl Args {
    fn node_config(&self) -> Result<Option<kube_sim::node::NodeConfig>, String> {
        if !self.node {
            return Ok(None);
        }
        let mut config = kube_sim::node::NodeConfig::new(&self.dir.join("node"));
        for rule in &self.images {
            config.images.add(rule)?;
        }
        config.max_probe_period = self.max_probe_period.map(std::time::Duration::from_secs);
        config.cluster_domain = self.cluster_domain.clone();
        Ok(Some(config))
    }
}

/// The YAML files named directly or found in named directories, sorted.
fn yaml_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            entries.sort();
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("kube-sim: --dir {}: {e}", args.dir.display());
        return std::process::ExitCode::FAILURE;
    }
    let started = match args.node_config() {
        Ok(Some(node)) => {
            kube_sim::KubeSim::start_with_node(args.listen, &args.dir, node).await.map_err(|e| e.to_string())
        }
        Ok(None) => kube_sim::KubeSim::start(args.listen, &args.dir).await.map_err(|e| e.to_string()),
        Err(e) => Err(format!("--image: {e}")),
    };
    let sim = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-sim: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let files = match yaml_files(&args.apply) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kube-sim: --apply: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut all = String::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(text) => all.push_str(&format!("\n---\n{text}")),
            Err(e) => {
                eprintln!("kube-sim: --apply {}: {e}", f.display());
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = sim.apply_yaml(&all) {
        eprintln!("kube-sim: --apply: {e}");
        return std::process::ExitCode::FAILURE;
    }
    println!("kube-sim serving https://{}; export KUBECONFIG={}", sim.addr, sim.kubeconfig.display());
    if let Some(node) = sim.node() {
        println!("node running pods; cluster DNS for host processes: {}", node.hosts_file().display());
    }
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
    sim.stop().await;
    std::process::ExitCode::SUCCESS
}
