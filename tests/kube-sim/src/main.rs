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
    let sim = match kube_sim::KubeSim::start(args.listen, &args.dir).await {
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
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
    sim.stop().await;
    std::process::ExitCode::SUCCESS
}
