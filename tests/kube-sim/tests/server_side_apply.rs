//! Server-side apply's field ownership as Kubernetes keeps it: managed fields for apply and for
//! update managers, conflicts as 409 unless forced, ownership taken on force, and a field an
//! applier stops applying kept while another manager owns it. With kubectl and kube-rs.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use support::kubectl;

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n";

fn managers(object: &Value) -> Vec<(String, String, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().into(),
                e["operation"].as_str().unwrap().into(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_conflicts_and_takes_fields_by_force() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);

    assert!(run(&["apply", "--server-side", "-f", "-"], Some(CM)).0);
    let (ok, out) = run(
        &["patch", "cm", "x", "--type=merge", "-p", r#"{"data":{"a":"c"}}"#, "--field-manager=editor"],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = run(&["apply", "--server-side", "-f", "-"], Some(CM));
    assert!(
        !ok && out.contains("Apply failed with 1 conflict: conflict with \"editor\" using v1: .data.a"),
        "{out}"
    );
    let (_, out) = run(&["get", "cm", "x", "-o", "jsonpath={.data.a}"], None);
    assert_eq!(out, "c", "a refused apply changes nothing");

    let (ok, out) = run(&["apply", "--server-side", "--force-conflicts", "-f", "-"], Some(CM));
    assert!(ok && out.contains("serverside-applied"), "{out}");
    let (_, out) = run(&["get", "cm", "x", "-o", "json", "--show-managed-fields"], None);
    let object: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(object["data"]["a"], "b");
    assert_eq!(
        managers(&object),
        [("kubectl".to_owned(), "Apply".to_owned(), json!({"f:data": {"f:a": {}}}))],
        "the editor lost its only field"
    );
    // kubectl hides them unless asked, as with any server.
    let (_, out) = run(&["get", "cm", "x", "-o", "yaml"], None);
    assert!(!out.contains("managedFields"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_on_one_object_keep_what_each_owns() {
    let s = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let operator = PatchParams::apply("etcd-operator/lifecycle").force();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
        "data": {"owned": "1", "shared": "1"}});
    api.patch("cfg", &operator, &Patch::Apply(&applied)).await.unwrap();
    // Another component changes one field with an update: it owns it now.
    let other = PatchParams { field_manager: Some("etcd-operator/scaling".into()), ..Default::default() };
    api.patch("cfg", &other, &Patch::Merge(json!({"data": {"shared": "2"}}))).await.unwrap();
    // The operator stops applying both: its own goes, the other's stays.
    let narrower = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {}});
    let cm = api.patch("cfg", &operator, &Patch::Apply(&narrower)).await.unwrap();
    let data = cm.data.unwrap_or_default();
    assert_eq!(data.get("owned"), None);
    assert_eq!(data.get("shared").map(String::as_str), Some("2"));
    // Without force, applying the other's field with another value is refused with 409.
    let polite = PatchParams::apply("etcd-operator/lifecycle");
    let err = api.patch("cfg", &polite, &Patch::Apply(&applied)).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.message.contains("conflict with \"etcd-operator/scaling\"")),
        "{err:?}"
    );
    // The same apply again is a no-op: no new resourceVersion.
    let once = api.patch("cfg", &operator, &Patch::Apply(&narrower)).await.unwrap();
    let twice = api.patch("cfg", &operator, &Patch::Apply(&narrower)).await.unwrap();
    assert_eq!(once.metadata.resource_version, twice.metadata.resource_version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_through_the_subresource_owns_the_replicas() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  replicas: 1\n  serviceName: s\n  selector: {matchLabels: {app: s}}\n  template:\n    metadata: {labels: {app: s}}\n    spec: {containers: [{name: c, image: busybox}]}\n";
    assert!(run(&["apply", "--server-side", "--field-manager=op", "-f", "-"], Some(sts)).0);
    let (ok, out) = run(&["scale", "statefulset", "s", "--replicas=3"], None);
    assert!(ok, "{out}");
    let (_, out) = run(&["get", "sts", "s", "-o", "json", "--show-managed-fields"], None);
    let object: Value = serde_json::from_str(&out).unwrap();
    let scale = object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "scale")
        .unwrap_or_else(|| panic!("no entry for the scale subresource: {out}"));
    assert_eq!(
        (scale["operation"].as_str(), &scale["fieldsV1"]),
        (Some("Update"), &json!({"f:spec": {"f:replicas": {}}}))
    );
    let (ok, out) = run(&["apply", "--server-side", "--field-manager=op", "-f", "-"], Some(sts));
    assert!(!ok && out.contains(".spec.replicas"), "{out}");
}

/// An apply body is YAML, of which JSON (what clients send) is a subset: both are read, and a
/// body that is neither is refused as kube-apiserver refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_body_may_be_yaml_or_json() {
    let s = support::start().await;
    let apply = |name: &str, body: String| {
        http::Request::patch(format!(
            "/api/v1/namespaces/default/configmaps/{name}?fieldManager=writer&force=true"
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body(body.into_bytes())
        .unwrap()
    };
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b # a comment\n";
    let cm: ConfigMap = s.client.request(apply("from-yaml", yaml.into())).await.unwrap();
    assert_eq!(cm.data.unwrap()["a"], "b");
    let json = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-json"}, "data": {"a": "c"}});
    let cm: ConfigMap = s.client.request(apply("from-json", json.to_string())).await.unwrap();
    assert_eq!(cm.data.unwrap()["a"], "c");
    let err = s.client.request::<ConfigMap>(apply("neither", "{a: [".into())).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 400 && e.message.contains("not valid YAML")),
        "{err}"
    );
}
