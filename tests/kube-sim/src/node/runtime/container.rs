//! Starting a container: its program, environment and mounts, run inside the
//! pod's network namespace with a private mount and UTS namespace.
//!
//! The process is `setpriv --pdeathsig KILL ip netns exec <ns> unshare --uts sh -c <setup> sh <program>
//! <args>`: `ip netns exec` enters the network namespace, makes a private
//! mount namespace and bind-mounts `/etc/netns/<ns>/hosts` over
//! `/etc/hosts`; the setup script bind-mounts each volume at its mountPath,
//! sets the hostname, changes to the working directory and `exec`s the
//! program, so the pid we hold is the program's.

use std::{collections::HashMap, os::unix::process::CommandExt, path::Path, path::PathBuf, process::Stdio};

use serde_json::Value;

use super::{
    env::{PodFacts, environment, expand},
    images::{ImageTable, Program},
};
use crate::store::Txn;

/// Why a container could not be created (the waiting reason and message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateError {
    /// `ErrImagePull` or `CreateContainerConfigError`.
    pub reason: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Everything needed to start one container process.
#[derive(Clone, Debug)]
pub struct Launch {
    /// Program and arguments (after `$(VAR)` expansion).
    pub program: Program,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// (host path, mount path, read-only).
    pub mounts: Vec<(PathBuf, String, bool)>,
    /// Working directory.
    pub workdir: String,
    /// Hostname the process sees.
    pub hostname: String,
}

impl Launch {
    /// Resolves a container of a pod against the current objects.
    pub fn build(
        txn: &Txn<'_>,
        facts: &PodFacts<'_>,
        container: &Value,
        volumes: &HashMap<String, PathBuf>,
        images: &ImageTable,
    ) -> Result<Self, CreateError> {
        let config_error = |message: String| CreateError { reason: "CreateContainerConfigError", message };
        let env = environment(txn, facts, container).map_err(config_error)?;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(Value::as_str).map(|s| expand(s, &env)).collect()
        };
        let program = images
            .resolve(
                container["image"].as_str().unwrap_or_default(),
                &strings(&container["command"]),
                &strings(&container["args"]),
            )
            .map_err(|message| CreateError { reason: "ErrImagePull", message })?;
        let mut mounts = Vec::new();
        for m in container["volumeMounts"].as_array().into_iter().flatten() {
            let name = m["name"].as_str().unwrap_or_default();
            let source = volumes.get(name).ok_or_else(|| {
                config_error(format!("volumeMounts: volume {name:?} is not defined in the pod"))
            })?;
            let source = match m["subPath"].as_str().filter(|s| !s.is_empty()) {
                Some(sub) => {
                    let p = source.join(sub);
                    std::fs::create_dir_all(&p).map_err(|e| config_error(format!("subPath {sub}: {e}")))?;
                    p
                }
                None => source.clone(),
            };
            let target = m["mountPath"].as_str().unwrap_or_default().to_owned();
            mounts.push((source, target, m["readOnly"] == true));
        }
        let pod = facts.pod;
        if let Some(dir) = volumes.get(super::service_account::VOLUME) {
            mounts.push((dir.clone(), super::service_account::MOUNT_PATH.to_owned(), true));
        }
        Ok(Self {
            program,
            env,
            mounts,
            workdir: container["workingDir"].as_str().unwrap_or("/").to_owned(),
            hostname: pod["spec"]["hostname"]
                .as_str()
                .or(pod["metadata"]["name"].as_str())
                .unwrap_or("pod")
                .to_owned(),
        })
    }

    /// The setup script run before `exec`.
    fn script(&self) -> String {
        let mut s = String::from("set -e\n");
        for (source, target, read_only) in &self.mounts {
            let (src, dst) = (quote(&source.to_string_lossy()), quote(target));
            s.push_str(&format!("mkdir -p {dst}\nmount --bind {src} {dst}\n"));
            if *read_only {
                s.push_str(&format!("mount -o remount,bind,ro {dst}\n"));
            }
        }
        s.push_str(&format!(
            "hostname {}\ncd {}\nexec \"$@\"\n",
            quote(&self.hostname),
            quote(&self.workdir)
        ));
        s
    }

    /// Starts the process in `netns`, appending its output to `log`.
    pub fn spawn(&self, netns: &str, log: &Path) -> std::io::Result<tokio::process::Child> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        // setpriv: the process dies with kube-sim instead of outliving it.
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--", "ip", "netns", "exec", netns, "unshare", "--uts", "sh", "-c"])
            .arg(self.script())
            .arg("sh")
            .arg(&self.program.path)
            .args(&self.program.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        cmd.spawn()
    }
}

/// Waits until the process has `exec`ed the program, so that the container is
/// reported running only after its mounts, as a kubelet starts a container only
/// once its volumes are set up (an exec before that would see empty mount paths).
/// Until then every stage (setpriv, ip, unshare, sh) carries the setup script as
/// an argument; the program does not (an interpreter of a `#!` script has other
/// arguments than the ones given, so the program's own argv cannot be the test).
/// An empty command line is not an answer: the kernel shows one while an `exec` is under way
/// (the new image's arguments are not in place yet), and at every stage change there is such a
/// moment (CI saw the wait end there and an exec find an empty mount path).
/// Gives up when the process is gone (it failed or finished) or after `limit`.
pub async fn wait_for_program(pid: u32, launch: &Launch, limit: std::time::Duration) {
    let script = launch.script().into_bytes();
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        // A failed read is not an answer either unless the process is gone.
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let in_setup = argv.split(|b| *b == 0).any(|arg| arg == script.as_slice());
        if !in_setup && !argv.is_empty() || argv.is_empty() && exited(pid) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await
    }
}

/// The process has exited (a zombie not yet reaped, or gone).
fn exited(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    matches!(state, None | Some('Z' | 'X'))
}

/// Runs a command inside a running container's namespaces (exec probes, tests).
pub async fn exec_in(
    pid: u32,
    argv: &[String],
    timeout: std::time::Duration,
) -> Result<std::process::Output, String> {
    let mut cmd = tokio::process::Command::new("nsenter");
    cmd.arg("--target").arg(pid.to_string()).args(["--net", "--mount", "--uts", "--"]).args(argv);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(result) => result.map_err(|e| format!("exec {argv:?}: {e}")),
        Err(_) => Err(format!("exec {argv:?}: timed out after {timeout:?}")),
    }
}

pub use rustix::process::Signal;

/// Sends `signal` to a container's process group (gone already is fine).
pub fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Single-quotes a string for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_script_mounts_then_execs() {
        let l = Launch {
            program: Program { path: "/usr/bin/etcd".into(), args: vec![] },
            env: vec![],
            mounts: vec![
                ("/srv/pv/a b".into(), "/var/lib/etcd".into(), false),
                ("/srv/cfg".into(), "/etc/x".into(), true),
            ],
            workdir: "/".into(),
            hostname: "it's".into(),
        };
        let s = l.script();
        assert!(s.contains("mount --bind '/srv/pv/a b' '/var/lib/etcd'\n"), "{s}");
        assert!(s.contains("mount -o remount,bind,ro '/etc/x'\n"), "{s}");
        assert!(s.contains("hostname 'it'\\''s'\n"), "{s}");
        assert!(s.ends_with("exec \"$@\"\n"));
    }

    /// A process is exited when gone or a zombie; a running one, whatever its name, is not.
    #[test]
    fn exited_reads_the_state_after_the_name() {
        assert!(!exited(std::process::id()));
        let mut child = std::process::Command::new("sh").args(["-c", "exit 0"]).spawn().unwrap();
        let pid = child.id();
        while !exited(pid) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.wait().unwrap();
        assert!(exited(pid), "gone after it is reaped");
    }

    /// A container is running only once its volumes are mounted: an exec right
    /// after the wait sees what the volume holds (CI once saw an empty mount path).
    #[tokio::test]
    async fn the_program_runs_only_after_the_mounts() {
        let netns = format!("kube-sim-ut-{}", std::process::id());
        let ip = |args: &[&str]| std::process::Command::new("ip").args(args).status().unwrap();
        assert!(ip(&["netns", "add", &netns]).success());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "keep\n").unwrap();
        let target = format!("/tmp/kube-sim-ut-mount-{}", std::process::id());
        let l = Launch {
            program: Program { path: "sleep".into(), args: vec!["30".into()] },
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            mounts: vec![(dir.path().to_owned(), target.clone(), true)],
            workdir: "/".into(),
            hostname: "ut".into(),
        };
        let mut seen = Vec::new();
        for _ in 0..20 {
            let mut child = l.spawn(&netns, &dir.path().join("log")).unwrap();
            let pid = child.id().unwrap();
            wait_for_program(pid, &l, std::time::Duration::from_secs(10)).await;
            let argv = ["cat".to_owned(), format!("{target}/f")];
            let out = exec_in(pid, &argv, std::time::Duration::from_secs(10)).await.unwrap();
            child.kill().await.unwrap();
            seen.push(out);
        }
        ip(&["netns", "delete", &netns]);
        let _ = std::fs::remove_dir(&target);
        for out in seen {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "keep\n", "{out:?}");
        }
    }
}
