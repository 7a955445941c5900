//! kubectl, a client nobody here wrote, against kube-sim: apply, get, watch, delete.

mod support;

use std::{process::Command, time::Duration};

use support::kubectl;

/// Serves the project's CRDs and answers the example EtcdCluster to apply.
fn with_crds(s: &support::Sim) -> String {
    let mut crds = String::new();
    for (_, crd) in etcd_operator_api::crd::all() {
        crds.push_str(&etcd_operator_api::crd::to_yaml(&crd));
    }
    s.sim.apply_yaml(&crds).unwrap();
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/etcdcluster.yaml")).unwrap()
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: {team: db}}\ndata: {a: b}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_watch_and_delete() {
    let s = support::start().await;
    // kubectl caches discovery under $HOME; keep it per test.
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, &h, args, stdin);

    let (ok, out) = run(&["apply", "-f", "-"], Some(CM));
    assert!(ok && out.contains("configmap/x created"), "{out}");
    let (ok, out) = run(&["get", "cm", "-l", "team=db", "-o", "jsonpath={.items[*].data.a}"], None);
    assert!(ok && out == "b", "{out}");
    let (ok, out) = run(&["get", "ns", "-o", "name"], None);
    assert!(ok && out.contains("namespace/default"), "{out}");

    // A watch sees the change made by a second kubectl.
    let kubeconfig = s.sim.kubeconfig.clone();
    let watch_home = h.clone();
    let watcher = std::thread::spawn(move || {
        Command::new("timeout")
            .args(["4", "kubectl", "get", "cm", "x", "--watch", "-o", "jsonpath={.data.a}{\"\\n\"}"])
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", watch_home)
            .output()
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ok, out) = run(&["apply", "-f", "-"], Some(&CM.replace("a: b", "a: c")));
    assert!(ok && out.contains("configured"), "{out}");
    let watched = String::from_utf8_lossy(&watcher.join().unwrap().stdout).into_owned();
    assert_eq!(watched.lines().collect::<Vec<_>>(), ["b", "c"], "{watched}");

    let (ok, out) = run(&["delete", "-f", "-"], Some(CM));
    assert!(ok && out.contains("deleted"), "{out}");

    // Server-side printing: a CRD's printer columns.
    let (ok, out) = run(&["apply", "-f", "-"], Some(&with_crds(&s)));
    assert!(ok, "{out}");
    let (ok, out) = run(&["get", "etcd"], None);
    let header: Vec<&str> = out.lines().next().unwrap_or_default().split_whitespace().collect();
    assert!(ok && header == ["NAME", "SIZE", "READY", "VERSION", "PHASE", "AGE"], "{out}");
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("demo") && l.contains("3.5.17")), "{out}");
    let (ok, out) = run(&["get", "cm", "x"], None);
    assert!(!ok && out.contains("NotFound"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_token_gets_a_token_for_the_audience_it_asks() {
    use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let account = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: tooling}\n";
    let (ok, out) = kubectl(&s, home.path(), &["apply", "-f", "-"], Some(account));
    assert!(ok, "{out}");
    // kubectl sends this one as protobuf.
    let (ok, token) = kubectl(
        &s,
        home.path(),
        &["create", "token", "tooling", "--audience", "etcd-operator", "--duration", "24h"],
        None,
    );
    assert!(ok, "{token}");
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.trim().to_owned()),
            audiences: Some(vec!["etcd-operator".into()]),
        },
        ..Default::default()
    };
    let answer = kube::Api::<TokenReview>::all(s.client.clone())
        .create(&Default::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        answer.user.and_then(|u| u.username).as_deref(),
        Some("system:serviceaccount:default:tooling")
    );
    let (ok, out) = kubectl(&s, home.path(), &["create", "token", "tooling", "--duration", "1m"], None);
    assert!(!ok && out.contains("less than 10 minutes"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_verb_resource_and_code_as_kube_apiserver_does() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);
    let (ok, out) = run(&["apply", "--server-side", "-f", "-"], Some(CM));
    assert!(ok, "{out}");
    for _ in 0..3 {
        assert!(run(&["get", "cm", "x"], None).0);
    }
    assert!(run(&["get", "cm"], None).0);
    assert!(!run(&["get", "cm", "missing"], None).0);
    let (ok, metrics) = run(&["get", "--raw", "/metrics"], None);
    assert!(ok, "{metrics}");
    let count = |verb: &str, code: u16| {
        let labels = format!(
            "apiserver_request_total{{component=\"apiserver\",verb=\"{verb}\",dry_run=\"\",group=\"\",version=\"v1\",\
             resource=\"configmaps\",subresource=\"\",scope=\"{}\",code=\"{code}\"}} ",
            if verb == "LIST" { "namespace" } else { "resource" }
        );
        metrics.lines().find_map(|l| l.strip_prefix(labels.as_str())).map(|n| n.parse::<u64>().unwrap())
    };
    assert_eq!(count("APPLY", 201), Some(1), "created: {metrics}");
    assert_eq!(count("GET", 200), Some(3), "{metrics}");
    assert_eq!(count("GET", 404), Some(1), "{metrics}");
    assert_eq!(count("LIST", 200), Some(1), "{metrics}");
    assert!(metrics.starts_with("# HELP apiserver_request_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dry_run_is_checked_and_answered_but_never_stored() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, PostParams};
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);
    let list_rv = || run(&["get", "cm", "-o", "jsonpath={.metadata.resourceVersion}"], None).1;
    let before = list_rv();

    // A create: answered as it would be stored (uid, creation time; no resourceVersion).
    let (ok, out) = run(&["create", "--dry-run=server", "-o", "json", "-f", "-"], Some(CM));
    assert!(ok, "{out}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        answer["metadata"]["uid"].is_string() && answer["metadata"]["creationTimestamp"].is_string(),
        "{out}"
    );
    assert!(answer["metadata"].get("resourceVersion").is_none(), "{out}");
    let (ok, out) = run(&["apply", "--server-side", "--dry-run=server", "-f", "-"], Some(CM));
    assert!(ok && out.contains("(server dry run)"), "{out}");
    assert!(!run(&["get", "cm", "x"], None).0, "a dry run stored nothing");
    assert_eq!(list_rv(), before, "a dry run spends no resourceVersion");

    // An update, an apply and deletes of a stored object leave it as it was.
    assert!(run(&["apply", "--server-side", "-f", "-"], Some(CM)).0);
    let stored = list_rv();
    let changed = CM.replace("{a: b}", "{a: changed}");
    let (ok, out) = run(&["apply", "--server-side", "--dry-run=server", "-f", "-"], Some(&changed));
    assert!(ok, "{out}");
    let (ok, out) = run(&["label", "cm", "x", "tier=gold", "--dry-run=server"], None);
    assert!(ok, "{out}");
    let (ok, out) = run(&["delete", "cm", "x", "--dry-run=server"], None);
    assert!(ok && out.contains("(server dry run)"), "{out}");
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    // A client library sends it in the DeleteOptions body.
    api.delete("x", &DeleteParams { dry_run: true, ..Default::default() }).await.unwrap();
    let cm = api.get("x").await.unwrap();
    assert_eq!(cm.data.unwrap()["a"], "b");
    assert_eq!(cm.metadata.labels.unwrap().get("tier"), None);
    assert_eq!(list_rv(), stored, "nothing changed");

    // Still checked: an object that exists is refused, as a real create would be.
    let err =
        api.create(&PostParams { dry_run: true, ..Default::default() }, &cm_named("x")).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(e) if e.code == 409), "{err}");
    // Only All is a dry run; anything else is refused, naming the parameter.
    let request = http::Request::post("/api/v1/namespaces/default/configmaps?dryRun=Yes")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&cm_named("y")).unwrap())
        .unwrap();
    let err = s.client.request::<ConfigMap>(request).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 422 && e.message.contains("dryRun: Unsupported value: \"Yes\"")),
        "{err}"
    );
    assert!(api.get_opt("y").await.unwrap().is_none());
    // Counted as kube-apiserver counts them: by the query's dryRun.
    let (_, metrics) = run(&["get", "--raw", "/metrics"], None);
    assert!(
        metrics.lines().any(|l| l.contains("verb=\"POST\",dry_run=\"All\"") && l.contains("code=\"201\"")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_with_a_selector_sees_objects_leave_it_as_deleted_and_enter_it_as_added() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);
    for object in [CM.to_owned(), CM.replace("x,", "w,").replace("db", "web")] {
        let (ok, out) = run(&["apply", "-f", "-"], Some(&object));
        assert!(ok, "{out}");
    }
    let (kubeconfig, watch_home) = (s.sim.kubeconfig.clone(), home.path().to_path_buf());
    let watcher = std::thread::spawn(move || {
        let format = "jsonpath={.type} {.object.metadata.name}{\"\\n\"}";
        Command::new("timeout")
            .args([
                "5",
                "kubectl",
                "get",
                "cm",
                "-l",
                "team=db",
                "--watch",
                "--output-watch-events",
                "-o",
                format,
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", watch_home)
            .output()
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for args in [
        ["label", "cm", "x", "team=web", "--overwrite"],
        ["label", "cm", "x", "tier=gold", "--overwrite"],
        ["label", "cm", "w", "team=db", "--overwrite"],
        ["delete", "cm", "x", "--wait=false", "--ignore-not-found"],
        ["delete", "cm", "w", "--wait=false", "--ignore-not-found"],
    ] {
        let (ok, out) = run(&args, None);
        assert!(ok, "{args:?}: {out}");
    }
    let watched = String::from_utf8_lossy(&watcher.join().unwrap().stdout).into_owned();
    // x leaves (DELETED), its later change and deletion are not seen; w enters (ADDED) and goes.
    assert_eq!(
        watched.lines().collect::<Vec<_>>(),
        ["ADDED x", "DELETED x", "ADDED w", "DELETED w"],
        "{watched}"
    );
}

fn cm_named(name: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"a": "b"}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_through_either_api_show_in_kubectl_get_events_and_describe() {
    use k8s_openapi::api::{core::v1::Event as CoreEvent, events::v1::Event};
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);
    assert!(run(&["apply", "-f", "-"], Some(&with_crds(&s))).0);
    let (_, uid) = run(&["get", "etcd", "demo", "-o", "jsonpath={.metadata.uid}"], None);

    // As the operator records them: events.k8s.io/v1.
    let recorded: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "demo.scaled", "namespace": "default"},
        "regarding": {"apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster", "name": "demo",
                      "namespace": "default", "uid": uid},
        "note": "scaled from 1 to 3 members", "reason": "Scaled", "type": "Normal", "action": "Scale",
        "reportingController": "etcd-operator/scaling", "reportingInstance": "scaling-0",
        "eventTime": "2026-12-01T07:00:00.000000Z",
    }))
    .unwrap();
    let events: kube::Api<Event> = kube::Api::namespaced(s.client.clone(), "default");
    events.create(&Default::default(), &recorded).await.unwrap();

    let (ok, out) = run(&["get", "events"], None);
    let header: Vec<&str> =
        out.lines().next().unwrap_or_default().split("  ").filter(|c| !c.is_empty()).collect();
    assert!(
        ok && header.iter().map(|c| c.trim()).eq(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]),
        "{out}"
    );
    assert!(
        out.contains("Scaled")
            && out.contains("etcdcluster/demo")
            && out.contains("scaled from 1 to 3 members"),
        "{out}"
    );
    let (ok, out) = run(&["describe", "etcd", "demo"], None);
    assert!(ok && out.contains("Events:") && out.contains("scaled from 1 to 3 members"), "{out}");
    let core: kube::Api<CoreEvent> = kube::Api::namespaced(s.client.clone(), "default");
    let seen = core.get("demo.scaled").await.unwrap();
    assert_eq!(
        (seen.message.as_deref(), seen.reporting_component.as_deref()),
        (Some("scaled from 1 to 3 members"), Some("etcd-operator/scaling"))
    );

    // And the other way: a core Event read, changed and deleted through events.k8s.io/v1.
    let core_event: CoreEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "demo.core", "namespace": "default"},
        "involvedObject": {"kind": "EtcdCluster", "name": "demo", "namespace": "default"},
        "message": "written through core/v1", "reason": "Noticed", "type": "Warning", "count": 2,
    }))
    .unwrap();
    let before = events.list(&Default::default()).await.unwrap().metadata.resource_version.unwrap();
    core.create(&Default::default(), &core_event).await.unwrap();
    let mut watch = std::pin::pin!(events.watch(&Default::default(), &before).await.unwrap());
    match futures::StreamExt::next(&mut watch).await {
        Some(Ok(kube::api::WatchEvent::Added(e))) => {
            assert_eq!(e.note.as_deref(), Some("written through core/v1"))
        }
        other => panic!("a watch of events.k8s.io/v1 sees the core Event as ADDED: {other:?}"),
    }
    let seen = events.get("demo.core").await.unwrap();
    assert_eq!((seen.note.as_deref(), seen.deprecated_count), (Some("written through core/v1"), Some(2)));
    let patch = serde_json::json!({"note": "changed through events.k8s.io"});
    events
        .patch("demo.core", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(
        core.get("demo.core").await.unwrap().message.as_deref(),
        Some("changed through events.k8s.io")
    );
    let (ok, out) = run(&["get", "events.events.k8s.io", "-o", "name"], None);
    assert!(ok && out.lines().count() == 2, "{out}");
    events.delete("demo.core", &Default::default()).await.unwrap();
    assert!(core.get_opt("demo.core").await.unwrap().is_none());
}
