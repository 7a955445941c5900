//! The CLI end to end: the real `etcdopctl` and `kubectl-etcd` binaries against the
//! cluster-service over TLS, authenticated with a token Kubernetes issues for the kubeconfig's
//! user (a TokenRequest), with the controllers running a real etcd cluster on kube-sim. Table
//! and JSON output are pinned by snapshots; a scale follows the status step by step; refusals
//! and a bad kubeconfig are one line with their documented exit codes.

use std::{process::Stdio, time::Duration};

use e2e_tests::{
    Stack,
    cli::{Cli, TOOLING, tooling_may},
    eventually,
    process::binary,
};
use etcd_operator_api::{EtcdCluster, cluster::ClusterPhase};
use kube::Api;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

const CLUSTER: &str = e2e_tests::ONE_MEMBER_DEMO;

/// An account with no grant at all.
const NOBODY: &str = "apiVersion: v1
kind: ServiceAccount
metadata:
  name: nobody
  namespace: default
";

async fn running(stack: &Stack, size: i32) -> bool {
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    let Some(s) = clusters.get("demo").await.ok().and_then(|c| c.status) else { return false };
    s.phase == ClusterPhase::Running && s.ready_members == size && s.operation.is_none()
}

/// The cluster's generation and size: what a refused call must leave as it was.
async fn spec_of(stack: &Stack) -> (Option<i64>, i32) {
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    let cluster = clusters.get("demo").await.expect("the cluster");
    (cluster.metadata.generation, cluster.spec.size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_shows_and_scales_a_cluster_and_refuses_in_one_line() {
    let mut stack = Stack::start("the_cli_lists_shows_and_scales_a_cluster_and_refuses_in_one_line").await;
    let server = stack.start_cluster_service("cluster-service-0", &[]).await;
    for kind in ["lifecycle", "scaling", "health", "backup"] {
        stack.start_controller(kind, &format!("{kind}-a"), &server, &[]).await;
    }
    stack.kubectl_apply(TOOLING);
    stack.kubectl_apply(NOBODY);
    stack.kubectl_apply(CLUSTER);
    eventually("a running 1-member cluster", Duration::from_secs(60), || running(&stack, 1)).await;
    let cli = Cli { stack: &stack, server };

    insta::assert_snapshot!("list", cli.ok(&["list"]));
    let plugin = cli.run_as(&binary("kubectl-etcd"), &["list"]);
    assert_eq!(String::from_utf8_lossy(&plugin.stdout), cli.ok(&["list"]), "the plugin is the same tool");
    let status: serde_json::Value = serde_json::from_str(&cli.ok(&["status", "demo", "-o", "json"])).unwrap();
    insta::assert_json_snapshot!("status_json", status, {
        ".clusterId" => "[id]",
        ".members[].id" => "[id]",
        ".members[].dbSizeBytes" => "[bytes]",
        ".members[].revision" => "[revision]",
        ".conditions" => "[conditions]",
    });

    // A scale follows the status step by step (one line each without a terminal).
    let out = cli.run(&["scale", "demo", "3"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scale: {stderr}");
    assert_eq!(stdout, "scale default/demo to 3: 3 of 3 members ready\n");
    assert!(
        stderr.contains("scale default/demo to 3: Updating: ScaleUp") && stderr.contains("demo-2"),
        "{stderr}"
    );
    assert!(running(&stack, 3).await);
    let status: serde_json::Value = serde_json::from_str(&cli.ok(&["status", "demo", "-o", "json"])).unwrap();
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3), "{status}");

    interrupted_and_watched(&cli, &stack).await;
    maintenance(&cli, &stack).await;

    // Refusals: the field and the rule, the cluster, the caller; each its exit code.
    let spec_before = spec_of(&stack).await;
    let (code, line) = cli.fails(&["scale", "demo", "10"]);
    assert_eq!(code, 6, "{line}");
    assert!(line.contains("spec.size"), "{line}");
    let (code, line) = cli.fails(&["status", "nosuch"]);
    assert_eq!(code, 5, "{line}");
    assert!(line.contains("nosuch"), "{line}");
    let (code, line) = cli.fails(&["--service-account", "nobody", "scale", "demo", "2"]);
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("system:serviceaccount:default:nobody"), "{line}");
    // The tooling Role grants the scale subresource, not the object: an upgrade is refused.
    let (code, line) = cli.fails(&["upgrade", "demo", "3.4.24", "--no-wait"]);
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("update etcdclusters"), "{line}");
    assert_eq!(spec_of(&stack).await, spec_before, "nothing changed");
    // The restart's end moved the claims' retention back to the spec's: the status may say
    // Updating until the StatefulSet controller has seen that (observedGeneration).
    eventually("the cluster running 4 members", Duration::from_secs(30), || running(&stack, 4)).await;

    // A bad kubeconfig, no server: one line, exit 7, before anything is called.
    let bad = stack.dir().join("bad-kubeconfig");
    std::fs::write(&bad, "apiVersion: v1\nkind: Config\nclusters: [oops\n").unwrap();
    let (code, line) = cli.fails(&["--kubeconfig", bad.to_str().unwrap(), "list"]);
    assert_eq!(code, 7, "{line}");
    assert!(line.contains("--kubeconfig"), "{line}");
    let (code, line) = cli.fails(&["--server", "", "list"]);
    assert_eq!(code, 7, "{line}");

    let completion = cli.ok(&["completion", "bash"]);
    assert!(completion.contains("etcdopctl") && completion.contains("replace-member"), "{completion}");
}

/// Reads `from` until a line contains `text`; the lines read.
async fn until_line(from: impl AsyncRead + Unpin, text: &str) -> String {
    let mut lines = BufReader::new(from).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("readable") {
            seen += &format!("{line}\n");
            if line.contains(text) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no line with {text:?} in 60 s: {seen}");
    seen
}

fn interrupt(child: &tokio::process::Child) {
    let pid = rustix::process::Pid::from_raw(child.id().expect("running") as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT sent");
}

/// `--watch` ends normally on Ctrl-C; a change followed ends with 130 and goes on without it.
async fn interrupted_and_watched(cli: &Cli<'_>, stack: &Stack) {
    let spawn = |args: &[&str]| {
        tokio::process::Command::from(cli.command(&binary("etcdopctl"), args))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcdopctl starts")
    };
    let mut watch = spawn(&["status", "demo", "--watch"]);
    until_line(watch.stdout.take().unwrap(), "Phase:      Running").await;
    interrupt(&watch);
    assert_eq!(watch.wait().await.unwrap().code(), Some(0), "Ctrl-C ends a watch normally");

    let mut scale = spawn(&["scale", "demo", "4"]);
    let mut stderr = scale.stderr.take().unwrap();
    until_line(&mut stderr, "ScaleUp").await;
    interrupt(&scale);
    let said = until_line(&mut stderr, "stopped following").await;
    assert!(
        said.contains(
            "goes on in the operator. Follow it again with: etcdopctl status demo -n default --watch"
        ),
        "{said}"
    );
    assert_eq!(scale.wait().await.unwrap().code(), Some(130));
    eventually("the scale to 4 goes on", Duration::from_secs(120), || running(stack, 4)).await;
}

/// Defragmentation, a member replaced, certificates, stop and restart, each followed to its end.
async fn maintenance(cli: &Cli<'_>, stack: &Stack) {
    let defrag = cli.ok(&["defrag", "demo"]);
    assert_eq!(defrag.lines().count(), 4, "{defrag}");
    assert!(defrag.lines().all(|l| l.starts_with("demo-") && l.contains(" -> ")), "{defrag}");

    let id_of_demo_3 = || {
        let status: serde_json::Value =
            serde_json::from_str(&cli.ok(&["status", "demo", "-o", "json"])).unwrap();
        let members = status["members"].as_array().cloned().unwrap_or_default();
        members.into_iter().find(|m| m["name"] == "demo-3").map(|m| m["id"].to_string())
    };
    let before = id_of_demo_3();
    let replaced = cli.ok(&["replace-member", "demo", "demo-3"]);
    assert_eq!(replaced, "replace demo-3 of default/demo: demo-3 is a healthy voter again\n");
    assert!(running(stack, 4).await);
    let after = id_of_demo_3();
    assert!(before.is_some() && after.is_some() && before != after, "a new member: {before:?} -> {after:?}");

    assert_eq!(cli.ok(&["certs", "demo"]), "no TLS: the cluster has no spec.tls\n");
    backup_and_restore(cli, stack).await;
    let (code, line) = cli.fails(&["restart", "demo", "--size", "4"]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("not Stopped"), "{line}");
    assert_eq!(cli.ok(&["stop", "demo"]), "stop default/demo: stopped, data kept\n");
    assert_eq!(
        cli.ok(&["restart", "demo", "--size", "4"]),
        "scale default/demo to 4: 4 of 4 members ready\n"
    );
}

/// A backup now (followed to the verified copy), listed and shown, then restored into a new
/// cluster that holds what was written before it.
async fn backup_and_restore(cli: &Cli<'_>, stack: &Stack) {
    let ip = stack.node().pod_ip("default", "demo-0").unwrap();
    let mut etcd = etcd_client::Client::connect([format!("http://{ip}:2379")], None).await.unwrap();
    etcd.put("cli/before-backup", "kept", None).await.unwrap();

    let out =
        cli.ok(&["backup", "now", "demo", "--claim", "local", "--name", "demo-cli", "--wait-timeout", "120"]);
    assert!(out.starts_with("backup default/demo-cli of demo: Succeeded at revision "), "{out}");
    let list = cli.ok(&["backup", "list", "demo"]);
    assert!(
        list.starts_with("NAME")
            && list.lines().any(|l| l.starts_with("demo-cli") && l.contains("Succeeded")),
        "{list}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&cli.ok(&["backup", "show", "demo-cli", "-o", "json"])).unwrap();
    assert_eq!(
        (shown["phase"].as_str(), shown["cluster"].as_str()),
        (Some("Succeeded"), Some("demo")),
        "{shown}"
    );
    assert_eq!(shown["sha256"].as_str().map(str::len), Some(64), "{shown}");
    let (code, line) = cli.fails(&["backup", "show", "nosuch"]);
    assert_eq!(code, 5, "{line}");

    // Creating a cluster needs its own grant.
    let restore = [
        "restore",
        "copy",
        "--from-backup",
        "demo-cli",
        "--size",
        "1",
        "--etcd-version",
        "3.4.23",
        "--storage-size",
        "1Gi",
    ];
    let (code, line) = cli.fails(&restore);
    assert_eq!(code, 4, "{line}");
    stack.kubectl_apply(&tooling_may("restorer", "create"));
    eventually("the grant is seen", Duration::from_secs(30), || async {
        let out = cli.run(&restore);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success() || stderr.contains("PermissionDenied"), "restore: {stderr}");
        out.status.success()
            && String::from_utf8_lossy(&out.stdout)
                == "restore default/copy from backup demo-cli: 1 of 1 members ready\n"
    })
    .await;
    let ip = stack.node().pod_ip("default", "copy-0").unwrap();
    let mut copy = etcd_client::Client::connect([format!("http://{ip}:2379")], None).await.unwrap();
    let got = copy.get("cli/before-backup", None).await.unwrap();
    assert_eq!(
        got.kvs().first().map(|kv| kv.value()),
        Some(&b"kept"[..]),
        "the restored cluster holds the write"
    );
}
