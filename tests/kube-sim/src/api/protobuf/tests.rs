//! Bodies encoded by prost with k8s-pb's messages (an encoder nobody here wrote), read back.

use k8s_pb::{
    api::{apps::v1 as apps, authentication::v1 as authn, core::v1 as core},
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1 as meta,
        runtime::{TypeMeta, Unknown},
        util::intstr::IntOrString,
    },
};
use prost::Message;
use serde_json::json;

use super::object;

fn envelope(api_version: &str, kind: &str, message: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
        raw: Some(message.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [b"k8s\0".as_slice(), &unknown.encode_to_vec()].concat()
}

fn meta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: Some(name.into()),
        // Go's encoder writes plain string fields even when empty.
        generate_name: Some(String::new()),
        labels: [("team".to_owned(), "db".to_owned())].into(),
        creation_timestamp: Some(meta::Time { seconds: Some(0), nanos: Some(0) }),
        ..Default::default()
    })
}

#[test]
fn a_secret_and_a_config_map_read_as_their_json() {
    let secret = core::Secret {
        metadata: meta("s"),
        data: [("password".to_owned(), b"\x00hunter2".to_vec())].into(),
        r#type: Some("Opaque".into()),
        ..Default::default()
    };
    let read = object(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        read,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"team": "db"}},
               "data": {"password": "AGh1bnRlcjI="}, "type": "Opaque"})
    );
    let cm = core::ConfigMap {
        metadata: meta("c"),
        data: [("a".to_owned(), "b".to_owned()), ("empty".to_owned(), String::new())].into(),
        immutable: Some(false),
        ..Default::default()
    };
    let read = object(&envelope("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(read["data"], json!({"a": "b", "empty": ""}));
    assert_eq!(read["immutable"], false, "a set bool is kept, false or not");
}

#[test]
fn a_deployment_keeps_its_numbers_quantities_int_or_strings_and_lists() {
    let container = core::Container {
        name: Some("c".into()),
        image: Some("busybox".into()),
        args: vec!["sleep".into(), "1d".into()],
        ports: vec![core::ContainerPort { container_port: Some(8080), ..Default::default() }],
        resources: Some(core::ResourceRequirements {
            requests: [("cpu".to_owned(), Quantity { string: Some("250m".into()) })].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: meta("d"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some("RollingUpdate".into()),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("25%".into()),
                    }),
                    max_unavailable: Some(IntOrString { r#type: Some(0), int_val: Some(1), str_val: None }),
                }),
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta::default()),
                spec: Some(core::PodSpec { containers: vec![container], ..Default::default() }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let read = object(&envelope("apps/v1", "Deployment", &deployment)).unwrap();
    let spec = &read["spec"];
    assert_eq!(spec["replicas"], 0, "an explicit zero stays");
    assert_eq!(spec["strategy"]["rollingUpdate"], json!({"maxSurge": "25%", "maxUnavailable": 1}));
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(c["args"], json!(["sleep", "1d"]));
    assert_eq!(c["ports"], json!([{"containerPort": 8080}]));
    assert_eq!(c["resources"], json!({"requests": {"cpu": "250m"}}));
    assert_eq!(spec["template"]["metadata"], json!({}), "an empty message is an empty object");
}

#[test]
fn a_token_request_and_delete_options_name_their_fields_as_json_does() {
    let request = authn::TokenRequest {
        metadata: meta("sa"),
        spec: Some(authn::TokenRequestSpec {
            audiences: vec!["etcd-operator".into(), "x".into()],
            expiration_seconds: Some(86_400),
            bound_object_ref: Some(authn::BoundObjectReference {
                kind: Some("Pod".into()),
                name: Some("p".into()),
                ..Default::default()
            }),
        }),
        status: Some(authn::TokenRequestStatus {
            token: Some(String::new()),
            expiration_timestamp: Some(meta::Time { seconds: Some(1_800_000_000), nanos: Some(0) }),
        }),
    };
    let read = object(&envelope("authentication.k8s.io/v1", "TokenRequest", &request)).unwrap();
    assert_eq!(read["spec"]["audiences"], json!(["etcd-operator", "x"]));
    assert_eq!(read["spec"]["expirationSeconds"], 86_400);
    assert_eq!(read["spec"]["boundObjectRef"], json!({"kind": "Pod", "name": "p"}));
    assert_eq!(read["status"]["expirationTimestamp"], "2027-01-15T08:00:00Z");
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: Some("Foreground".into()),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let read = object(&envelope("v1", "DeleteOptions", &options)).unwrap();
    assert_eq!(read["gracePeriodSeconds"], 0);
    assert_eq!(read["propagationPolicy"], "Foreground");
    assert_eq!(read["dryRun"], json!(["All"]));
}

#[test]
fn what_is_not_an_envelope_is_refused_with_why() {
    for (body, why) in [
        (b"{\"kind\": \"Secret\"}".to_vec(), "no k8s\\0 envelope"),
        (b"k8s\0\x12\x05ab".to_vec(), "truncated"),
        (
            envelope("v1", "NoSuchKind", &core::Secret::default()),
            "no protobuf message api.core.v1.NoSuchKind",
        ),
    ] {
        let e = object(&body).unwrap_err();
        assert!(e.code == 400 && e.message.contains(why), "{}", e.message);
    }
}

/// The body of an envelope, as prost reads it with k8s-pb's message.
fn unwrapped<M: Message + Default>(body: &[u8]) -> (TypeMeta, M) {
    let unknown = Unknown::decode(body.strip_prefix(b"k8s\0").expect("the envelope's magic")).unwrap();
    (unknown.type_meta.unwrap(), M::decode(unknown.raw.unwrap().as_slice()).unwrap())
}

#[test]
fn answers_are_written_as_prost_reads_them_and_read_back_the_same() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns", "labels": {"app": "d"}, "creationTimestamp": "2026-12-01T17:00:00Z",
                     "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "busybox",
                     "ports": [{"containerPort": 8080}], "resources": {"limits": {"memory": "64Mi"}}}],
                     "terminationGracePeriodSeconds": -1}}},
        "status": {"conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2026-12-01T17:00:01Z"}]},
    });
    let body = super::envelope(&deployment).unwrap();
    let (type_meta, read): (_, apps::Deployment) = unwrapped(&body);
    assert_eq!(
        (type_meta.api_version.as_deref(), type_meta.kind.as_deref()),
        (Some("apps/v1"), Some("Deployment"))
    );
    let spec = read.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(0));
    let surge = spec.strategy.as_ref().unwrap().rolling_update.as_ref().unwrap().max_surge.as_ref().unwrap();
    assert_eq!((surge.r#type, surge.str_val.as_deref()), (Some(1), Some("25%")));
    let pod = spec.template.as_ref().unwrap().spec.as_ref().unwrap();
    assert_eq!(pod.termination_grace_period_seconds, Some(-1), "a negative number survives");
    assert_eq!(
        pod.containers[0].resources.as_ref().unwrap().limits["memory"].string.as_deref(),
        Some("64Mi")
    );
    let meta = read.metadata.as_ref().unwrap();
    assert_eq!(meta.creation_timestamp.unwrap().seconds, Some(1_796_144_400));
    let fields = meta.managed_fields[0].fields_v1.as_ref().unwrap().raw.as_deref().unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(fields).unwrap(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    // And back: what was written reads as what was meant.
    assert_eq!(object(&body).unwrap(), deployment);
}

#[test]
fn a_list_and_a_secret_keep_their_items_and_bytes() {
    let list = json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {"resourceVersion": "7", "continue": "2:7", "remainingItemCount": 3},
        "items": [{"metadata": {"name": "a"}, "data": {"k": "AGh1bnRlcjI="}, "type": "Opaque"}]});
    let body = super::envelope(&list).unwrap();
    let (_, read): (_, core::SecretList) = unwrapped(&body);
    assert_eq!(read.metadata.as_ref().unwrap().remaining_item_count, Some(3));
    assert_eq!(read.items[0].data["k"], b"\x00hunter2");
    let mut back = object(&body).unwrap();
    back["items"][0].as_object_mut().unwrap().retain(|_, v| !v.is_null());
    assert_eq!(back, list);
}
