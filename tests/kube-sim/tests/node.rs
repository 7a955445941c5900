//! The node agent: pods as real processes in their own network namespaces,
//! with env, volumes, init containers, probes, restarts, graceful deletion,
//! cluster DNS, and fault injection. Needs root (as CI runs).

mod support;

use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde_json::{Value, json};
use support::eventually;

async fn create<K>(client: &Client, object: Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &serde_json::from_value(object).unwrap()).await.unwrap()
}

async fn status(pods: &Api<Pod>, name: &str) -> Value {
    match pods.get_opt(name).await.unwrap() {
        Some(p) => serde_json::to_value(p.status).unwrap(),
        None => Value::Null,
    }
}

fn is_ready(status: &Value) -> bool {
    status["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

async fn wait_ready(pods: &Api<Pod>, name: &str, secs: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let st = status(pods, name).await;
        if is_ready(&st) {
            return st;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for pod {name} ready; status: {st:#}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The container's log (for failure messages).
fn log_of(node: &kube_sim::node::Node, pod: &str, container: &str) -> String {
    node.log_path("default", pod, container).and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
}

fn busybox(name: &str, script: &str) -> Value {
    json!({"name": name, "image": "busybox:1.36", "command": ["sh", "-c", script]})
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_runs_init_containers_then_its_container_with_env_volumes_and_a_readiness_probe() {
    let s = support::start_with_node().await;
    let node = s.sim.node().unwrap().clone();
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(s.client.clone(), "default");
    cm.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}})).unwrap(),
    )
    .await
    .unwrap();
    let mut main = busybox(
        "main",
        "echo \"$POD_NAME $POD_NAMESPACE $POD_IP $GREETING $(cat /work/init)\"; touch /work/ready; exec sleep 1000",
    );
    main["env"] = json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
    ]);
    main["volumeMounts"] = json!([{"name": "work", "mountPath": "/work"}]);
    main["readinessProbe"] = json!({"exec": {"command": ["test", "-f", "/work/ready"]}, "periodSeconds": 1});
    let mut init = busybox("init", "echo init-done > /work/init");
    init["volumeMounts"] = main["volumeMounts"].clone();
    let _: Pod = create(
        &s.client,
        json!({"metadata": {"name": "p1"}, "spec": {"initContainers": [init], "containers": [main], "volumes": [{"name": "work", "emptyDir": {}}]}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let st = wait_ready(&pods, "p1", 20).await;
    assert_eq!(st["phase"], "Running");
    let ip = st["podIP"].as_str().unwrap().to_owned();
    assert!(ip.starts_with("10.244."), "{ip}");
    assert_eq!(st["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
    assert_eq!(st["containerStatuses"][0]["restartCount"], 0);
    let p = pods.get("p1").await.unwrap();
    assert_eq!(p.spec.unwrap().node_name.as_deref(), Some("kube-sim-node"));
    let log = std::fs::read_to_string(node.log_path("default", "p1", "main").unwrap()).unwrap();
    assert_eq!(log.trim(), format!("p1 default {ip} hello init-done"));
    // The container sees its own IP on eth0 and its hostname.
    let out = node.exec("default", "p1", "main", &["hostname"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "p1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_container_restarts_and_a_deleted_pod_is_stopped_gracefully() {
    let s = support::start_with_node().await;
    let node = s.sim.node().unwrap().clone();
    let script = "trap 'echo got-term; exit 0' TERM; echo started; while true; do sleep 0.1; done";
    let _: Pod = create(
        &s.client,
        json!({"metadata": {"name": "p2"}, "spec": {"containers": [busybox("main", script)]}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    wait_ready(&pods, "p2", 20).await;
    node.crash("default", "p2", "main").unwrap();
    eventually("restart after the crash", 20, || async {
        let st = status(&pods, "p2").await;
        st["containerStatuses"][0]["restartCount"] == 1 && is_ready(&st)
    })
    .await;
    let st = status(&pods, "p2").await;
    assert_eq!(st["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 137);
    let log = node.log_path("default", "p2", "main").unwrap();
    pods.delete("p2", &DeleteParams::default()).await.unwrap();
    // Marked first, removed once the process has stopped.
    let marked = pods.get_opt("p2").await.unwrap();
    assert!(marked.is_none_or(|p| p.metadata.deletion_timestamp.is_some()));
    eventually("p2 removed", 20, || async { pods.get_opt("p2").await.unwrap().is_none() }).await;
    let text = std::fs::read_to_string(log).unwrap();
    // The first run may be killed before it prints: the pod is ready as soon as it runs.
    assert!((1..=2).contains(&text.matches("started").count()), "{text}");
    assert!(text.ends_with("got-term\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn statefulset_pods_resolve_each_other_and_their_pvc_outlives_them() {
    let s = support::start_with_node().await;
    let node = s.sim.node().unwrap().clone();
    let _: k8s_openapi::api::core::v1::Service = create(
        &s.client,
        json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    )
    .await;
    let mut c = busybox("c", "exec sleep 1000");
    c["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    let _: StatefulSet = create(&s.client, json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [c]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    wait_ready(&pods, "web-0", 20).await;
    let web1 = wait_ready(&pods, "web-1", 20).await;
    let ip1 = web1["podIP"].as_str().unwrap();
    // Like cluster DNS, a new pod's name resolves shortly after it is ready; the short form too.
    for name in ["web-1.web.default.svc.cluster.local", "web-1.web"] {
        eventually(&format!("{name} resolves in web-0"), 5, || async {
            let out = node.exec("default", "web-0", "c", &["getent", "hosts", name]).await.unwrap();
            String::from_utf8_lossy(&out.stdout).starts_with(ip1)
        })
        .await;
    }
    // Processes on the host resolve the same names through the node's hosts file.
    let hosts = std::fs::read_to_string(node.hosts_file()).unwrap();
    assert!(hosts.contains(&format!("{ip1}\tweb-1.web.default.svc.cluster.local")), "{hosts}");

    let out = node.exec("default", "web-1", "c", &["sh", "-c", "echo keep > /data/f"]).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let old_uid = pods.get("web-1").await.unwrap().metadata.uid;
    pods.delete("web-1", &DeleteParams::default()).await.unwrap();
    eventually("web-1 recreated", 30, || async {
        let p = pods.get_opt("web-1").await.unwrap();
        p.is_some_and(|p| p.metadata.uid != old_uid && is_ready(&serde_json::to_value(p.status).unwrap()))
    })
    .await;
    let out = node.exec("default", "web-1", "c", &["cat", "/data/f"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "keep\n");
    node.wipe_pvc("default", "data-web-1").unwrap();
    let out = node.exec("default", "web-1", "c", &["ls", "-A", "/data"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

fn etcd_member() -> Value {
    let host = "$(POD_NAME).etcd.default.svc.cluster.local";
    let members = (0..3)
        .map(|i| format!("etcd-{i}=http://etcd-{i}.etcd.default.svc.cluster.local:2380"))
        .collect::<Vec<_>>()
        .join(",");
    json!({
        "name": "etcd", "image": "gcr.io/etcd-development/etcd:v3.4.23", "command": ["/usr/local/bin/etcd"],
        "args": ["--name=$(POD_NAME)", "--data-dir=/var/lib/etcd/data",
                 format!("--initial-advertise-peer-urls=http://{host}:2380"), format!("--advertise-client-urls=http://{host}:2379"),
                 "--listen-peer-urls=http://0.0.0.0:2380", "--listen-client-urls=http://0.0.0.0:2379",
                 format!("--initial-cluster={members}"), "--initial-cluster-state=new", "--initial-cluster-token=node-test"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": 2379}, "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/etcd"}],
    })
}

async fn etcdctl(node: &kube_sim::node::Node, pod: &str, args: &[&str]) -> String {
    let mut argv = vec![
        "/usr/bin/etcdctl",
        "--endpoints=http://etcd-2.etcd.default.svc.cluster.local:2379,http://etcd-0.etcd.default.svc.cluster.local:2379",
    ];
    argv.extend_from_slice(args);
    let out = node.exec("default", pod, "etcd", &argv).await.unwrap();
    assert!(out.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 3-member etcd StatefulSet `etcd` with readiness probes, every pod Ready.
async fn etcd_set(s: &support::Sim) -> Api<Pod> {
    let _: k8s_openapi::api::core::v1::Service = create(
        &s.client,
        json!({"metadata": {"name": "etcd"}, "spec": {"clusterIP": "None", "publishNotReadyAddresses": true,
               "selector": {"app": "etcd"}, "ports": [{"name": "peer", "port": 2380}]}}),
    )
    .await;
    let _: StatefulSet = create(&s.client, json!({
        "metadata": {"name": "etcd"},
        "spec": {"replicas": 3, "serviceName": "etcd", "podManagementPolicy": "Parallel", "selector": {"matchLabels": {"app": "etcd"}},
                 "template": {"metadata": {"labels": {"app": "etcd"}}, "spec": {"containers": [etcd_member()], "terminationGracePeriodSeconds": 5}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    for i in 0..3 {
        wait_ready(&pods, &format!("etcd-{i}"), 40).await;
    }
    pods
}

#[tokio::test(flavor = "multi_thread")]
async fn real_etcd_members_form_a_cluster_and_faults_show_in_readiness() {
    let s = support::start_with_node().await;
    let node = s.sim.node().unwrap().clone();
    let pods = etcd_set(&s).await;
    etcdctl(&node, "etcd-1", &["put", "greeting", "hello"]).await;
    assert_eq!(etcdctl(&node, "etcd-0", &["get", "greeting", "--print-value-only"]).await, "hello\n");
    assert_eq!(etcdctl(&node, "etcd-0", &["member", "list"]).await.matches(", started, ").count(), 3);

    node.pause("default", "etcd-1").unwrap();
    eventually("paused etcd-1 not ready", 20, || async { !is_ready(&status(&pods, "etcd-1").await) }).await;
    node.resume("default", "etcd-1").unwrap();
    wait_ready(&pods, "etcd-1", 20).await;

    node.partition("default", "etcd-2").unwrap();
    eventually("partitioned etcd-2 not ready", 20, || async { !is_ready(&status(&pods, "etcd-2").await) })
        .await;
    // The other two keep quorum.
    let out = node
        .exec(
            "default",
            "etcd-0",
            "etcd",
            &[
                "/usr/bin/etcdctl",
                "--endpoints=http://etcd-0.etcd.default.svc.cluster.local:2379",
                "put",
                "k",
                "v",
            ],
        )
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    node.heal("default", "etcd-2").unwrap();
    wait_ready(&pods, "etcd-2", 30).await;
    assert_eq!(etcdctl(&node, "etcd-2", &["get", "k", "--print-value-only"]).await, "v\n");

    // Node down: every pod NotReady; node back: the members restart from their PVCs with the data.
    node.stop();
    eventually("all not ready", 10, || async {
        let mut any = false;
        for i in 0..3 {
            any |= is_ready(&status(&pods, &format!("etcd-{i}")).await);
        }
        !any
    })
    .await;
    node.start();
    for i in 0..3 {
        let name = format!("etcd-{i}");
        let ready = tokio::spawn({
            let pods = pods.clone();
            let name = name.clone();
            async move { wait_ready(&pods, &name, 40).await }
        });
        if let Err(e) = ready.await {
            let tail = |text: String| {
                text.lines()
                    .rev()
                    .take(25)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let logs: Vec<String> =
                (0..3).map(|j| tail(log_of(&node, &format!("etcd-{j}"), "etcd"))).collect();
            panic!("{name} after the node restart: {e}\n{}", logs.join("\n-----\n"));
        }
    }
    assert_eq!(etcdctl(&node, "etcd-1", &["get", "greeting", "--print-value-only"]).await, "hello\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_liveness_probe_restarts_the_container() {
    let s = support::start_with_node().await;
    let node = s.sim.node().unwrap().clone();
    let mut c = busybox("main", "touch /work/alive; exec sleep 1000");
    c["volumeMounts"] = json!([{"name": "work", "mountPath": "/work"}]);
    c["livenessProbe"] = json!({"exec": {"command": ["test", "-f", "/work/alive"]}, "periodSeconds": 1, "failureThreshold": 2});
    // Ready once the file exists, so the test removes it only after the script made it.
    c["readinessProbe"] = json!({"exec": {"command": ["test", "-f", "/work/alive"]}, "periodSeconds": 1});
    let _: Pod = create(
        &s.client,
        json!({"metadata": {"name": "p3"}, "spec": {"containers": [c], "terminationGracePeriodSeconds": 2,
               "volumes": [{"name": "work", "emptyDir": {}}]}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    wait_ready(&pods, "p3", 20).await;
    let out = node.exec("default", "p3", "main", &["rm", "/work/alive"]).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    eventually("restart after failed liveness", 20, || async {
        let st = status(&pods, "p3").await;
        st["containerStatuses"][0]["restartCount"] == 1 && is_ready(&st)
    })
    .await;
    // SIGTERM ended sleep: 128 + 15.
    assert_eq!(status(&pods, "p3").await["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 143);
}

/// How a connection from the host (not the kubelet's address) to `ip:2379` ends within 2 s.
async fn host_dial(ip: std::net::Ipv4Addr) -> Result<(), String> {
    dial_from(None, ip).await
}

/// As [`host_dial`], from `from` when given.
async fn dial_from(from: Option<std::net::Ipv4Addr>, ip: std::net::Ipv4Addr) -> Result<(), String> {
    let dial = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        if let Some(from) = from {
            socket.bind((from, 0).into())?;
        }
        socket.connect((ip, 2379).into()).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), dial).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("refused: {e}")),
        Err(_) => Err("timed out".into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_path_to_the_pods_is_cut_while_the_kubelet_the_clients_and_the_pods_still_reach_each_other()
{
    use kube_sim::node::HostCut;
    let s = support::start_with_node().await;
    let node = s.sim.node().unwrap().clone();
    let pods = etcd_set(&s).await;
    let ip = node.pod_ip("default", "etcd-0").unwrap();
    assert_eq!(host_dial(ip).await, Ok(()));
    for (cut, expect) in [(HostCut::Refuse, "refused"), (HostCut::Drop, "timed out")] {
        node.cut_host_path(Some(cut)).unwrap();
        let failed = host_dial(ip).await.unwrap_err();
        assert!(failed.starts_with(expect), "{cut:?}: {failed}");
        // Application clients (bound to the clients' address) are not the operator: still connected.
        assert_eq!(dial_from(Some(node.clients_address()), ip).await, Ok(()), "{cut:?}: clients");
        // Readiness needs a leader, so the kubelet's probes and the peers both still get through.
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        for i in 0..3 {
            assert!(is_ready(&status(&pods, &format!("etcd-{i}")).await), "{cut:?}: etcd-{i} still Ready");
        }
        etcdctl(&node, "etcd-1", &["put", "cut", &format!("{cut:?}")]).await;
        node.cut_host_path(None).unwrap();
        assert_eq!(host_dial(ip).await, Ok(()), "{cut:?}: the path is back");
    }
}
