//! The operator's binaries as OS processes, started as they would be in a
//! pod: with their real flags, a kubeconfig, an identity, and the node's
//! cluster DNS (the hosts file bind-mounted over `/etc/hosts` in a private
//! mount namespace, like a pod with `dnsPolicy: ClusterFirstWithHostNet`).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use process_harness::{free_port, http_get};
use tokio::process::{Child, Command};

/// Path of a workspace binary, built next to this test (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let path = system_tests::operator_binary(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// One running operator process.
pub struct OperatorProcess {
    /// Name for logs (`lifecycle-a`, `cluster-service`...).
    pub name: String,
    /// Admin endpoint (`127.0.0.1:port`): /healthz, /readyz, /metrics.
    pub admin: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Option<Child>,
    /// How it was started, to start it again after a crash.
    launch: Relaunch,
}

/// The owned parts of a [`Launch`], kept for [`OperatorProcess::restart`].
struct Relaunch {
    binary: String,
    args: Vec<String>,
    kubeconfig: PathBuf,
    hosts: PathBuf,
    env: Vec<(String, String)>,
}

/// How to start one.
pub struct Launch<'a> {
    /// Name for logs and the identity (`POD_NAME`).
    pub name: &'a str,
    /// Workspace binary.
    pub binary: &'a str,
    /// Flags besides `--admin-listen`.
    pub args: Vec<String>,
    /// Kubeconfig it uses.
    pub kubeconfig: &'a Path,
    /// Hosts file with the cluster's DNS names.
    pub hosts: &'a Path,
    /// Directory for the log file.
    pub log_dir: &'a Path,
    /// More environment variables (a fault campaign's clock offset file).
    pub env: Vec<(String, String)>,
}

impl OperatorProcess {
    /// Starts the process; it is killed when this value is dropped.
    pub fn start(l: Launch<'_>) -> Self {
        let admin = format!("127.0.0.1:{}", free_port());
        let log = l.log_dir.join(format!("{}.log", l.name));
        let launch = Relaunch {
            binary: l.binary.to_owned(),
            args: l.args,
            kubeconfig: l.kubeconfig.to_owned(),
            hosts: l.hosts.to_owned(),
            env: l.env,
        };
        let child = spawn(l.name, &admin, &log, &launch);
        Self { name: l.name.to_owned(), admin, log, child: Some(child), launch }
    }

    /// Starts it again after [`OperatorProcess::crash`], with the same flags and admin port (its
    /// log goes on in the same file).
    pub fn restart(&mut self) {
        if self.child.is_none() {
            self.child = Some(spawn(&self.name, &self.admin, &self.log, &self.launch));
        }
    }

    /// Its process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether it is running (not crashed by a test).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Waits until `/healthz` answers; `Err` when it exits first or does not answer in time.
    pub async fn wait_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&self.admin, "/healthz").await.is_none_or(|(code, _)| code != 200) {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("{} exited ({status}) before answering /healthz: {log}", self.name));
            }
            if Instant::now() > deadline {
                return Err(format!("{} never answered /healthz; see {}", self.name, self.log.display()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Whether it exited because a port it was given was taken meanwhile (ports are picked free
    /// and bound later by the process, so a concurrent test can take one in between).
    pub fn lost_its_port(why: &str) -> bool {
        why.contains("Address already in use")
    }

    /// The Prometheus metrics text (empty when it does not answer).
    pub async fn metrics(&self) -> String {
        http_get(&self.admin, "/metrics").await.map(|(_, body)| body).unwrap_or_default()
    }

    /// Whether it currently holds its controller's lease (from its `etcd_operator_leader` gauge).
    pub async fn is_leader(&self) -> bool {
        self.metrics().await.lines().any(|l| l.starts_with("etcd_operator_leader") && l.ends_with(" 1"))
    }

    /// Kills it at once (a crash); its lease is left to expire.
    pub async fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGTERM and wait for the exit status.
    pub async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = rustix::process::Pid::from_raw(child.id()? as i32)?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        tokio::time::timeout(Duration::from_secs(20), child.wait()).await.ok()?.ok()
    }
}

fn spawn(name: &str, admin: &str, log: &Path, l: &Relaunch) -> Child {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    Command::new("unshare")
        .args(["--mount", "sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\""])
        .arg(&l.hosts)
        .arg(binary(&l.binary))
        .args(&l.args)
        .arg(format!("--admin-listen={admin}"))
        .env("KUBECONFIG", &l.kubeconfig)
        .env("POD_NAME", name)
        // As the chart sets it: the controllers' Leases live in the operator's namespace.
        .env("POD_NAMESPACE", crate::OPERATOR_NAMESPACE)
        .env("RUST_LOG", "info")
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", l.binary))
}
