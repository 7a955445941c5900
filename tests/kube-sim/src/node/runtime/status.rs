//! What the node knows about a pod's containers, and the pod status it
//! reports from that: phase, conditions (keeping lastTransitionTime while a
//! condition holds), container statuses, IPs.

use serde_json::{Value, json};

/// State of one container, as containerStatuses report it.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Not running: `ContainerCreating`, `CrashLoopBackOff`, `ErrImagePull`, ...
    Waiting { reason: String, message: String },
    /// Running since.
    Running { started_at: String },
    /// Exited.
    Terminated { exit_code: i32, reason: String, started_at: String, finished_at: String },
}

impl State {
    fn to_json(&self) -> Value {
        match self {
            Self::Waiting { reason, message } if message.is_empty() => json!({"waiting": {"reason": reason}}),
            Self::Waiting { reason, message } => json!({"waiting": {"reason": reason, "message": message}}),
            Self::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            Self::Terminated { exit_code, reason, started_at, finished_at } => json!({"terminated": {
                "exitCode": exit_code, "reason": reason, "startedAt": started_at, "finishedAt": finished_at}}),
        }
    }
}

/// One container as the node tracks it.
#[derive(Clone, Debug)]
pub struct ContainerRuntime {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Local program it runs (reported as imageID).
    pub program: String,
    /// Process id while running.
    pub pid: Option<u32>,
    /// Current state.
    pub state: State,
    /// Previous termination.
    pub last_state: Option<State>,
    /// Restarts so far.
    pub restart_count: u32,
    /// Readiness probe passing (or running without one).
    pub ready: bool,
    /// Startup probe passed (or running without one).
    pub started: bool,
}

impl ContainerRuntime {
    /// A container not started yet; restarts carried over from an earlier status.
    pub fn new(container: &Value, restart_count: u32) -> Self {
        Self {
            name: container["name"].as_str().unwrap_or_default().to_owned(),
            image: container["image"].as_str().unwrap_or_default().to_owned(),
            program: String::new(),
            pid: None,
            state: State::Waiting { reason: "ContainerCreating".into(), message: String::new() },
            last_state: None,
            restart_count,
            ready: false,
            started: false,
        }
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name, "image": self.image, "imageID": format!("kube-sim://{}", self.program),
            "ready": self.ready, "started": self.started, "restartCount": self.restart_count,
            "state": self.state.to_json(), "lastState": self.last_state.as_ref().map_or(json!({}), State::to_json),
        });
        if let Some(pid) = self.pid {
            v["containerID"] = json!(format!("kube-sim://{pid}"));
        }
        v
    }

    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }
}

/// Everything the node knows about one pod.
#[derive(Clone, Debug, Default)]
pub struct PodRuntime {
    /// Pod IP once the sandbox exists.
    pub pod_ip: Option<String>,
    /// The node's address.
    pub host_ip: String,
    /// When the node accepted the pod.
    pub start_time: String,
    /// Why the pod cannot start (volumes, sandbox), shown on the Pending pod.
    pub pending: Option<(String, String)>,
    /// Init containers done.
    pub initialized: bool,
    /// Init containers.
    pub init: Vec<ContainerRuntime>,
    /// App containers.
    pub containers: Vec<ContainerRuntime>,
    /// Terminal phase when the restart policy ends the pod.
    pub finished: Option<&'static str>,
    /// Set when the node went down: the pod is reported NotReady with this reason.
    pub node_down: bool,
    /// The pod's network namespace once created.
    pub sandbox: Option<crate::node::net::network::Sandbox>,
    /// Host directories of its volumes (PVC data is not collected while in use).
    pub volume_dirs: Vec<std::path::PathBuf>,
}

impl PodRuntime {
    /// The phase the pod is in.
    pub fn phase(&self) -> &'static str {
        if let Some(p) = self.finished {
            return p;
        }
        if !self.initialized || self.containers.iter().all(|c| c.restart_count == 0 && !c.running()) {
            return "Pending";
        }
        "Running"
    }

    /// The status object, given the one stored now (for transition times).
    pub fn status(&self, old: &Value, now: &str) -> Value {
        let ready = !self.node_down && self.containers.iter().all(|c| c.ready) && !self.containers.is_empty();
        let mut conditions = vec![
            condition(old, "PodScheduled", true, "", now),
            condition(
                old,
                "Initialized",
                self.initialized,
                if self.initialized { "" } else { "ContainersNotInitialized" },
                now,
            ),
            condition(old, "ContainersReady", ready, if ready { "" } else { "ContainersNotReady" }, now),
            condition(
                old,
                "Ready",
                ready,
                if self.node_down {
                    "NodeNotReady"
                } else if ready {
                    ""
                } else {
                    "ContainersNotReady"
                },
                now,
            ),
        ];
        if let Some((reason, _)) = &self.pending {
            conditions[1]["reason"] = json!(reason);
        }
        let mut status = json!({
            "phase": self.phase(),
            "conditions": conditions,
            "hostIP": self.host_ip, "hostIPs": [{"ip": self.host_ip}],
            "startTime": self.start_time,
            "qosClass": "BestEffort",
            "containerStatuses": self.containers.iter().map(ContainerRuntime::to_json).collect::<Vec<_>>(),
        });
        if !self.init.is_empty() {
            status["initContainerStatuses"] =
                json!(self.init.iter().map(ContainerRuntime::to_json).collect::<Vec<_>>());
        }
        if let Some(ip) = &self.pod_ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        if let Some((reason, message)) = &self.pending {
            status["reason"] = json!(reason);
            status["message"] = json!(message);
        }
        status
    }
}

/// A condition, keeping the old lastTransitionTime while its status is unchanged.
fn condition(old: &Value, type_: &str, ok: bool, reason: &str, now: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let previous = old["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == type_);
    let since =
        previous.filter(|c| c["status"] == status).map_or(now.into(), |c| c["lastTransitionTime"].clone());
    let mut c = json!({"type": type_, "status": status, "lastTransitionTime": since, "lastProbeTime": null});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> PodRuntime {
        PodRuntime {
            host_ip: "10.244.0.1".into(),
            start_time: "t0".into(),
            initialized: true,
            containers: vec![ContainerRuntime::new(&json!({"name": "etcd", "image": "etcd"}), 0)],
            ..PodRuntime::default()
        }
    }

    #[test]
    fn pending_until_a_container_runs_then_ready_when_its_probe_passes() {
        let mut rt = runtime();
        assert_eq!(rt.phase(), "Pending");
        rt.containers[0].state = State::Running { started_at: "t1".into() };
        rt.pod_ip = Some("10.244.0.2".into());
        let s = rt.status(&Value::Null, "t1");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.244.0.2");
        assert_eq!(s["conditions"][3]["status"], "False");
        rt.containers[0].ready = true;
        let ready = rt.status(&s, "t2");
        assert_eq!(ready["conditions"][3]["status"], "True");
        assert_eq!(ready["conditions"][3]["lastTransitionTime"], "t2");
        // Unchanged conditions keep their transition time.
        assert_eq!(ready["conditions"][0]["lastTransitionTime"], "t1");
        assert_eq!(rt.status(&ready, "t3"), ready);
    }

    #[test]
    fn node_down_makes_the_pod_not_ready_with_that_reason() {
        let mut rt = runtime();
        rt.containers[0].ready = true;
        rt.node_down = true;
        let s = rt.status(&Value::Null, "t");
        assert_eq!(s["conditions"][3]["reason"], "NodeNotReady");
    }
}
