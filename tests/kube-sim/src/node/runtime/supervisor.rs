//! One container's life: create, run with its probes, stop gracefully,
//! restart per the pod's restart policy with exponential back-off.

use std::{
    os::unix::process::ExitStatusExt,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::sync::mpsc;

use super::{
    container::{self, Launch, Signal, signal},
    env::PodFacts,
    pod::{Outcome, PodCtx, Slot},
    probes::{ProbeSpec, attempt},
    status::{ContainerRuntime, State},
};
use crate::objects::now;

impl PodCtx {
    /// The address the kubelet's probes come from.
    fn probe_from(&self) -> Option<std::net::Ipv4Addr> {
        Some(self.node.network.kubelet_address())
    }

    /// Changes a container's record and wakes the status writer.
    pub fn update(&self, slot: Slot, f: impl FnOnce(&mut ContainerRuntime)) {
        let mut rt = self.rt.lock().unwrap();
        let c = match slot {
            Slot::Init(i) => &mut rt.init[i],
            Slot::Main(i) => &mut rt.containers[i],
        };
        f(c);
        drop(rt);
        self.changed.notify_one();
    }

    /// Runs a container once; probes only for app containers.
    pub async fn run_once(&self, slot: Slot, container: &Value) -> Outcome {
        let facts = PodFacts {
            pod: &self.pod,
            pod_ip: self.pod_ip.to_string(),
            host_ip: self.node.host_ip(),
            api_port: self.node.api_port,
        };
        let launch = self
            .node
            .api
            .store
            .read(|txn| Launch::build(txn, &facts, container, &self.volumes, &self.node.config.images));
        let launch = match launch {
            Ok(l) => l,
            Err(e) => {
                self.update(slot, |c| {
                    c.state = State::Waiting { reason: e.reason.into(), message: e.message }
                });
                return Outcome::NotCreated;
            }
        };
        let name = container["name"].as_str().unwrap_or_default();
        let mut child = match launch.spawn(&self.netns, &self.log_dir.join(format!("{name}.log"))) {
            Ok(c) => c,
            Err(e) => {
                let message = format!("{}: {e}", launch.program.path.display());
                self.update(slot, |c| {
                    c.state = State::Waiting { reason: "RunContainerError".into(), message }
                });
                return Outcome::NotCreated;
            }
        };
        let pid = child.id().unwrap_or_default();
        container::wait_for_program(pid, &launch, Duration::from_secs(10)).await;
        let started_at = now();
        let began = Instant::now();
        let main = matches!(slot, Slot::Main(_));
        let max = self.node.config.max_probe_period;
        let readiness = ProbeSpec::parse(&container["readinessProbe"], max).filter(|_| main);
        let liveness = ProbeSpec::parse(&container["livenessProbe"], max).filter(|_| main);
        let startup = ProbeSpec::parse(&container["startupProbe"], max).filter(|_| main);
        self.update(slot, |c| {
            c.pid = Some(pid);
            c.program = launch.program.path.display().to_string();
            c.state = State::Running { started_at: started_at.clone() };
            c.ready = readiness.is_none();
            c.started = startup.is_none();
        });
        let (kill_tx, mut kill_rx) = mpsc::channel::<String>(1);
        let probes = tokio::spawn(self.clone().probe(
            slot,
            container.clone(),
            pid,
            [startup, readiness, liveness],
            kill_tx,
        ));
        let mut term = self.term.clone();
        let (status, terminating) = tokio::select! {
            s = child.wait() => (s.ok(), false),
            Some(why) = kill_rx.recv() => {
                tracing::info!(pod = %self.name(), container = name, "killing: {why}");
                (self.stop(&mut child, pid, self.grace()).await, false)
            }
            grace = async { term.wait_for(Option::is_some).await.map(|g| g.unwrap_or_default()).unwrap_or_default() } => {
                (self.stop(&mut child, pid, grace).await, true)
            }
        };
        probes.abort();
        let code = status.map_or(137, |s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9)));
        self.update(slot, |c| {
            c.pid = None;
            c.ready = false;
            c.state = State::Terminated {
                exit_code: code,
                reason: if code == 0 { "Completed" } else { "Error" }.into(),
                started_at,
                finished_at: now(),
            };
        });
        if terminating { Outcome::Terminating } else { Outcome::Exited { code, ran: began.elapsed() } }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    async fn stop(
        &self,
        child: &mut tokio::process::Child,
        pid: u32,
        grace: Duration,
    ) -> Option<std::process::ExitStatus> {
        signal(pid, Signal::TERM);
        if let Ok(s) = tokio::time::timeout(grace, child.wait()).await {
            return s.ok();
        }
        signal(pid, Signal::KILL);
        child.wait().await.ok()
    }

    /// The pod's termination grace period.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap_or(30))
    }

    /// Sleeps unless the pod is deleted first (then returns true).
    pub async fn sleep_or_terminate(&self, d: Duration) -> bool {
        let mut term = self.term.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = term.wait_for(Option::is_some) => true,
        }
    }

    /// An app container for the pod's life: restarts per `restartPolicy` with back-off.
    pub async fn supervise(&self, index: usize, container: Value) {
        let policy = self.pod["spec"]["restartPolicy"].as_str().unwrap_or("Always").to_owned();
        let (base, max) = self.node.config.restart_backoff;
        let mut backoff = base;
        loop {
            match self.run_once(Slot::Main(index), &container).await {
                Outcome::Terminating => return,
                Outcome::Exited { code, ran } => {
                    if !(policy == "Always" || (policy == "OnFailure" && code != 0)) {
                        return;
                    }
                    if ran > max * 2 {
                        backoff = base;
                    }
                    let message = format!("back-off {backoff:?} restarting failed container");
                    self.update(Slot::Main(index), |c| {
                        c.restart_count += 1;
                        c.last_state = Some(c.state.clone());
                        c.state = State::Waiting { reason: "CrashLoopBackOff".into(), message };
                    });
                }
                Outcome::NotCreated => {}
            }
            if self.sleep_or_terminate(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(max);
        }
    }

    /// Startup, then readiness and liveness, until aborted; a failing startup or liveness probe asks for a kill.
    async fn probe(
        self,
        slot: Slot,
        container: Value,
        pid: u32,
        specs: [Option<ProbeSpec>; 3],
        kill: mpsc::Sender<String>,
    ) {
        let [startup, readiness, liveness] = specs;
        if let Some(spec) = startup {
            match self.probe_until(&spec, &container, pid, true).await {
                Ok(()) => self.update(slot, |c| c.started = true),
                Err(e) => {
                    let _ = kill.send(format!("startup probe failed: {e}")).await;
                    return;
                }
            }
        }
        // Both run until this task is aborted when the container exits.
        let ready = async {
            let Some(spec) = readiness else { return };
            tokio::time::sleep(spec.initial_delay).await;
            let (mut ok, mut bad) = (0, 0);
            loop {
                match attempt(&spec, self.probe_from(), self.pod_ip, &container, pid).await {
                    Ok(()) => (ok, bad) = (ok + 1, 0),
                    Err(_) => (ok, bad) = (0, bad + 1),
                }
                if ok == spec.success_threshold {
                    self.update(slot, |c| c.ready = true);
                }
                if bad == spec.failure_threshold {
                    self.update(slot, |c| c.ready = false);
                }
                tokio::time::sleep(spec.period).await;
            }
        };
        let alive = async {
            if let Some(spec) = liveness
                && let Err(e) = self.probe_until(&spec, &container, pid, false).await
            {
                let _ = kill.send(format!("liveness probe failed: {e}")).await;
            }
        };
        tokio::join!(ready, alive);
    }

    /// Probes until `failure_threshold` consecutive failures (Err), or for startup probes the first pass (Ok).
    async fn probe_until(
        &self,
        spec: &ProbeSpec,
        container: &Value,
        pid: u32,
        until_success: bool,
    ) -> Result<(), String> {
        tokio::time::sleep(spec.initial_delay).await;
        let mut bad = 0;
        loop {
            match attempt(spec, self.probe_from(), self.pod_ip, container, pid).await {
                Ok(()) if until_success => return Ok(()),
                Ok(()) => bad = 0,
                Err(e) => {
                    bad += 1;
                    if bad >= spec.failure_threshold {
                        return Err(e);
                    }
                }
            }
            tokio::time::sleep(spec.period).await;
        }
    }
}
