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
    println!("kube-sim serving https://{}; export KUBECONFIG={}", sim.addr, sim.kubeconfig.display());
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
    sim.stop().await;
    std::process::ExitCode::SUCCESS
}
