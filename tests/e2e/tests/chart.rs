//! The Helm chart end to end: its rendered objects (Helm's own engine, through
//! `scripts/chart.py render`) are applied to kube-sim with kubectl, and
//! kube-sim's Deployment controller and node run the operator as the chart
//! describes it — each process a pod of its Deployment with exactly the
//! chart's command, arguments, environment, volumes and probes, reaching the
//! API server through the `kubernetes` Service with its service account
//! files, and the cluster-service through its Service's DNS name. The sample
//! cluster then comes up, and each controller's Lease is held by its pod.

use std::time::Duration;

use e2e_tests::{Stack, eventually};
use etcd_operator_api::{EtcdBackup, EtcdCluster, backup::BackupPhase, cluster::ClusterPhase};
use k8s_openapi::api::{apps::v1::Deployment, coordination::v1::Lease, core::v1::Pod};
use kube::{Api, api::ListParams};

const CLUSTER: &str = include_str!("../../../examples/local-etcdcluster.yaml");
use e2e_tests::OPERATOR_NAMESPACE as NAMESPACE;

/// The chart rendered for namespace `etcd-operator` (CRDs left out: the stack installed them).
fn rendered(values: &serde_json::Value) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/chart.py"))
        .args(["render", "--no-crds", "--namespace", NAMESPACE, "--set-json", &values.to_string()])
        .output()
        .expect("python3 runs (scripts/setup.sh installs helm-python-sdk)");
    assert!(out.status.success(), "chart render: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_and_runs_the_operator_as_pods() {
    let stack = Stack::start("chart").await;
    // One replica each (2 cores); the lifecycle and health probe quickly so the test is short.
    let values = serde_json::json!({
        "clusterService": {"replicas": 1, "replaceAfter": "5s", "backupClaims": [{"claim": "backups", "namespace": "default"}]},
        "controllers": {
            "lifecycle": {"replicas": 1}, "scaling": {"replicas": 1}, "backup": {"replicas": 1},
            "health": {"replicas": 1, "probeInterval": "2s"}, "recovery": {"replicas": 1, "probeInterval": "5s"}
        },
        "leaderElection": {"leaseDuration": "6s", "renewGrace": "2s"}
    });
    // The claim the cluster-service mounts for volume backups.
    let namespace = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: backups\n  namespace: {NAMESPACE}\nspec:\n  accessModes: [ReadWriteMany]\n  resources:\n    requests:\n      storage: 1Gi\n---\n"
    );
    let chart = rendered(&values);
    let applied = stack.kubectl_apply(&(namespace + &chart));
    assert!(applied.contains("deployment.apps/etcd-operator-cluster-service created"), "{applied}");
    assert!(
        applied.contains("clusterrole.rbac.authorization.k8s.io/etcd-operator-lifecycle-controller created"),
        "{applied}"
    );

    let deployments: Api<Deployment> = Api::namespaced(stack.client.clone(), NAMESPACE);
    let seen = std::sync::Mutex::new(String::new());
    // Seconds when idle; generous for 2 busy cores. (The backup controller once stayed unready
    // here for good: see "kube-runtime's Store::wait_until_ready" in docs/architecture.md.)
    eventually("every Deployment of the chart available", Duration::from_secs(120), || async {
        let list = deployments.list(&ListParams::default()).await.unwrap().items;
        // Each new state once: a timeout shows which Deployment was not available.
        let now: Vec<String> = list
            .iter()
            .map(|d| {
                let available = d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
                format!("{}={available}", d.metadata.name.as_deref().unwrap_or_default())
            })
            .collect();
        // And each pod's readiness and restarts, to tell a slow start from a pod dropping out.
        let pods = Api::<Pod>::namespaced(stack.client.clone(), NAMESPACE);
        let pods_list = pods.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
        let pods: Vec<String> = pods_list
            .iter()
            .map(|p| {
                let status = p.status.clone().unwrap_or_default();
                let ready =
                    status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
                let restarts: i32 = status.container_statuses.iter().flatten().map(|c| c.restart_count).sum();
                format!("{}:{}/{restarts}", p.metadata.name.as_deref().unwrap_or_default(), u8::from(ready))
            })
            .collect();
        // What each pod's /readyz answers the test (not the kubelet's address), and whether it leads.
        let mut answers = Vec::new();
        for p in &pods_list {
            let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
            answers.push(format!(
                "{}:{}",
                p.metadata.name.as_deref().unwrap_or_default(),
                admin_get(&ip).await
            ));
        }
        let now = format!(
            "{} | pods (ready/restarts) {} | readyz {}",
            now.join(" "),
            pods.join(" "),
            answers.join(" ")
        );
        if *seen.lock().unwrap() != now {
            eprintln!("available: {now}");
            *seen.lock().unwrap() = now;
        }
        list.len() == 6
            && list.iter().all(|d| d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0) >= 1)
    })
    .await;

    // The pods run what the chart says: the chart's arguments and service account.
    let pods: Api<Pod> = Api::namespaced(stack.client.clone(), NAMESPACE);
    let service_pods =
        pods.list(&ListParams::default().labels("app.kubernetes.io/name=cluster-service")).await.unwrap();
    let pod = &service_pods.items[0];
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("etcd-operator-cluster-service"));
    let args = spec.containers[0].args.clone().unwrap_or_default();
    assert!(
        args.iter()
            .any(|a| a
                .starts_with("--restore-endpoint=https://etcd-operator-cluster-service.etcd-operator.svc")),
        "{args:?}"
    );

    stack.kubectl_apply(CLUSTER);
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    running(&clusters, "the sample cluster running, driven by the chart's pods").await;
    // The chart turns the members' NetworkPolicy on, and kube-sim enforces it: the cluster-service's
    // pods reach the members through it because the policy names them (namespace and labels).
    let policy = stack.kubectl_ok(&["get", "networkpolicy", "demo-members", "-o", "json"]);
    assert!(policy.contains("\"kubernetes.io/metadata.name\": \"etcd-operator\""), "{policy}");

    // Work that needs the widest grants, under kube-sim's RBAC enforcement of the chart's roles:
    // a backup to the mounted claim, and the replacement of a member whose data is lost.
    stack.kubectl_apply(BACKUP);
    let backups: Api<EtcdBackup> = Api::namespaced(stack.client.clone(), "default");
    eventually("the backup taken by the chart's pods", Duration::from_secs(90), || async {
        backups.get("demo-chart").await.unwrap().status.is_some_and(|s| s.phase == BackupPhase::Succeeded)
    })
    .await;
    let old_id = member_id(&clusters, "demo-2").await;
    // Its node is lost with the volume: the pod comes back on an empty one and is refused until replaced.
    stack.node().wipe_pvc("default", "data-demo-2").unwrap();
    stack.kubectl_ok(&["delete", "pod", "demo-2", "--grace-period=0", "--force"]);
    eventually("demo-2 replaced by the chart's pods", Duration::from_secs(150), || async {
        let status = clusters.get("demo").await.unwrap().status.unwrap_or_default();
        let id = status.members.iter().find(|m| m.name == "demo-2").map(|m| m.id.clone());
        status.operation.is_none()
            && status.members.len() == 3
            && status.members.iter().all(|m| m.healthy && !m.is_learner)
            && id.is_some_and(|id| id != old_id)
    })
    .await;

    // Each controller leads through its own Lease, held by its pod (identity = the pod name).
    let leases: Api<Lease> = Api::namespaced(stack.client.clone(), NAMESPACE);
    for kind in ["lifecycle", "scaling", "health", "recovery", "backup"] {
        let lease = leases.get(&format!("etcd-operator-{kind}-controller")).await.unwrap();
        let holder = lease.spec.and_then(|s| s.holder_identity).unwrap_or_default();
        assert!(
            holder.starts_with(&format!("etcd-operator-{kind}-controller-")),
            "{kind}: held by {holder:?}"
        );
        pods.get(&holder).await.unwrap_or_else(|e| panic!("{kind}: the holder {holder} is not a pod: {e}"));
    }
    // Nothing any process asked for was refused by the chart's RBAC.
    for pod in pods.list(&ListParams::default()).await.unwrap() {
        let name = pod.metadata.name.unwrap_or_default();
        let container = pod.spec.unwrap().containers[0].name.clone();
        let log = stack.node().log_path(NAMESPACE, &name, &container).expect("log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let refused: Vec<&str> = text.lines().filter(|l| l.contains("is forbidden")).take(3).collect();
        assert!(refused.is_empty(), "{name} was refused by RBAC: {refused:#?}");
        // Nor any call a controller made to the cluster-service (its projected token, its RBAC).
        let denied = |l: &&str| {
            l.contains("does not have valid authentication credentials")
                || l.contains("does not have permission")
        };
        let refused: Vec<&str> = text.lines().filter(denied).take(3).collect();
        assert!(refused.is_empty(), "{name}'s calls were refused: {refused:#?}");
    }
    // All of it through the cluster-service's NetworkPolicy (on by default), which lets in this
    // release's controllers by their component labels.
    let policy = stack.kubectl_ok(&[
        "-n",
        NAMESPACE,
        "get",
        "networkpolicy",
        "etcd-operator-cluster-service",
        "-o",
        "json",
    ]);
    assert!(policy.contains("lifecycle-controller") && policy.contains("backup-controller"), "{policy}");
    // And kube-sim enforces it: a pod without those labels opens no connection to the gRPC port
    // (its admin port stays open, for probes and metrics), a member pod does.
    let service_pod = service_pods.items[0].metadata.name.clone().unwrap();
    let service_ip = stack.node().pod_ip(NAMESPACE, &service_pod).unwrap().to_string();
    pods.create(&Default::default(), &unlabelled_pod()).await.unwrap();
    eventually("the unlabelled pod running", Duration::from_secs(30), || async {
        stack.node().netns(NAMESPACE, "stranger").is_ok()
    })
    .await;
    let connects = |ns: &str, pod: &str, port: u16| {
        let netns = stack.node().netns(ns, pod).unwrap();
        let probe = format!("exec 3<>/dev/tcp/{service_ip}/{port}");
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &netns, "timeout", "2", "bash", "-c", &probe])
            .output()
            .expect("ip netns exec runs");
        out.status.success()
    };
    assert!(connects(NAMESPACE, "stranger", 8080), "the admin port is open to all");
    assert!(!connects(NAMESPACE, "stranger", 9090), "an unlabelled pod reached the gRPC port");
    assert!(connects("default", "demo-0", 9090), "a member pod (its restore agent) is let in");

    // Every grant of the chart's roles was used in this run, or is on the list of rare paths.
    use serde::Deserialize;
    let objects: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&chart)
        .filter_map(|d| serde_json::Value::deserialize(d).ok())
        .filter(serde_json::Value::is_object)
        .collect();
    let granted = e2e_tests::rbac::granted(&objects);
    let idle = e2e_tests::rbac::unused(&granted, &stack.sim.audit(), RARE_PATHS);
    assert!(idle.is_empty(), "the chart grants what nothing used: {idle:#?}");
    // And lacks nothing any of its accounts used: not one request or RPC of theirs was refused.
    let denials = stack.sim.denials();
    let refused: Vec<_> = denials.iter().filter(|(user, _)| granted.contains_key(*user)).collect();
    assert!(refused.is_empty(), "the chart's accounts were refused: {refused:#?}");
}

/// Grants a run of this test does not use, and why each is still needed: (account, API group,
/// resource, verb).
const RARE_PATHS: &[(&str, &str, &str, &str)] = &[
    // Deleting a cluster (the lifecycle's DeleteCluster of an EtcdCluster being deleted); this
    // test deletes none.
    ("lifecycle-controller", "etcd.operator.dev", "etcdclusters/finalizers", "update"),
    ("cluster-service", "apps", "statefulsets", "delete"),
    ("cluster-service", "", "services", "delete"),
    ("cluster-service", "", "configmaps", "delete"),
    ("cluster-service", "policy", "poddisruptionbudgets", "delete"),
    // Schedules (ReconcileSchedule; pruning deletes backups); this test makes none.
    ("backup-controller", "etcd.operator.dev", "etcdbackupschedules/status", "update"),
    ("cluster-service", "etcd.operator.dev", "etcdbackupschedules", "get"),
    ("cluster-service", "etcd.operator.dev", "etcdbackupschedules/status", "patch"),
    ("cluster-service", "etcd.operator.dev", "etcdbackups", "delete"),
    // A spec given through the API (CreateCluster/UpdateCluster with a spec; here kubectl does
    // it), and ListClusters (no tooling calls the API here).
    ("cluster-service", "etcd.operator.dev", "etcdclusters", "create"),
    ("cluster-service", "etcd.operator.dev", "etcdclusters", "patch"),
    ("cluster-service", "etcd.operator.dev", "etcdclusters", "list"),
    // Backups a schedule creates (apply), and the backups a quorum recovery or a schedule lists.
    ("cluster-service", "etcd.operator.dev", "etcdbackups", "create"),
    ("cluster-service", "etcd.operator.dev", "etcdbackups", "patch"),
    ("cluster-service", "etcd.operator.dev", "etcdbackups", "list"),
    // TLS (certificate and CA Secrets, their rotation), etcd auth's root Secret, S3 credentials,
    // restores (the restore token Secret); this cluster has none of them.
    ("cluster-service", "", "secrets", "get"),
    ("cluster-service", "", "secrets", "create"),
    ("cluster-service", "", "secrets", "patch"),
    ("cluster-service", "", "secrets", "delete"),
    // Stopping a cluster and starting it again (ScaleToZero, RestartFromZero).
    ("cluster-service", "apps", "statefulsets/scale", "patch"),
    // A members' NetworkPolicy turned off in a spec.
    ("cluster-service", "networking.k8s.io", "networkpolicies", "delete"),
    // A per-cluster lock renewed by a long call or taken over from a crashed replica (update);
    // read only when taking it conflicts (another replica holds it, or a crashed one left it).
    ("cluster-service", "coordination.k8s.io", "leases", "update"),
    ("cluster-service", "coordination.k8s.io", "leases", "get"),
    // kube-runtime's Recorder patches an Event that repeats instead of creating another.
    ("cluster-service", "events.k8s.io", "events", "patch"),
];

const BACKUP: &str = "apiVersion: etcd.operator.dev/v1alpha1
kind: EtcdBackup
metadata:
  name: demo-chart
  namespace: default
spec:
  clusterName: demo
  storage:
    volume:
      claimName: backups
";

async fn member_id(clusters: &Api<EtcdCluster>, name: &str) -> String {
    let status = clusters.get("demo").await.unwrap().status.unwrap();
    status.members.iter().find(|m| m.name == name).map(|m| m.id.clone()).expect("member")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_scoped_install_runs_clusters_in_its_namespace_with_roles_only() {
    let stack = Stack::start("chart_namespaced").await;
    let one = serde_json::json!({"replicas": 1});
    let values = serde_json::json!({
        "watchNamespace": "prod",
        "clusterService": {"replicas": 1},
        "controllers": {"lifecycle": one, "scaling": one, "health": one, "recovery": one, "backup": one},
    });
    let namespaces = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n---\n"
    );
    let applied = stack.kubectl_apply(&(namespaces + &rendered(&values)));
    // Nothing cluster-wide but the CRDs and the cluster-service's reviews of its callers
    // (TokenReview and SubjectAccessReview are cluster-scoped APIs).
    let cluster_wide: Vec<&str> = applied.lines().filter(|l| l.contains("clusterrole")).collect();
    assert_eq!(
        cluster_wide,
        [
            "clusterrole.rbac.authorization.k8s.io/etcd-operator-cluster-service-auth-delegator created",
            "clusterrolebinding.rbac.authorization.k8s.io/etcd-operator-cluster-service-auth-delegator created"
        ],
        "{applied}"
    );
    assert!(
        applied.contains("role.rbac.authorization.k8s.io/etcd-operator-cluster-service created"),
        "{applied}"
    );
    stack.kubectl_apply(&CLUSTER.replace("namespace: default", "namespace: prod"));
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "prod");
    running(&clusters, "the cluster in prod running under Roles only").await;
    let refused: Vec<_> = stack
        .sim
        .denials()
        .into_iter()
        .filter(|(user, _)| user.starts_with("system:serviceaccount:"))
        .collect();
    assert!(refused.is_empty(), "the Roles lack what the operator used: {refused:#?}");
}

/// A pod in the operator's namespace without the labels the cluster-service's policy lets in:
/// something with a network namespace to dial from.
fn unlabelled_pod() -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "stranger", "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "sleep", "image": "busybox", "command": ["sleep", "600"]}]}
    }))
    .unwrap()
}

/// Waits until `demo` runs with 3 ready members.
async fn running(clusters: &Api<EtcdCluster>, what: &str) {
    eventually(what, Duration::from_secs(120), || async {
        let status = clusters.get("demo").await.unwrap().status;
        status.is_some_and(|s| s.phase == ClusterPhase::Running && s.ready_members == 3)
    })
    .await;
}

/// `GET /readyz` and the leader gauge from a pod's admin port, in a few words (diagnostics).
async fn admin_get(ip: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = |path: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect((ip, 8080)).await.map_err(|e| e.to_string())?;
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(out)
    };
    let one = async {
        let ready = get("/readyz").await?;
        let code = ready.split_whitespace().nth(1).unwrap_or("?").to_owned();
        let metrics = get("/metrics").await.unwrap_or_default();
        let leader = metrics.lines().find(|l| l.starts_with("etcd_operator_leader")).unwrap_or("").to_owned();
        Ok::<_, String>(format!("{code}[{leader}]"))
    };
    match tokio::time::timeout(Duration::from_secs(2), one).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => format!("error({e})"),
        Err(_) => "timeout".into(),
    }
}
