//! The metrics the dashboard and the alerts are written against exist: every metric name their
//! queries use is served by a real scrape, of the health and backup controllers' leaders (the
//! per-cluster exports) and of a real etcd member's metrics port (etcd's own). And the exports
//! tell the truth about the running cluster and its backup schedule.

use std::{collections::BTreeSet, time::Duration};

use e2e_tests::{Stack, eventually, process::OperatorProcess};

const CLUSTER: &str = e2e_tests::ONE_MEMBER_DEMO;
const BACKUPS: &str = include_str!("../../../examples/local-etcdbackup.yaml");
const DASHBOARD: &str = include_str!("../../../helm/etcd-operator/files/etcd-operator-dashboard.json");
const RULES: &str = include_str!("../../../helm/etcd-operator/files/etcd-operator.rules.yaml");

/// Every PromQL expression of the dashboard (panels and variables) and of the alert rules.
fn queries() -> Vec<String> {
    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "query", serde_json::Value::String(q)) => out.push(q.clone()),
                        _ => collect(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    collect(&serde_json::from_str(DASHBOARD).expect("the dashboard is JSON"), &mut out);
    let rules: serde_json::Value = serde_yaml_ng::from_str(RULES).expect("the rules are YAML");
    collect(&rules, &mut out);
    out
}

/// The metric names a query uses: ours and etcd's start with `etcd_`.
fn names_in(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in query.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("etcd_") {
                names.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

/// Names a Prometheus text exposition serves: its samples', and what it declares (a metric
/// with no series now, such as the operation in progress, still exists; a counter's samples end
/// in `_total`).
fn served(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        match line.strip_prefix("# TYPE ").map(|t| t.split(' ').collect::<Vec<_>>()).as_deref() {
            Some([name, "counter"]) => names.extend([name.to_string(), format!("{name}_total")]),
            Some([name, _]) => drop(names.insert(name.to_string())),
            Some(_) => {}
            None if line.starts_with('#') || line.is_empty() => {}
            None => names.extend(line.split(['{', ' ']).next().map(str::to_owned)),
        }
    }
    names
}

async fn leader_metrics(p: &OperatorProcess, needle: &str) -> Option<String> {
    let text = p.metrics().await;
    text.contains(needle).then_some(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_use_is_served_and_tells_the_truth() {
    let mut stack =
        Stack::start("every_metric_the_dashboard_and_alerts_use_is_served_and_tells_the_truth").await;
    let server = stack.start_cluster_service("cluster-service-0", &[]).await;
    let mut index = std::collections::HashMap::new();
    for kind in ["lifecycle", "health", "backup"] {
        index.insert(kind, stack.start_controller(kind, &format!("{kind}-a"), &server, &[]).await);
    }
    stack.kubectl_apply(CLUSTER);
    stack.kubectl_apply(BACKUPS);

    // The health controller's leader exports the cluster as its status says.
    let health = &stack.processes[index["health"]];
    let ready = r#"etcd_operator_cluster_ready_members{namespace="default",cluster="demo"} 1"#;
    eventually("the cluster's series", Duration::from_secs(90), || async {
        leader_metrics(health, ready).await.is_some_and(|t| t.contains("etcd_operator_member_db_size_bytes"))
    })
    .await;
    let cluster_text = health.metrics().await;
    for line in [
        r#"etcd_operator_cluster_has_leader{namespace="default",cluster="demo"} 1"#,
        r#"etcd_operator_cluster_phase{namespace="default",cluster="demo",phase="Running"} 1"#,
        r#"etcd_operator_member_leader{namespace="default",cluster="demo",member="demo-0"} 1"#,
        r#"etcd_operator_cluster_quota_backend_bytes{namespace="default",cluster="demo"} 2147483648"#,
    ] {
        assert!(cluster_text.contains(line), "{line} in:\n{cluster_text}");
    }
    // The backup controller's leader exports the schedule once a backup of it succeeded.
    let backup = &stack.processes[index["backup"]];
    let last_success = "etcd_operator_backup_schedule_last_success_timestamp_seconds{";
    eventually("the schedule's last success", Duration::from_secs(150), || async {
        leader_metrics(backup, last_success).await.is_some()
    })
    .await;
    let schedule_text = backup.metrics().await;
    let period = r#"etcd_operator_backup_schedule_period_seconds{namespace="default",schedule="demo-every-minute",cluster="demo"} 60"#;
    assert!(schedule_text.contains(period), "{period} in:\n{schedule_text}");
    let size = r#"etcd_operator_backup_last_size_bytes{namespace="default",cluster="demo"} "#;
    assert!(schedule_text.contains(size), "{size} in:\n{schedule_text}");
    // Only the leaders export: the lifecycle controller has none of it.
    assert!(!stack.processes[index["lifecycle"]].metrics().await.contains("etcd_operator_cluster_"));

    // etcd's own metrics, from the member's metrics port, which the cluster's headless metrics
    // Service lists for scrapers.
    let port = stack.kubectl_ok(&[
        "get",
        "service",
        "demo-metrics",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].name}:{.spec.ports[0].port}",
    ]);
    assert_eq!(port, "None metrics:2381");
    let ip = stack.node().pod_ip("default", "demo-0").expect("demo-0 has an address");
    let (_, etcd_text) = process_harness::http_get(&format!("{ip}:2381"), "/metrics")
        .await
        .expect("the member's metrics port answers");

    let mut available = served(&cluster_text);
    available.extend(served(&schedule_text));
    available.extend(served(&health.metrics().await));
    available.extend(served(&etcd_text));
    let used: BTreeSet<String> = queries().iter().flat_map(|q| names_in(q)).collect();
    assert!(used.len() >= 20, "the queries use {used:?}");
    let missing: Vec<&String> = used.iter().filter(|n| !available.contains(*n)).collect();
    assert!(missing.is_empty(), "the dashboard or the alerts use metrics nothing serves: {missing:?}");
}
