//! Many clusters: the operator's six processes (release binaries, as OS
//! processes under their chart identities) against kube-sim with its node
//! down, so every pod stays Pending and only the control plane is measured.
//!
//! - RSS of each process idle, and as 1 000 EtcdClusters (`FLEET_CLUSTERS`)
//!   are applied at once: sampled each time another quarter of their
//!   StatefulSets exists, and once every cluster has a status;
//! - the time from `kubectl apply` of the EtcdClusters to all their
//!   StatefulSets existing, against `kubectl apply` of the objects the
//!   operator writes per cluster (StatefulSet, two Services, ConfigMap, PDB,
//!   built by the operator's own templates) into a fresh kube-sim, same run;
//! - at the end, every cluster has each of its objects and a status;
//! - over the time to all StatefulSets: CPU seconds of each process and of the bench's own
//!   process (kube-sim runs in it), the API server's requests per cluster by kind, the
//!   cluster-service's calls per cluster by method and the controllers' reconciles by result.
//!
//! kube-sim keeps 20 000 watch events by default; 1 000 clusters make more, and
//! the watches' 410 relists would be measured too, so the bench keeps more.
//!
//! `cargo build --release --bins && cargo bench -p e2e-tests --bench fleet`.

use std::{
    io::Write,
    process::Command,
    time::{Duration, Instant},
};

use e2e_tests::{
    Stack,
    usage::{cpu_seconds, peak_rss_mib, rss_mib},
};
use etcd_operator_api::EtcdCluster;
use etcd_operator_resource::{names::ClusterNames, templates};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{Api, api::ListParams};

const KINDS: [&str; 5] = ["lifecycle", "scaling", "health", "recovery", "backup"];
const NAMESPACE: &str = "fleet";

fn clusters() -> usize {
    std::env::var("FLEET_CLUSTERS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000)
}

fn cluster_yaml(i: usize) -> String {
    format!(
        "apiVersion: etcd.operator.dev/v1alpha1\nkind: EtcdCluster\nmetadata: {{name: c{i:04}, namespace: {NAMESPACE}}}\nspec: {{size: 3, version: 3.4.23}}\n"
    )
}

/// What the operator writes for cluster `i`, as YAML documents (without owner references: the
/// EtcdClusters do not exist in the baseline's API server, and its garbage collector would act).
fn objects_yaml(i: usize) -> String {
    let mut cluster: EtcdCluster = serde_yaml_ng::from_str(&cluster_yaml(i)).expect("cluster");
    // The templates own their objects by the cluster's UID (removed below).
    cluster.metadata.uid = Some(format!("00000000-0000-4000-8000-{i:012}"));
    let ctx = templates::TemplateContext::new(&cluster, "cluster.local");
    let names = ClusterNames::of(&cluster, "cluster.local");
    let bootstrap = templates::BootstrapConfig::new_cluster(&names, 3);
    let docs = [
        serde_json::to_value(templates::statefulset(&ctx, 3, &bootstrap).expect("sts")),
        serde_json::to_value(templates::peer_service(&ctx).expect("svc")),
        serde_json::to_value(templates::client_service(&ctx).expect("svc")),
        serde_json::to_value(templates::config_map(&ctx, &bootstrap).expect("cm")),
        serde_json::to_value(templates::pod_disruption_budget(&ctx, 3).expect("pdb")),
    ];
    docs.into_iter()
        .map(|d| {
            let mut d = d.expect("json");
            d["metadata"].as_object_mut().expect("metadata").remove("ownerReferences");
            serde_yaml_ng::to_string(&d).expect("yaml")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// `kubectl apply` of `yaml` against `kubeconfig` (its own HOME: no shared discovery cache).
fn kubectl_apply(kubeconfig: &std::path::Path, home: &std::path::Path, yaml: &str) {
    let file = home.join("objects.yaml");
    std::fs::File::create(&file).and_then(|mut f| f.write_all(yaml.as_bytes())).expect("yaml written");
    let out = Command::new("kubectl")
        .args(["apply", "--validate=false", "-f"])
        .arg(&file)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
}

/// The number of StatefulSets in the bench's namespace, kept by a watch: LISTs of a thousand
/// sets every 100 ms were a load of their own on kube-sim, on both sides of the comparison.
fn watch_statefulsets(client: &kube::Client) -> tokio::sync::watch::Receiver<usize> {
    use kube::{
        core::PartialObjectMeta,
        runtime::watcher::{Event, watcher},
    };
    use tokio_stream::StreamExt;
    let (tx, rx) = tokio::sync::watch::channel(0);
    // Metadata only: kube asks for PartialObjectMetadata.
    let api = Api::<PartialObjectMeta<StatefulSet>>::namespaced(client.clone(), NAMESPACE);
    tokio::spawn(async move {
        let mut names = std::collections::HashSet::new();
        let mut events = std::pin::pin!(watcher(api, Default::default()));
        while let Some(event) = events.next().await {
            if let Ok(Event::Apply(o) | Event::InitApply(o)) = event {
                names.insert(o.metadata.name);
                tx.send_replace(names.len());
            }
        }
    });
    rx
}

async fn statefulsets(client: &kube::Client, namespace: &str) -> usize {
    let api = Api::<StatefulSet>::namespaced(client.clone(), namespace);
    api.list_metadata(&ListParams::default()).await.map_or(0, |l| l.items.len())
}

fn namespace_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n")
}

fn rss_row(stack: &Stack, label: &str) -> String {
    memory_row(stack, label, rss_mib)
}

fn memory_row(stack: &Stack, label: &str, mib: fn(u32) -> f64) -> String {
    let cells: Vec<String> = stack
        .processes
        .iter()
        .map(|p| p.pid().map_or_else(|| "-".into(), |pid| format!("{:.1}", mib(pid))))
        .collect();
    format!("| {label} | {} |", cells.join(" | "))
}

/// CPU seconds each operator process has used, then the bench's own (kube-sim's).
fn cpu(stack: &Stack) -> Vec<f64> {
    let mut pids: Vec<u32> = stack.processes.iter().filter_map(|p| p.pid()).collect();
    pids.push(std::process::id());
    pids.into_iter().map(cpu_seconds).collect()
}

/// The cluster-service's calls so far by method (its `grpc_requests` counters, server side), and
/// the controllers' reconciles by controller and result (their `reconciles` counters).
async fn calls_and_reconciles(stack: &Stack) -> Counts {
    let mut counts = Counts::new();
    for (i, process) in stack.processes.iter().enumerate() {
        let text = process.metrics().await;
        for line in text.lines() {
            let label = |key: &str| line.split(&format!("{key}=\"")).nth(1).and_then(|r| r.split('"').next());
            let key = if i == 0 && line.starts_with("etcd_operator_grpc_requests_total{") {
                match (label("side"), label("method")) {
                    (Some("server"), Some(method)) => format!("call {method}"),
                    _ => continue,
                }
            } else if line.starts_with("etcd_operator_reconciles_total{") {
                match (label("controller"), label("result")) {
                    (Some(controller), Some(result)) => format!("reconcile {controller} {result}"),
                    _ => continue,
                }
            } else {
                continue;
            };
            let count = line.rsplit(' ').next().and_then(|c| c.parse::<f64>().ok()).unwrap_or(0.0);
            *counts.entry(key).or_default() += count as u64;
        }
    }
    counts
}

type Counts = std::collections::BTreeMap<String, u64>;

/// Prints `after - before` per cluster, by key, where at least 0.05.
fn per_cluster_table(title: &str, n: usize, before: &Counts, after: &Counts) {
    println!("\n| {title} | count |\n|---|---|");
    for (what, count) in after {
        let per = (count - before.get(what).copied().unwrap_or(0)) as f64 / n as f64;
        if per >= 0.05 {
            println!("| {what} | {per:.2} |");
        }
    }
}

/// The CPU each process used, the requests per cluster the API server served by kind and the
/// cluster-service's calls per cluster by method, between two snapshots.
fn usage_tables(stack: &Stack, n: usize, cpu0: &[f64], before: &(Counts, Counts), after: &(Counts, Counts)) {
    let mut names: Vec<&str> = stack.processes.iter().map(|p| p.name.as_str()).collect();
    names.push("kube-sim (bench)");
    let used: Vec<String> = cpu(stack).iter().zip(cpu0).map(|(c, c0)| format!("{:.1}", c - c0)).collect();
    println!("\n| CPU seconds to all StatefulSets | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    println!("| {n} clusters | {} |", used.join(" | "));
    per_cluster_table("requests per cluster to all StatefulSets", n, &before.0, &after.0);
    per_cluster_table("calls and reconciles per cluster to all StatefulSets", n, &before.1, &after.1);
}

/// The baseline: the same objects applied with kubectl into a fresh kube-sim.
async fn baseline(n: usize) -> Duration {
    let sim = system_tests::Sim::start().await;
    sim.sim.store().keep_history(1_000_000);
    let client = sim.client().await;
    let home = tempfile::tempdir().expect("home");
    kubectl_apply(&sim.sim.kubeconfig, home.path(), &namespace_yaml(NAMESPACE));
    let yaml: String = (0..n).map(objects_yaml).collect::<Vec<_>>().join("---\n");
    let mut existing = watch_statefulsets(&client);
    let started = Instant::now();
    kubectl_apply(&sim.sim.kubeconfig, home.path(), &yaml);
    existing.wait_for(|c| *c >= n).await.expect("watching StatefulSets");
    started.elapsed()
}

/// Every cluster has a status, and each of its objects exists.
async fn check_every_cluster(client: &kube::Client, n: usize) {
    let api = Api::<EtcdCluster>::namespaced(client.clone(), NAMESPACE);
    let clusters = api.list(&ListParams::default()).await.expect("clusters listed").items;
    assert_eq!(clusters.len(), n);
    let without: Vec<_> =
        clusters.iter().filter(|c| c.status.is_none()).map(|c| c.metadata.name.clone()).collect();
    assert!(without.is_empty(), "clusters without a status: {without:?}");
    let count = |plural: &'static str| async move {
        let kind = match plural {
            "services" => ("", "v1", "Service"),
            "configmaps" => ("", "v1", "ConfigMap"),
            _ => ("policy", "v1", "PodDisruptionBudget"),
        };
        let gvk = kube::api::GroupVersionKind::gvk(kind.0, kind.1, kind.2);
        let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
        let api = Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), NAMESPACE, &ar);
        api.list_metadata(&ListParams::default()).await.expect("listed").items.len()
    };
    assert_eq!(statefulsets(client, NAMESPACE).await, n);
    assert!(count("services").await >= 2 * n, "two Services per cluster");
    assert!(count("configmaps").await >= n, "a ConfigMap per cluster");
    assert_eq!(count("poddisruptionbudgets").await, n);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = clusters();
    let kubectl = baseline(n).await;
    println!("kubectl baseline: {n} clusters' objects applied, all StatefulSets exist after {kubectl:.1?}");

    let mut stack = Stack::start("fleet-bench").await;
    stack.sim.store().keep_history(1_000_000);
    // Node down: pods stay Pending, members never answer; only the control plane works.
    stack.node().stop();
    let endpoint = stack.start_cluster_service("cluster-service", &[]).await;
    for kind in KINDS {
        stack.start_controller(kind, &format!("{kind}-a"), &endpoint, &[]).await;
    }
    let header: Vec<&str> = stack.processes.iter().map(|p| p.name.as_str()).collect();
    println!("| RSS, MiB | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(header.len()));
    tokio::time::sleep(Duration::from_secs(15)).await;
    println!("{}", rss_row(&stack, "idle"));

    stack.kubectl_apply(&namespace_yaml(NAMESPACE));
    let yaml: String = (0..n).map(cluster_yaml).collect::<Vec<_>>().join("---\n");
    let home = tempfile::tempdir().expect("home");
    let mut watched = watch_statefulsets(&stack.client);
    let cpu0 = cpu(&stack);
    let before = (system_tests::requests::by_kind(&stack.client).await, calls_and_reconciles(&stack).await);
    let started = Instant::now();
    kubectl_apply(&stack.sim.kubeconfig, home.path(), &yaml);
    let mut quarter = 1;
    let operator = loop {
        let existing = *watched.borrow_and_update();
        while quarter <= 4 && existing >= n * quarter / 4 {
            println!("{}", rss_row(&stack, &format!("{} StatefulSets", n * quarter / 4)));
            quarter += 1;
        }
        if existing >= n {
            break started.elapsed();
        }
        watched.changed().await.expect("watching StatefulSets");
    };
    let after = (system_tests::requests::by_kind(&stack.client).await, calls_and_reconciles(&stack).await);
    usage_tables(&stack, n, &cpu0, &before, &after);
    // Settled: every cluster has a status (the lifecycle's and the health probe's writes).
    let clusters = Api::<EtcdCluster>::namespaced(stack.client.clone(), NAMESPACE);
    loop {
        let listed = clusters.list(&ListParams::default()).await.expect("clusters listed").items;
        if listed.iter().all(|c| c.status.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    println!("{}", rss_row(&stack, &format!("{n} clusters, settled")));
    println!("{}", memory_row(&stack, "peak (VmHWM)", peak_rss_mib));
    check_every_cluster(&stack.client, n).await;
    println!(
        "\n| {n} clusters → StatefulSets | kubectl, same objects | operator | ratio |\n|---|---|---|---|\n| | {:.1} s | {:.1} s | {:.2} |",
        kubectl.as_secs_f64(),
        operator.as_secs_f64(),
        operator.as_secs_f64() / kubectl.as_secs_f64()
    );
}
