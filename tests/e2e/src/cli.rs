//! The real `etcdopctl` (and `kubectl-etcd`) binaries run against a stack's cluster-service,
//! authenticated as the kubeconfig's user would be (a TokenRequest for the tooling account).

use std::{path::Path, process::Output};

use crate::{Stack, process::binary};

/// The CLI's account: reads clusters and changes their size, nothing else (the README's
/// example tooling Role).
pub const TOOLING: &str = include_str!("../../../examples/api-tooling.yaml");

/// A Role and its RoleBinding that let the tooling account `verb` EtcdClusters too, named
/// `etcd-<role>` (what the README's tooling Role leaves out: `create` for a restore, `update`
/// for the rest of the spec).
pub fn tooling_may(role: &str, verb: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: etcd-{role}
  namespace: default
rules:
  - apiGroups: [etcd.operator.dev]
    resources: [etcdclusters]
    verbs: [{verb}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: etcd-{role}
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: etcd-{role}
subjects:
  - kind: ServiceAccount
    name: etcd-tooling
    namespace: default
"
    )
}

/// etcdopctl as a user of `stack` runs it, against the cluster-service at `server`.
pub struct Cli<'a> {
    pub stack: &'a Stack,
    pub server: String,
}

impl Cli<'_> {
    /// Runs `program` (etcdopctl or the kubectl plugin) to its end.
    pub fn run_as(&self, program: &Path, args: &[&str]) -> Output {
        self.command(program, args).output().expect("etcdopctl runs")
    }

    /// The command, ready to run or to spawn.
    pub fn command(&self, program: &Path, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .env("KUBECONFIG", &self.stack.sim.kubeconfig)
            .env("ETCDOPCTL_SERVER", &self.server)
            .env("HOME", self.stack.dir())
            .env_remove("ETCDOPCTL_TOKEN");
        command
    }

    /// Runs etcdopctl to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_as(&binary("etcdopctl"), args)
    }

    /// Runs a command that must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "etcdopctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that must fail: its exit code and its one line of stderr.
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        assert!(
            !out.status.success(),
            "etcdopctl {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        (out.status.code().unwrap_or(-1), stderr)
    }
}
