//! One run: the stack, the cluster, the workload, the seed's faults, healing, convergence, the
//! checks, and on failure everything kept.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use e2e_tests::Stack;
use etcd_operator_api::{EtcdBackup, EtcdCluster, backup::BackupPhase, cluster::ClusterPhase};
use kube::Api;

use crate::{
    check::{self, Anomaly, Counts},
    faults::{CONTROLLERS, apply::Target, schedule},
    history::History,
    report::RunReport,
    workload::{APPENDS, PREFIX, Workload, connect},
};

/// How a run is shaped.
#[derive(Clone, Debug)]
pub struct Config {
    /// The seed: the schedule, the faults' choices and the clients' operations.
    pub seed: u64,
    /// How long faults are applied.
    pub faults: Duration,
    /// The bound on getting back to the spec once every fault is healed.
    pub converge: Duration,
    /// Where a failed run's seed, history and logs are kept (`<dir>/seed-<seed>`).
    pub artifacts: PathBuf,
    /// Keep a passing run's too.
    pub keep_passing: bool,
}

/// Register clients, and watchers.
const CLIENTS: u32 = 3;
const WATCHERS: usize = 2;
/// A run that did less than this of each kind proves nothing.
const MIN_OPERATIONS: usize = 100;
const NAMESPACE: &str = "default";
const CLUSTER: &str = "chaos";

fn cluster_yaml() -> String {
    format!(
        "apiVersion: etcd.operator.dev/v1alpha1
kind: EtcdCluster
metadata:
  name: {CLUSTER}
  namespace: {NAMESPACE}
spec:
  size: 3
  version: 3.4.23
  storage:
    size: 1Gi
  pvcRetentionPolicy:
    whenDeleted: Delete
    whenScaled: Delete
"
    )
}

/// What a run did, as it went.
struct Log {
    lines: Vec<String>,
    faults: std::collections::BTreeMap<String, usize>,
}

impl Log {
    fn push(&mut self, line: String) {
        self.lines.push(line);
    }
}

/// Runs the seed's run and judges it.
pub async fn run(config: &Config) -> RunReport {
    let started = Instant::now();
    let mut target = start_stack(config.seed).await;
    let mut log = Log { lines: vec![format!("seed {}", config.seed)], faults: Default::default() };
    let cluster_ready = converge(&target, Duration::from_secs(120)).await;
    if let Err(last) = cluster_ready {
        let anomaly = Anomaly::NotConverged { waited_secs: 120, last: format!("never came up: {last}") };
        return finish(config, &target, started, log, History::default(), vec![anomaly]).await;
    }
    let start = revision(&target).await + 1;
    // Every ordinal a pod may run at (up to 5 as the cluster scales), as the e2e workload does.
    let endpoints = e2e_tests::workload::members(target.stack.node().clone(), NAMESPACE, CLUSTER, 5);
    let mut workload = Workload::start(endpoints, target.from, config.seed, CLIENTS, WATCHERS, start);

    let t0 = Instant::now();
    for step in schedule(config.seed, config.faults) {
        tokio::time::sleep_until((t0 + step.at).into()).await;
        let at = t0.elapsed().as_secs_f64();
        let what = target.apply(&step).await;
        *log.faults.entry(step.fault.name()).or_insert(0) += 1;
        log.push(format!("{at:>6.1}s {}: {what}", step.fault.name()));
        eprintln!("seed {} {}", config.seed, log.lines.last().expect("a line"));
    }
    target.heal_all().await;
    log.push(format!("{:>6.1}s healed every fault", t0.elapsed().as_secs_f64()));

    let mut anomalies = Vec::new();
    let healed = Instant::now();
    match converge(&target, config.converge).await {
        Ok(()) => log.push(format!("converged {:.1}s after healing", healed.elapsed().as_secs_f64())),
        Err(last) => anomalies.push(Anomaly::NotConverged { waited_secs: config.converge.as_secs(), last }),
    }
    workload.stop_clients().await;
    let end = marker(&target).await;
    let history = workload.finish(end, Duration::from_secs(30)).await;
    match appends_present(&target).await {
        Ok(present) => anomalies.extend(check::lost_writes(&history.acked, &present)),
        // Not evidence of a lost write: every acknowledged key reported lost would bury the cause.
        Err(reason) => anomalies.push(Anomaly::FinalReadFailed { reason }),
    }
    anomalies.extend(backups_settled(&target).await);
    finish(config, &target, started, log, history, anomalies).await
}

/// The stack: the cluster-service (its clock steppable), two replicas of each controller, the cluster.
async fn start_stack(seed: u64) -> Target {
    let mut stack = Stack::start(&format!("chaos-seed-{seed}")).await;
    let clock = Target::clock_file(&stack);
    stack.process_env =
        vec![(etcd_operator_common::time::CLOCK_OFFSET_FILE_ENV.to_owned(), clock.display().to_string())];
    let endpoint = stack.start_cluster_service("cluster-service", &["--replace-after=10s".to_owned()]).await;
    stack.process_env.clear();
    let mut controllers = Vec::new();
    for kind in CONTROLLERS {
        let mut replicas = Vec::new();
        for replica in ["a", "b"] {
            let name = format!("{kind}-{replica}");
            replicas.push(
                stack.start_controller(kind, &name, &endpoint, &["--probe-interval=2s".to_owned()]).await,
            );
        }
        controllers.push(replicas);
    }
    stack.kubectl_apply(&cluster_yaml());
    let mut target = Target::new(stack, NAMESPACE, CLUSTER, seed);
    target.controllers = controllers;
    target
}

/// Waits until the cluster is back to its spec: Running, every member ready and healthy, no
/// operation in progress; `Err` with the last status seen.
async fn converge(target: &Target, limit: Duration) -> Result<(), String> {
    let clusters: Api<EtcdCluster> = Api::namespaced(target.stack.client.clone(), NAMESPACE);
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(c) = clusters.get(CLUSTER).await {
            let size = c.spec.size;
            let s = c.status.unwrap_or_default();
            last = format!(
                "size {size}, phase {:?}, current {}, ready {}, members {:?}, operation {:?}",
                s.phase,
                s.current_size,
                s.ready_members,
                s.members.iter().map(|m| (&m.name, m.healthy, m.is_learner)).collect::<Vec<_>>(),
                s.operation.as_ref().map(|o| (&o.type_, &o.step))
            );
            if s.phase == ClusterPhase::Running
                && s.current_size == size
                && s.ready_members == size
                && s.operation.is_none()
                && s.members.len() == size as usize
                && s.members.iter().all(|m| m.healthy && !m.is_learner)
            {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

/// Some member's answer, retried for up to 30 s over every member.
async fn with_member<T, F, Fut>(target: &Target, mut call: F) -> Option<T>
where
    F: FnMut(etcd_client::Client) -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for endpoint in target.endpoints() {
            let Some(etcd) = connect(&endpoint, target.from).await else { continue };
            if let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_secs(3), call(etcd)).await {
                return Some(answer);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// The store's revision now.
async fn revision(target: &Target) -> i64 {
    with_member(target, |mut e| async move { e.get(PREFIX, None).await })
        .await
        .and_then(|r| r.header().map(|h| h.revision()))
        .expect("a member answers")
}

/// A write after every client stopped: the watchers stop once they have seen it.
async fn marker(target: &Target) -> i64 {
    let key = format!("{PREFIX}end");
    with_member(target, |mut e| {
        let key = key.clone();
        async move { e.put(key, "end", None).await }
    })
    .await
    .and_then(|r| r.header().map(|h| h.revision()))
    .unwrap_or(i64::MAX)
}

async fn appends_present(target: &Target) -> Result<BTreeSet<String>, String> {
    let options = || Some(etcd_client::GetOptions::new().with_prefix().with_keys_only());
    with_member(target, |mut e| async move { e.get(APPENDS, options()).await })
        .await
        .map(|r| r.kvs().iter().map(|kv| kv.key_str().unwrap_or_default().to_owned()).collect())
        .ok_or_else(|| "no member served the final read of the appends".to_owned())
}

/// Every backup taken during the faults ends (succeeded, or failed saying why) within a minute
/// of the convergence: a backup created just before the faults were healed may still be running.
async fn backups_settled(target: &Target) -> Vec<Anomaly> {
    const LIMIT: Duration = Duration::from_secs(60);
    let backups: Api<EtcdBackup> = Api::namespaced(target.stack.client.clone(), NAMESPACE);
    let deadline = Instant::now() + LIMIT;
    let mut found = Vec::new();
    for name in &target.backups {
        let phase = loop {
            let phase = backups.get(name).await.ok().and_then(|b| b.status).map(|s| s.phase);
            if matches!(phase, Some(BackupPhase::Succeeded | BackupPhase::Failed))
                || Instant::now() > deadline
            {
                break phase;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if !matches!(phase, Some(BackupPhase::Succeeded | BackupPhase::Failed)) {
            let last = format!("EtcdBackup {name} is {phase:?}");
            found.push(Anomaly::NotConverged { waited_secs: LIMIT.as_secs(), last });
        }
    }
    found
}

/// Judges the history, writes what a failed run keeps, and reports.
async fn finish(
    config: &Config,
    target: &Target,
    started: Instant,
    log: Log,
    history: History,
    mut anomalies: Vec<Anomaly>,
) -> RunReport {
    let dir = config.artifacts.join(format!("seed-{}", config.seed));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    let counts = Counts::of(&history);
    anomalies.extend(counts.vacuous(MIN_OPERATIONS, 3));
    let checking = Instant::now();
    anomalies.extend(check::history(&history, Duration::from_secs(180), Some(&dir.join("porcupine.html"))));
    let took = (started.elapsed(), checking.elapsed());
    let report = RunReport::new(config.seed, took, log.faults, counts, anomalies);
    if report.passed() && !config.keep_passing {
        let _ = std::fs::remove_dir_all(&dir);
        return report;
    }
    keep(&dir, target, &log.lines, &history, &report);
    report.with_artifacts(&dir)
}

fn keep(dir: &Path, target: &Target, log: &[String], history: &History, report: &RunReport) {
    let pretty = |v: serde_json::Result<String>| v.unwrap_or_default();
    let _ = std::fs::write(dir.join("run.log"), log.join("\n") + "\n");
    let _ = std::fs::write(dir.join("history.json"), pretty(serde_json::to_string_pretty(history)));
    let _ = std::fs::write(dir.join("report.json"), pretty(serde_json::to_string_pretty(report)));
    if let Err(e) = target.stack.keep_logs(dir) {
        eprintln!("could not keep the logs in {}: {e}", dir.display());
    }
}

/// `target/chaos` of this build (beside the binaries, wherever the command runs from): where
/// failed runs are kept unless told otherwise.
pub fn default_artifacts() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable");
    let dir = exe.parent().expect("its directory");
    let profile = if dir.ends_with("deps") { dir.parent().expect("the profile directory") } else { dir };
    profile.parent().unwrap_or(profile).join("chaos")
}
