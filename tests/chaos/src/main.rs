//! The fault campaign's runner: `cargo run -p chaos -- --seed N --runs K`.
//!
//! Runs seeds N, N+1, … N+K-1 one after another (each a whole stack on kube-sim, so it needs
//! root, `scripts/setup.sh` and `cargo build --workspace --bins` first), prints one line per run,
//! keeps every failed run's seed, history and logs under `--artifacts` (with the summary so far in
//! `campaign.md`), and with `--reliability FILE` appends the campaign's summary to it. Exits 1
//! when any run failed.

use std::{path::PathBuf, time::Duration};

use chaos::{
    report::{RunReport, markdown},
    run::{Config, run},
};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Seeded fault-campaign runs of the whole stack, their histories checked")]
struct Args {
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many runs (seeds seed, seed+1, …).
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// Seconds of faults per run.
    #[arg(long, default_value_t = 90)]
    faults: u64,
    /// Seconds the cluster gets to return to its spec after the faults are healed.
    #[arg(long, default_value_t = 150)]
    converge: u64,
    /// Where failed runs are kept (default: `target/chaos`).
    #[arg(long)]
    artifacts: Option<PathBuf>,
    /// Keep passing runs' artifacts too.
    #[arg(long)]
    keep_passing: bool,
    /// Append the campaign's summary to this file (RELIABILITY.md).
    #[arg(long)]
    reliability: Option<PathBuf>,
    /// The summary's title.
    #[arg(long, default_value = "Campaign")]
    title: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let mut reports: Vec<RunReport> = Vec::new();
    let artifacts = args.artifacts.clone().unwrap_or_else(chaos::run::default_artifacts);
    for seed in args.seed..args.seed + args.runs {
        let config = Config {
            seed,
            faults: Duration::from_secs(args.faults),
            converge: Duration::from_secs(args.converge),
            artifacts: artifacts.clone(),
            keep_passing: args.keep_passing,
        };
        // Ctrl-C or SIGTERM drops the run, and with it every process and pod it started.
        let report = tokio::select! {
            report = run(&config) => report,
            () = interrupted() => {
                eprintln!("interrupted during seed {seed}: every process of the run is stopped");
                break;
            }
        };
        println!("{}", report.line());
        if let Some(dir) = &report.artifacts {
            println!("  kept in {dir}");
        }
        reports.push(report);
        // The summary so far, so that a campaign cut short still says what it did.
        let _ = std::fs::write(artifacts.join("campaign.md"), markdown(&args.title, &reports));
    }
    let summary = markdown(&args.title, &reports);
    println!("\n{summary}");
    if let Some(path) = &args.reliability {
        use std::io::Write;
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).expect("RELIABILITY.md");
        writeln!(file, "\n{summary}").expect("summary appended");
    }
    if reports.iter().any(|r| !r.passed()) {
        std::process::exit(1);
    }
}

async fn interrupted() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
