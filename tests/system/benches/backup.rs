//! Backup and restore benchmark against a real etcd pod on kube-sim's node,
//! each measured against etcd's own tool in the same run:
//! - backup: BackupService RunBackup to a local directory (stream, in-stream
//!   trailer check, read-back verification, checksum and metadata files)
//!   against `etcdctl snapshot save` of the same member;
//! - restore: the restore agent's work for one member (fetch the snapshot
//!   from the cluster-service over gRPC, check its sha256, `etcdctl snapshot
//!   restore`, rename into place) against `etcdctl snapshot restore` alone.
//!
//! Prints medians and ratios; `cargo bench -p system-tests --bench backup`.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use etcd_operator_api::{EtcdBackup, backup::BackupPhase};
use etcd_operator_service::BackupService;
use kube::{Api, api::PostParams};
use system_tests::{median, real::RealCluster};

const ROUNDS: usize = 3;
/// 128 values of 512 KiB: a 64 MiB database.
const KEYS: usize = 128;
const VALUE: usize = 512 * 1024;

fn etcdctl(args: &[&str]) {
    let out =
        Command::new("/usr/bin/etcdctl").env("ETCDCTL_API", "3").args(args).output().expect("etcdctl runs");
    assert!(out.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

async fn run_backup(c: &RealCluster, service: &BackupService, name: &str) -> Duration {
    let backup: EtcdBackup = serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackup",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterName": "demo", "storage": {"volume": {"claimName": "bench"}}}
    }))
    .expect("backup");
    Api::<EtcdBackup>::namespaced(c.client.clone(), "default")
        .create(&PostParams::default(), &backup)
        .await
        .expect("create");
    let started = Instant::now();
    loop {
        let out = Box::pin(service.run_backup("default", name)).await.expect("RunBackup");
        if out.requeue_after.is_none() {
            assert_eq!(out.status.phase, BackupPhase::Succeeded, "{out:?}");
            return started.elapsed();
        }
    }
}

/// The restore agent's work for one member, as the binary does it (fetch over gRPC is replaced by
/// a local read of the same bytes plus the sha256 check; the restore itself is the same tool).
fn agent_restore(snapshot: &Path, sha256: &str, dir: &Path) -> Duration {
    use sha2::{Digest, Sha256};
    let started = Instant::now();
    let scratch = dir.join("data.restore");
    std::fs::create_dir_all(&scratch).expect("scratch");
    let copy = scratch.join("snapshot.db");
    let bytes = std::fs::read(snapshot).expect("snapshot");
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha256);
    std::fs::write(&copy, &bytes).expect("copy");
    let data = scratch.join("data");
    etcdctl(&[
        "snapshot",
        "restore",
        copy.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--name",
        "m",
        "--initial-cluster",
        "m=http://m:2380",
        "--initial-advertise-peer-urls",
        "http://m:2380",
    ]);
    std::fs::rename(&data, dir.join("data")).expect("rename");
    std::fs::remove_dir_all(&scratch).expect("cleanup");
    started.elapsed()
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(Box::pin(async {
        let c = RealCluster::start(1, Duration::from_secs(30)).await;
        let mut etcd = c.etcd().await;
        for i in 0..KEYS {
            etcd.put(format!("bench/{i:04}"), vec![b'x'; VALUE], None).await.expect("put");
        }
        let root = c.backup_volume_root().join("bench");
        std::fs::create_dir_all(&root).expect("claim dir");
        let service = c.services.backup.clone();
        let ip = c.sim.node().expect("node").pod_ip("default", "demo-0").expect("pod ip");
        let endpoint = format!("http://{ip}:2379");
        let scratch = tempfile::tempdir().expect("scratch");
        let (mut bare_saves, mut op_saves, mut bare_restores, mut agent_restores) = (vec![], vec![], vec![], vec![]);
        let mut size = 0;
        for round in 0..ROUNDS {
            let file = scratch.path().join(format!("bare-{round}.db"));
            let t = Instant::now();
            etcdctl(&["--endpoints", &endpoint, "snapshot", "save", file.to_str().unwrap()]);
            bare_saves.push(t.elapsed());
            op_saves.push(run_backup(&c, &service, &format!("bench-{round}")).await);

            let backup = Api::<EtcdBackup>::namespaced(c.client.clone(), "default").get(&format!("bench-{round}")).await.expect("backup");
            let status = backup.status.expect("status");
            size = status.size_bytes.unwrap_or_default();
            let stored = root.join(status.key.expect("key"));
            let bare_dir = scratch.path().join(format!("bare-restore-{round}"));
            let t = Instant::now();
            etcdctl(&["snapshot", "restore", stored.to_str().unwrap(), "--data-dir", bare_dir.to_str().unwrap(), "--name", "m", "--initial-cluster", "m=http://m:2380", "--initial-advertise-peer-urls", "http://m:2380"]);
            bare_restores.push(t.elapsed());
            let agent_dir = scratch.path().join(format!("agent-restore-{round}"));
            agent_restores.push(agent_restore(&stored, &status.sha256.expect("sha"), &agent_dir));
            eprintln!("round {round} done");
        }
        let row = |name: &str, bare: Vec<Duration>, op: Vec<Duration>| {
            let (b, o) = (median(bare), median(op));
            let mib = size as f64 / (1024.0 * 1024.0);
            println!(
                "| {name:<34} | {:>7.0} ms ({:>5.0} MiB/s) | {:>7.0} ms ({:>5.0} MiB/s) | {:>5.2} |",
                b.as_secs_f64() * 1000.0,
                mib / b.as_secs_f64(),
                o.as_secs_f64() * 1000.0,
                mib / o.as_secs_f64(),
                o.as_secs_f64() / b.as_secs_f64()
            );
        };
        println!("\nbackup and restore of a {:.0} MiB database, median of {ROUNDS} rounds\n", size as f64 / 1048576.0);
        println!("| what                               | etcd's tool               | operator                  | ratio |");
        println!("| ---------------------------------- | ------------------------- | ------------------------- | ----- |");
        row("backup to a local directory", bare_saves, op_saves);
        row("restore of one member", bare_restores, agent_restores);
    }));
}
