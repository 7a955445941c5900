//! Carrying faults out against a running stack, and healing every one of them.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use e2e_tests::Stack;
use etcd_operator_api::{EtcdBackup, EtcdCluster};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use kube_sim::node::HostCut;
use rand::{
    Rng, SeedableRng,
    rngs::StdRng,
    seq::{IndexedRandom, SliceRandom},
};

use super::{CONTROLLERS, Fault, Step};
use crate::workload::connect;

/// The stack a run's faults are applied to.
pub struct Target {
    /// The whole stack.
    pub stack: Stack,
    /// The cluster's namespace and name.
    pub namespace: String,
    pub cluster: String,
    /// Index of the cluster-service in the stack's processes.
    pub cluster_service: usize,
    /// Indices of each controller's replicas, by `CONTROLLERS` index.
    pub controllers: Vec<Vec<usize>>,
    /// The cluster-service's clock offset file.
    pub clock_file: PathBuf,
    /// The size last asked for.
    pub size: i32,
    /// EtcdBackups created.
    pub backups: Vec<String>,
    /// Where the workload's clients dial from (the faults' own etcd calls too).
    pub from: IpAddr,
    rng: StdRng,
}

impl Target {
    /// A target whose choices (which member, which cut) are drawn from `seed`.
    pub fn new(stack: Stack, namespace: &str, cluster: &str, seed: u64) -> Self {
        let from = IpAddr::V4(stack.node().clients_address());
        let clock_file = Self::clock_file(&stack);
        Self {
            stack,
            namespace: namespace.to_owned(),
            cluster: cluster.to_owned(),
            cluster_service: 0,
            controllers: Vec::new(),
            clock_file,
            size: 3,
            backups: Vec::new(),
            from,
            // Another stream than the schedule's, so a schedule change does not move every choice.
            rng: StdRng::seed_from_u64(seed.rotate_left(17) ^ 0x5eed),
        }
    }

    /// The cluster-service's clock offset file in `stack`'s directory.
    pub fn clock_file(stack: &Stack) -> PathBuf {
        stack.dir().join("cluster-service.clock-offset")
    }

    /// The members' client URLs now (every ordinal a pod runs at, up to 5).
    pub fn endpoints(&self) -> Vec<String> {
        self.members().into_iter().map(|(_, ip)| format!("http://{ip}:2379")).collect()
    }

    fn members(&self) -> Vec<(String, std::net::Ipv4Addr)> {
        let node = self.stack.node();
        (0..5)
            .map(|i| format!("{}-{i}", self.cluster))
            .filter_map(|p| node.pod_ip(&self.namespace, &p).ok().map(|ip| (p, ip)))
            .collect()
    }

    fn pick_member(&mut self) -> Option<String> {
        let members = self.members();
        members.choose(&mut self.rng).map(|(p, _)| p.clone())
    }

    /// The pod of the member that leads, as the members report it.
    async fn leader(&self) -> Option<String> {
        for (pod, ip) in self.members() {
            let Some(mut etcd) = connect(&format!("http://{ip}:2379"), self.from).await else { continue };
            let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(2), etcd.status()).await else {
                continue;
            };
            if status.header().is_some_and(|h| h.member_id() == status.leader()) {
                return Some(pod);
            }
        }
        None
    }

    /// Applies `step` (holding a held fault for its time, then healing it); says what was done.
    pub async fn apply(&mut self, step: &Step) -> String {
        let node = self.stack.node().clone();
        let ns = self.namespace.clone();
        match step.fault {
            Fault::KillMember | Fault::KillLeader => {
                let pod = if step.fault == Fault::KillLeader { self.leader().await } else { None };
                let Some(pod) = pod.or_else(|| self.pick_member()) else { return "no member to kill".into() };
                format!("SIGKILL etcd in {pod}: {:?}", node.crash(&ns, &pod, "etcd"))
            }
            Fault::PartitionMember | Fault::PartitionMinority => {
                let n = if step.fault == Fault::PartitionMember { 1 } else { ((self.size - 1) / 2).max(1) };
                let mut members: Vec<String> = self.members().into_iter().map(|(p, _)| p).collect();
                members.shuffle(&mut self.rng);
                members.truncate(n as usize);
                for pod in &members {
                    let _ = node.partition(&ns, pod);
                }
                tokio::time::sleep(step.hold).await;
                for pod in &members {
                    let _ = node.heal(&ns, pod);
                }
                format!("partitioned {members:?} for {:?}", step.hold)
            }
            Fault::CutOperator => {
                let cut = if self.rng.random_bool(0.5) { HostCut::Refuse } else { HostCut::Drop };
                let applied = node.cut_host_path(Some(cut));
                tokio::time::sleep(step.hold).await;
                let healed = node.cut_host_path(None);
                format!("operator cut off ({cut:?}) for {:?}: {applied:?} {healed:?}", step.hold)
            }
            Fault::DeletePod => {
                let Some(pod) = self.pick_member() else { return "no pod to delete".into() };
                let pods: Api<Pod> = Api::namespaced(self.stack.client.clone(), &ns);
                format!(
                    "deleted pod {pod}: {:?}",
                    pods.delete(&pod, &DeleteParams::default()).await.map(|_| ())
                )
            }
            Fault::LosePvc => self.lose_claim().await,
            Fault::KillClusterServiceMidStep => self.kill_cluster_service(step.hold).await,
            Fault::KillControllerLeader(i) => self.kill_controller_leader(i, step.hold).await,
            Fault::Scale => self.scale().await,
            Fault::Backup => self.backup().await,
            Fault::ClockStep(secs) => {
                let _ = std::fs::write(&self.clock_file, secs.to_string());
                tokio::time::sleep(step.hold).await;
                let _ = std::fs::write(&self.clock_file, "0");
                format!("cluster-service clock stepped {secs:+} s for {:?}", step.hold)
            }
        }
    }

    async fn lose_claim(&mut self) -> String {
        let Some(pod) = self.pick_member() else { return "no member to lose".into() };
        if let Err(why) = self.majority_keeps_its_data(&pod).await {
            return format!("skipped losing {pod}'s data: {why}");
        }
        let wiped = self.stack.node().wipe_pvc(&self.namespace, &format!("data-{pod}"));
        let pods: Api<Pod> = Api::namespaced(self.stack.client.clone(), &self.namespace);
        let deleted =
            pods.delete(&pod, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await;
        format!("{pod} lost its claim's data: {wiped:?}, pod deleted: {:?}", deleted.map(|_| ()))
    }

    /// Whether the voters whose data would still be intact after `victim` lost its own, as etcd
    /// reports them now (a member list and each voter's status), stay a majority. Beyond that
    /// etcd itself cannot keep acknowledged writes (campaign seed 86 lost 2 of 3 volumes within
    /// 12 s), and restoring a lost majority is an opt-in the quorum-loss tests cover.
    async fn majority_keeps_its_data(&self, victim: &str) -> Result<(), String> {
        let pods = self.members();
        let mut list = None;
        for (_, ip) in &pods {
            let Some(mut etcd) = connect(&format!("http://{ip}:2379"), self.from).await else { continue };
            if let Ok(Ok(l)) = tokio::time::timeout(Duration::from_secs(2), etcd.member_list()).await {
                list = Some(l);
                break;
            }
        }
        let list = list.ok_or("no member answers a member list")?;
        let voters: Vec<String> =
            list.members().iter().filter(|m| !m.is_learner()).map(|m| m.name().to_owned()).collect();
        let mut intact = 0;
        for (_, ip) in pods.iter().filter(|(p, _)| voters.contains(p) && p != victim) {
            let answers = match connect(&format!("http://{ip}:2379"), self.from).await {
                Some(mut etcd) => {
                    matches!(tokio::time::timeout(Duration::from_secs(2), etcd.status()).await, Ok(Ok(_)))
                }
                None => false,
            };
            intact += usize::from(answers);
        }
        let quorum = voters.len() / 2 + 1;
        if intact < quorum {
            return Err(format!(
                "{intact} other voters of {} answer: a majority's data would be lost",
                voters.len()
            ));
        }
        Ok(())
    }

    async fn operation_in_progress(&self) -> Option<String> {
        let clusters: Api<EtcdCluster> = Api::namespaced(self.stack.client.clone(), &self.namespace);
        let status = clusters.get(&self.cluster).await.ok()?.status?;
        status.operation.map(|o| format!("{} at {}", o.type_, o.step))
    }

    /// Starts a scale when nothing is in progress, waits for a step to be recorded, and kills
    /// the cluster-service in the middle of it.
    async fn kill_cluster_service(&mut self, down: Duration) -> String {
        let mut started = String::new();
        if self.operation_in_progress().await.is_none() {
            started = format!("{}; ", self.scale().await);
        }
        let mut during = None;
        for _ in 0..100 {
            during = self.operation_in_progress().await;
            if during.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(self.rng.random_range(0..1_500))).await;
        let during = self.operation_in_progress().await.or(during);
        let service = &mut self.stack.processes[self.cluster_service];
        service.crash().await;
        tokio::time::sleep(down).await;
        service.restart();
        let up = service.wait_up().await;
        format!("{started}SIGKILL cluster-service during {during:?}, down {down:?}, back: {up:?}")
    }

    async fn kill_controller_leader(&mut self, controller: usize, down: Duration) -> String {
        let mut leader = None;
        for &i in &self.controllers[controller] {
            if self.stack.processes[i].is_leader().await {
                leader = Some(i);
            }
        }
        let Some(i) = leader else { return format!("no {} controller led", CONTROLLERS[controller]) };
        let process = &mut self.stack.processes[i];
        process.crash().await;
        tokio::time::sleep(down).await;
        process.restart();
        let up = process.wait_up().await;
        format!("SIGKILL {} (leader), down {down:?}, back: {up:?}", process.name)
    }

    /// spec.size 3 → 5 or 5 → 3, not waiting.
    pub async fn scale(&mut self) -> String {
        self.size = if self.size == 3 { 5 } else { 3 };
        let clusters: Api<EtcdCluster> = Api::namespaced(self.stack.client.clone(), &self.namespace);
        let patch = serde_json::json!({"spec": {"size": self.size}});
        let done = clusters.patch(&self.cluster, &PatchParams::default(), &Patch::Merge(&patch)).await;
        format!("spec.size → {}: {:?}", self.size, done.map(|_| ()))
    }

    async fn backup(&mut self) -> String {
        let name = format!("chaos-{}", self.backups.len());
        let backup: EtcdBackup = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"clusterName": self.cluster, "storage": {"volume": {"claimName": "local", "path": "chaos"}}}
        }))
        .expect("an EtcdBackup");
        let backups: Api<EtcdBackup> = Api::namespaced(self.stack.client.clone(), &self.namespace);
        let created = backups.create(&PostParams::default(), &backup).await.map(|_| ());
        self.backups.push(name.clone());
        format!("EtcdBackup {name} created: {created:?}")
    }

    /// Heals whatever a step may have left: the operator's path, every partition, the clock,
    /// every crashed process.
    pub async fn heal_all(&mut self) {
        let node = self.stack.node().clone();
        let _ = node.cut_host_path(None);
        for i in 0..5 {
            let _ = node.heal(&self.namespace, &format!("{}-{i}", self.cluster));
        }
        let _ = std::fs::write(&self.clock_file, "0");
        for p in self.stack.processes.iter_mut().filter(|p| !p.running()) {
            p.restart();
            let _ = p.wait_up().await;
        }
    }
}
