//! Backups end to end: the README's example EtcdBackup and
//! EtcdBackupSchedule applied with kubectl, taken by the backup controller
//! and the cluster-service as OS processes from real etcd pods, written to a
//! claim directory; a new cluster restored from the backup holds the same
//! keys; the schedule runs every minute and prunes to its count when it is cut.

use std::time::Duration;

use e2e_tests::{Stack, eventually};
use etcd_operator_api::{
    EtcdBackup, EtcdBackupSchedule, EtcdCluster,
    backup::BackupPhase,
    cluster::{ClusterPhase, RestorePhase},
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::{Api, api::ListParams};

const CLUSTER: &str = include_str!("../../../examples/local-etcdcluster.yaml");
const BACKUPS: &str = include_str!("../../../examples/local-etcdbackup.yaml");
const RESTORED: &str = include_str!("../../../examples/local-etcdcluster-restored.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_backup_and_schedule_run_and_prune() {
    let mut stack = Stack::start("backup").await;
    let endpoint = stack.start_cluster_service("cluster-service-a", &[]).await;
    for kind in ["lifecycle", "backup"] {
        stack.start_controller(kind, &format!("{kind}-a"), &endpoint, &[]).await;
    }
    stack.kubectl_apply(CLUSTER);
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    eventually("the cluster running", Duration::from_secs(90), || async {
        let c = clusters.get("demo").await.unwrap();
        c.status.is_some_and(|s| s.phase == ClusterPhase::Running)
    })
    .await;

    // Data to back up (nothing writes after the backup, so the restored copy must equal it).
    let mut etcd = etcd_client::Client::connect(member_endpoints(&stack, "demo").await, None).await.unwrap();
    for i in 0..100 {
        etcd.put(format!("k/{i:03}"), format!("v{i}"), None).await.unwrap();
    }
    let applied = stack.kubectl_apply(BACKUPS);
    assert!(applied.contains("etcdbackupschedule.etcd.operator.dev/demo-every-minute created"), "{applied}");
    let backups: Api<EtcdBackup> = Api::namespaced(stack.client.clone(), "default");
    eventually("the one-shot backup succeeded", Duration::from_secs(60), || async {
        let b = backups.get("demo-now").await.unwrap();
        b.status.is_some_and(|s| s.phase == BackupPhase::Succeeded)
    })
    .await;
    let b = backups.get("demo-now").await.unwrap().status.unwrap();
    let file = stack.backup_volume_root().join("local/demo").join(b.key.unwrap());
    assert_eq!(std::fs::metadata(&file).unwrap().len() as i64, b.size_bytes.unwrap());
    let printed = stack.kubectl(&["get", "etcdbackup", "demo-now", "-o", "jsonpath={.status.sha256}"]);
    assert_eq!(String::from_utf8_lossy(&printed.stdout), b.sha256.unwrap());

    // A new cluster from that backup holds the same keys (restored while the schedule runs).
    let restored = stack.kubectl_apply(RESTORED);
    assert!(restored.contains("etcdcluster.etcd.operator.dev/demo-restored created"), "{restored}");
    eventually("the restored cluster running", Duration::from_secs(120), || async {
        let c = clusters.get("demo-restored").await.unwrap();
        c.status.is_some_and(|s| s.phase == ClusterPhase::Running)
    })
    .await;
    let status = clusters.get("demo-restored").await.unwrap().status.unwrap();
    assert_eq!(status.restore.as_ref().map(|r| r.phase), Some(RestorePhase::Completed), "{status:?}");
    let original = all_keys(&member_endpoints(&stack, "demo").await).await;
    let copy = all_keys(&member_endpoints(&stack, "demo-restored").await).await;
    assert!(original.len() >= 100, "the writes before the backup: {}", original.len());
    assert_eq!(copy, original, "the restored cluster holds every key and value");
    // The snapshot came over TLS: the restore agent verified the server with the API's CA, which
    // the operator keeps beside the cluster.
    let pods: Api<Pod> = Api::namespaced(stack.client.clone(), "default");
    let member = pods.get("demo-restored-0").await.unwrap().spec.unwrap();
    let agent = &member.init_containers.unwrap()[0];
    let args = agent.args.clone().unwrap_or_default();
    assert!(args.iter().any(|a| a.starts_with("--endpoint=https://")), "{args:?}");
    assert!(args.contains(&"--ca-file=/var/run/etcd-operator/api-ca/ca.crt".to_owned()), "{args:?}");
    let config_maps: Api<ConfigMap> = Api::namespaced(stack.client.clone(), "default");
    let published = config_maps.get("etcd-operator-api-ca").await;
    let beside = config_maps.get("demo-restored-operator-api-ca").await.unwrap().data.unwrap();
    let operator = Api::<ConfigMap>::namespaced(stack.client.clone(), e2e_tests::OPERATOR_NAMESPACE);
    let operator = operator.get("etcd-operator-api-ca").await.unwrap().data.unwrap();
    assert_eq!(beside.get("ca.crt"), operator.get("ca.crt"));
    assert!(published.is_err(), "the operator's own ConfigMap is published in its namespace only");

    // Every minute a backup; two runs, then the retention is cut to one (kubectl patch) and the older goes.
    let schedules: Api<EtcdBackupSchedule> = Api::namespaced(stack.client.clone(), "default");
    let selector = ListParams::default().labels("etcd.operator.dev/schedule=demo-every-minute");
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("two scheduled runs", Duration::from_secs(150), || async {
        let items = backups.list(&selector).await.unwrap().items;
        let done = items
            .into_iter()
            .filter(|b| b.status.as_ref().is_some_and(|s| s.phase == BackupPhase::Succeeded));
        let mut seen = seen.lock().unwrap();
        seen.extend(done.map(|b| b.metadata.name.unwrap()));
        seen.len() >= 2
    })
    .await;
    let seen = seen.into_inner().unwrap();
    let patch = r#"{"spec":{"retention":{"maxCount":1}}}"#;
    stack.kubectl_ok(&["patch", "etcdbackupschedule", "demo-every-minute", "--type=merge", "-p", patch]);
    eventually("retention down to 1", Duration::from_secs(30), || async {
        let kept = schedules.get("demo-every-minute").await.unwrap().status.unwrap_or_default().kept_backups;
        let listed = backups.list(&selector).await.unwrap().items;
        let done =
            listed.iter().filter(|b| b.status.as_ref().is_some_and(|s| s.phase == BackupPhase::Succeeded));
        kept.len() == 1 && done.count() == 1
    })
    .await;
    let first = seen.iter().next().unwrap().clone();
    assert!(backups.get_opt(&first).await.unwrap().is_none(), "the oldest run was pruned");
    let status = schedules.get("demo-every-minute").await.unwrap().status.unwrap();
    assert!(status.last_successful_time.is_some() && status.next_schedule_time.is_some(), "{status:?}");
    let stored = walk(&stack.backup_volume_root().join("local/demo"));
    // The one-shot backup, the kept scheduled one, and perhaps a third run that began meanwhile.
    let snapshots = stored.iter().filter(|p| p.ends_with("snapshot.db")).count();
    assert!((2..=3).contains(&snapshots), "{stored:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// Client URLs of the pods of cluster `name` (the test reaches pod IPs through the node's bridge).
async fn member_endpoints(stack: &Stack, name: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(stack.client.clone(), "default");
    let selector = ListParams::default().labels(&format!("app.kubernetes.io/instance={name}"));
    pods.list(&selector)
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.as_ref().map(|ip| format!("http://{ip}:2379")))
        .collect()
}

async fn all_keys(endpoints: &[String]) -> Vec<(String, String)> {
    let mut etcd = etcd_client::Client::connect(endpoints, None).await.unwrap();
    let resp = etcd.get("", Some(etcd_client::GetOptions::new().with_all_keys())).await.unwrap();
    resp.kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap().to_owned(), kv.value_str().unwrap().to_owned()))
        .collect()
}
