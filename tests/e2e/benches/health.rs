//! The health path's CPU per cluster per probe: the operator's six processes (release binaries, as
//! OS processes) with real one-member clusters on kube-sim's node, the health controller probing
//! every 5 s. The CPU time each process used (utime + stime, from /proc) over a window with
//! `HEALTH_CLUSTERS` (default 15) Available clusters, against the same window with none, same
//! run; divided by the probes the health controller made in the window (its `reconciles` counter).
//! A probe is the health controller's CheckHealth and the cluster-service's work for it: the
//! membership, each member's status, the alarms, the cluster version, the status write.
//! Extrapolated to 1 000 clusters at the default 30 s interval. `HEALTH_ETCD_IDLE` sets the
//! cluster-service's `--etcd-idle-timeout` (`0s`: no connection is kept between probes);
//! `HEALTH_TLS=1` gives every cluster TLS with client certificates.
//!
//! `cargo build --release --bins && cargo bench -p e2e-tests --bench health`.

use std::time::{Duration, Instant};

use e2e_tests::{Stack, eventually, usage::cpu_seconds};
use etcd_operator_api::EtcdCluster;
use kube::{Api, api::ListParams};

const KINDS: [&str; 5] = ["lifecycle", "scaling", "health", "recovery", "backup"];
const NAMESPACE: &str = "health-bench";
const WINDOW: Duration = Duration::from_secs(60);
const INTERVAL: &str = "5s";

fn clusters() -> usize {
    std::env::var("HEALTH_CLUSTERS").ok().and_then(|n| n.parse().ok()).unwrap_or(15)
}

/// Probes the health controller has finished (every result), from its metrics.
async fn probes(stack: &Stack, health: usize) -> f64 {
    let metrics = stack.processes[health].metrics().await;
    metrics
        .lines()
        .filter(|l| l.contains("reconciles_total{") && l.contains("controller=\"health\""))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// CPU seconds each process used over the window, and the probes made meanwhile.
async fn window(stack: &Stack, health: usize) -> (Vec<f64>, f64) {
    let pids: Vec<u32> = stack.processes.iter().map(|p| p.pid().expect("running")).collect();
    let (cpu0, probes0): (Vec<f64>, f64) =
        (pids.iter().map(|p| cpu_seconds(*p)).collect(), probes(stack, health).await);
    tokio::time::sleep(WINDOW).await;
    let cpu = pids.iter().zip(cpu0).map(|(p, c)| cpu_seconds(*p) - c).collect();
    (cpu, probes(stack, health).await - probes0)
}

/// With `HEALTH_TLS` set, each cluster serves TLS with operator-managed certificates and asks
/// clients for theirs (the operator dials with its client certificate).
fn tls() -> bool {
    std::env::var_os("HEALTH_TLS").is_some()
}

fn cluster_yaml(i: usize) -> String {
    let tls = if tls() { ", tls: {operatorManaged: {}, clientCertAuth: true}" } else { "" };
    format!(
        "apiVersion: etcd.operator.dev/v1alpha1\nkind: EtcdCluster\nmetadata: {{name: h{i:02}, namespace: {NAMESPACE}}}\nspec: {{size: 1, version: 3.4.23, storage: {{size: 1Gi}}{tls}}}\n"
    )
}

async fn all_available(client: &kube::Client, n: usize) -> bool {
    let api = Api::<EtcdCluster>::namespaced(client.clone(), NAMESPACE);
    let Ok(list) = api.list(&ListParams::default()).await else { return false };
    let available = |c: &EtcdCluster| {
        c.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Available" && c.status == etcd_operator_api::ConditionStatus::True)
        })
    };
    list.items.len() == n && list.items.iter().all(available)
}

fn row(label: &str, cpu: &[f64], probes: f64) -> String {
    let cells: Vec<String> = cpu.iter().map(|c| format!("{c:.2}")).collect();
    format!("| {label} | {} | {probes:.0} |", cells.join(" | "))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = clusters();
    let mut stack = Stack::start("health-bench").await;
    let idle = std::env::var("HEALTH_ETCD_IDLE").unwrap_or_else(|_| "3m".into());
    eprintln!("the cluster-service keeps etcd connections for {idle} unused; TLS: {}", tls());
    let endpoint =
        stack.start_cluster_service("cluster-service", &[format!("--etcd-idle-timeout={idle}")]).await;
    for kind in KINDS {
        let extra = if kind == "health" { vec![format!("--probe-interval={INTERVAL}")] } else { vec![] };
        stack.start_controller(kind, &format!("{kind}-a"), &endpoint, &extra).await;
    }
    let names: Vec<String> = stack.processes.iter().map(|p| p.name.clone()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let position = |name: &str| names.iter().position(|n| n.starts_with(name)).expect("process");
    let health = position("health");
    println!("| CPU seconds in {WINDOW:?} | {} | probes |", names.join(" | "));
    println!("|---|{}---|", "---|".repeat(names.len()));
    let (idle, idle_probes) = window(&stack, health).await;
    println!("{}", row("no clusters", &idle, idle_probes));

    stack.kubectl_apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n"));
    stack.kubectl_apply(&(0..n).map(cluster_yaml).collect::<Vec<_>>().join("---\n"));
    let started = Instant::now();
    eventually("every cluster Available", Duration::from_secs(600), || all_available(&stack.client, n)).await;
    eprintln!("{n} clusters Available after {:.1?}", started.elapsed());
    // The creations' own work (scaling steps, first probes) is over before the window opens.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let before = system_tests::requests::by_kind(&stack.client).await;
    let (busy, busy_probes) = window(&stack, health).await;
    let after = system_tests::requests::by_kind(&stack.client).await;
    println!("{}", row(&format!("{n} clusters"), &busy, busy_probes));

    let path = [health, position("cluster-service")];
    let extra: f64 = path.iter().map(|i| busy[*i] - idle[*i]).sum();
    let per_probe_ms = extra / busy_probes.max(1.0) * 1e3;
    // 1 000 clusters, each probed every 30 s: CPU seconds per second = cores.
    let cores = per_probe_ms / 1e3 * 1_000.0 / 30.0;
    println!(
        "\n| clusters | probes in the window | health path CPU above idle | per cluster per probe | 1 000 clusters every 30 s |\n|---|---|---|---|---|\n| {n} | {busy_probes:.0} | {extra:.2} s | {per_probe_ms:.2} ms | {:.0}% of a core |",
        cores * 100.0
    );
    println!("\n| Kubernetes requests per probe (every client's, in the window) | count |\n|---|---|");
    for (what, n) in &after {
        let per_probe = (n - before.get(what).copied().unwrap_or(0)) as f64 / busy_probes.max(1.0);
        if per_probe >= 0.05 {
            println!("| {what} | {per_probe:.2} |");
        }
    }
}
