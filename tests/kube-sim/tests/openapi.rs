//! OpenAPI v2 and v3 documents and field validation, as kubectl uses them: apply validates
//! without flags (the server judges unknown fields, as kubectl asks once the v3 document says
//! a PATCH takes `fieldValidation`), explain reads the schemas, and an unknown field is refused
//! with kube-apiserver's strict decoding error or kept out with a warning.

mod support;

use serde_json::Value;
use support::kubectl;

fn crds() -> String {
    etcd_operator_api::crd::all().iter().map(|(_, crd)| etcd_operator_api::crd::to_yaml(crd)).collect()
}

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/etcdcluster.yaml")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_with_validation_explains_and_refuses_unknown_fields() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);

    // Without --validate=false: the CRDs (built-in kind, its schema from Kubernetes'), then a resource.
    let (ok, out) = run(&["apply", "-f", "-"], Some(&crds()));
    assert!(ok && out.contains("created"), "{out}");
    let (ok, out) = run(&["apply", "-f", "-"], Some(&example()));
    assert!(ok && out.contains("etcdcluster.etcd.operator.dev/demo created"), "{out}");
    assert!(!out.contains("Warning"), "the example has no unknown field: {out}");

    // explain: a custom resource's schema, and built-in ones through their references.
    let (ok, out) = run(&["explain", "etcdcluster.spec.size"], None);
    assert!(ok && out.contains("KIND:       EtcdCluster") && out.contains("FIELD: size <integer>"), "{out}");
    let (ok, out) = run(&["explain", "etcdcluster.metadata.labels"], None);
    assert!(ok && out.contains("Map of string keys and values"), "{out}");
    let (ok, out) = run(&["explain", "pod.spec.containers.image"], None);
    assert!(ok && out.contains("Container image name"), "{out}");
    let (ok, out) = run(&["explain", "statefulsets.spec.updateStrategy.rollingUpdate"], None);
    assert!(ok && out.contains("partition"), "{out}");

    // The Swagger 2.0 document, in the protobuf form kubectl reads.
    let (ok, out) = run(&["explain", "configmap.data", "--output", "plaintext-openapiv2"], None);
    assert!(ok && out.contains("FIELD:    data <map[string]string>"), "{out}");
    let (ok, out) = run(&["explain", "etcdcluster.spec.size", "--output", "plaintext-openapiv2"], None);
    assert!(ok && out.contains("KIND:     EtcdCluster"), "{out}");
    // A kind nothing serves: kubectl validates it against v2 (which cannot know it) and then
    // finds no mapping, as with any API server without the CRD.
    let issuer = "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: selfsigned}\nspec: {selfSigned: {}}\n";
    let (ok, out) = run(&["apply", "-f", "-"], Some(issuer));
    assert!(!ok && out.contains("no matches for kind \"Issuer\" in version \"cert-manager.io/v1\""), "{out}");

    // kubectl's default is Strict: refused, naming the field, and nothing stored.
    let typo = example().replace("name: demo", "name: typo").replace("  size: 3\n", "  size: 3\n  sise: 5\n");
    let (ok, out) = run(&["apply", "-f", "-"], Some(&typo));
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "EtcdCluster in version \"v1alpha1\" cannot be handled as a EtcdCluster: strict decoding error: unknown field \"spec.sise\""
        ),
        "{out}"
    );
    assert!(!run(&["get", "etcd", "typo"], None).0, "a refused object is not stored");
    // Warn: stored without the field, and the warning says which.
    let (ok, out) = run(&["apply", "--validate=warn", "-f", "-"], Some(&typo));
    assert!(ok && out.contains("Warning: unknown field \"spec.sise\""), "{out}");
    let (ok, out) = run(&["get", "etcd", "typo", "-o", "json"], None);
    let stored: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(ok && stored["spec"].get("sise").is_none() && stored["spec"]["size"] == 3, "{out}");
    // An update that does not touch the field is not blamed for what is already stored.
    let (ok, out) = run(&["label", "etcd", "typo", "team=db"], None);
    assert!(ok && !out.contains("Warning"), "{out}");

    // Built-in kinds, at the top and deep inside a list.
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatta: {a: b}\n";
    let (ok, out) = run(&["apply", "-f", "-"], Some(cm));
    assert!(!ok && out.contains("strict decoding error: unknown field \"datta\""), "{out}");
    let pod =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, imagee: busybox}]}\n";
    let (ok, out) = run(&["create", "-f", "-"], Some(pod));
    assert!(!ok && out.contains("unknown field \"spec.containers[0].imagee\""), "{out}");
    let meta = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labelz: {a: b}}\n";
    let (ok, out) = run(&["apply", "-f", "-"], Some(meta));
    assert!(!ok && out.contains("unknown field \"metadata.labelz\""), "{out}");
    // Server-side apply says it its own way.
    let (ok, out) = run(&["apply", "--server-side", "-f", "-"], Some(cm));
    assert!(!ok && out.contains(".datta: field not declared in schema"), "{out}");
    // Ignore: stored, silently, without the field.
    let (ok, out) = run(&["apply", "--validate=false", "-f", "-"], Some(cm));
    assert!(ok && !out.contains("Warning"), "{out}");
    let (_, out) = run(&["get", "cm", "x", "-o", "json"], None);
    let stored: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(stored.get("datta").is_none() && stored["metadata"]["name"] == "x", "{out}");
}

fn raw(s: &support::Sim, home: &std::path::Path, path: &str) -> Value {
    let (ok, out) = kubectl(s, home, &["get", "--raw", path], None);
    assert!(ok, "{path}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn gvk_of(schema: &Value) -> Option<(&str, &str)> {
    let gvk = schema.get("x-kubernetes-group-version-kind")?.get(0)?;
    Some((gvk["group"].as_str()?, gvk["kind"].as_str()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_describe_every_served_kind_and_change_with_the_crds() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let index = raw(&s, home.path(), "/openapi/v3");
    assert!(
        index["paths"].get("api/v1").is_some() && index["paths"].get("apis/apps/v1").is_some(),
        "{index}"
    );
    assert!(index["paths"].get("apis/etcd.operator.dev/v1alpha1").is_none());
    let core_url = index["paths"]["api/v1"]["serverRelativeURL"].as_str().unwrap().to_owned();

    assert!(kubectl(&s, home.path(), &["apply", "-f", "-"], Some(&crds())).0);
    let index = raw(&s, home.path(), "/openapi/v3");
    let url = index["paths"]["apis/etcd.operator.dev/v1alpha1"]["serverRelativeURL"].as_str().unwrap();
    assert!(url.contains("?hash="), "{url}");
    assert_eq!(
        index["paths"]["api/v1"]["serverRelativeURL"],
        core_url.as_str(),
        "unchanged documents keep their hash"
    );
    let doc = raw(&s, home.path(), url);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let cluster = schemas.values().find(|v| gvk_of(v) == Some(("etcd.operator.dev", "EtcdCluster"))).unwrap();
    assert!(cluster["properties"]["spec"]["properties"].get("size").is_some());
    assert!(cluster["properties"]["metadata"]["allOf"][0]["$ref"].as_str().unwrap().ends_with(".ObjectMeta"));
    let patch =
        &doc["paths"]["/apis/etcd.operator.dev/v1alpha1/namespaces/{namespace}/etcdclusters/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "EtcdCluster");
    let params: Vec<&str> =
        patch["parameters"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(params.contains(&"fieldValidation") && params.contains(&"dryRun"), "{params:?}");
    // Every reference resolves inside the document.
    let text = doc.to_string();
    for target in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &target[..target.find('"').unwrap()];
        assert!(schemas.contains_key(name), "{name} is referred to but not defined");
    }
    // A stale link is sent on to the current document.
    let moved = raw(&s, home.path(), "/openapi/v3/apis/etcd.operator.dev/v1alpha1?hash=0000");
    assert_eq!(moved, doc);

    let v2 = raw(&s, home.path(), "/openapi/v2");
    assert_eq!(v2["swagger"], "2.0");
    let definitions = v2["definitions"].as_object().unwrap();
    let cm = &definitions["io.k8s.api.core.v1.ConfigMap"];
    assert_eq!(gvk_of(cm), Some(("", "ConfigMap")));
    assert_eq!(
        cm["properties"]["metadata"]["$ref"], "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "a described reference is written as Swagger 2.0 writes it"
    );
    assert!(definitions.values().any(|v| gvk_of(v) == Some(("etcd.operator.dev", "EtcdBackup"))));
}
