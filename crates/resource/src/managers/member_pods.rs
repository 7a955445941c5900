//! Listing member pods with only the fields an observation reads. An observation lists a
//! cluster's pods at every probe and every reconcile; decoded whole, each pod carries its spec,
//! its managed fields (a JSON tree per writer) and every condition, most of a busy
//! cluster-service's decoding. Fields not named here are skipped while parsing, never allocated.

use std::collections::BTreeMap;

use k8s_openapi::{
    ListableResource, Metadata, NamespaceResourceScope, Resource,
    api::core::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStatus, Pod, PodCondition, PodSpec,
        PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use kube::api::Api;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Manager;
use crate::ResourceError;

impl Manager<Pod> {
    /// The pods matching `selector`, each with only: name, namespace, uid, labels, deletion
    /// timestamp; its node; the init containers' names and arguments; the conditions' types and
    /// statuses; the containers' names, restart counts and whether each runs.
    pub async fn list_members(&self, selector: &str) -> Result<Vec<Pod>, ResourceError> {
        let api: Api<MemberPod> = Api::namespaced(self.api.clone().into_client(), &self.namespace);
        Ok(self.list_as(&api, selector).await?.into_iter().map(|p| p.0).collect())
    }
}

/// A Pod decoded from the fields [`Manager::list_members`] names.
#[derive(Clone, Debug)]
struct MemberPod(Pod);

impl Resource for MemberPod {
    const API_VERSION: &'static str = Pod::API_VERSION;
    const GROUP: &'static str = Pod::GROUP;
    const KIND: &'static str = Pod::KIND;
    const VERSION: &'static str = Pod::VERSION;
    const URL_PATH_SEGMENT: &'static str = Pod::URL_PATH_SEGMENT;
    type Scope = NamespaceResourceScope;
}

impl ListableResource for MemberPod {
    const LIST_KIND: &'static str = Pod::LIST_KIND;
}

impl Metadata for MemberPod {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

impl Serialize for MemberPod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    metadata: Meta,
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    deletion_timestamp: Option<Time>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    init_containers: Option<Vec<Named>>,
    node_name: Option<String>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
    args: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    conditions: Option<Vec<Condition>>,
    container_statuses: Option<Vec<Running>>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Running {
    name: String,
    #[serde(default)]
    restart_count: i32,
    state: Option<State>,
}

#[derive(Deserialize)]
struct State {
    running: Option<serde::de::IgnoredAny>,
}

impl<'de> Deserialize<'de> for MemberPod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Wire { metadata: m, spec, status } = Wire::deserialize(deserializer)?;
        let metadata = ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            labels: m.labels,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        };
        let spec = spec.map(|s| PodSpec {
            init_containers: s.init_containers.map(|c| {
                c.into_iter()
                    .map(|c| Container { name: c.name, args: c.args, ..Container::default() })
                    .collect()
            }),
            node_name: s.node_name,
            ..PodSpec::default()
        });
        let status = status.map(|s| PodStatus {
            conditions: s.conditions.map(|c| {
                c.into_iter()
                    .map(|c| PodCondition { type_: c.type_, status: c.status, ..PodCondition::default() })
                    .collect()
            }),
            container_statuses: s.container_statuses.map(|c| c.into_iter().map(container_status).collect()),
            ..PodStatus::default()
        });
        Ok(Self(Pod { metadata, spec, status }))
    }
}

fn container_status(c: Running) -> ContainerStatus {
    let running = c.state.and_then(|s| s.running).map(|_| ContainerStateRunning::default());
    ContainerStatus {
        name: c.name,
        restart_count: c.restart_count,
        state: Some(ContainerState { running, ..ContainerState::default() }),
        ..ContainerStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member pod as the API server answers it, decoded both ways: what the slim decoding keeps
    /// reads the same as the whole pod.
    #[test]
    fn a_member_pod_keeps_what_an_observation_reads() {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "demo-1", "namespace": "default", "uid": "u-1", "resourceVersion": "42",
                "labels": {"app": "etcd", "controller-revision-hash": "demo-7c9"},
                "deletionTimestamp": "2026-12-03T10:00:00Z",
                "managedFields": [{"manager": "kubelet", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}],
                "annotations": {"a": "b"}
            },
            "spec": {
                "nodeName": "node-a",
                "initContainers": [{"name": "prepare-data", "image": "agent", "args": ["--etcd-version=3.5.17"]}],
                "containers": [{"name": "etcd", "image": "etcd", "env": [{"name": "X", "value": "y"}]}]
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-03T09:00:00Z"}],
                "containerStatuses": [
                    {"name": "etcd", "restartCount": 2, "ready": true, "image": "etcd", "imageID": "", "state": {"running": {"startedAt": "2026-12-03T09:00:00Z"}}},
                    {"name": "sidecar", "restartCount": 0, "ready": false, "image": "s", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ]
            }
        });
        let whole: Pod = serde_json::from_value(json.clone()).unwrap();
        let MemberPod(slim) = serde_json::from_value(json).unwrap();
        assert_eq!(slim.metadata.name, whole.metadata.name);
        assert_eq!(slim.metadata.uid, whole.metadata.uid);
        assert_eq!(slim.metadata.labels, whole.metadata.labels);
        assert_eq!(slim.metadata.deletion_timestamp, whole.metadata.deletion_timestamp);
        assert_eq!(slim.metadata.managed_fields, None);
        assert_eq!(slim.spec.as_ref().unwrap().node_name.as_deref(), Some("node-a"));
        let version =
            |p: &Pod| crate::templates::etcd_version_of(p.spec.as_ref().unwrap()).map(str::to_owned);
        assert_eq!(version(&slim).as_deref(), Some("3.5.17"));
        assert_eq!(version(&slim), version(&whole));
        let status = slim.status.unwrap();
        let condition = &status.conditions.unwrap()[0];
        assert_eq!((condition.type_.as_str(), condition.status.as_str()), ("Ready", "True"));
        let containers = status.container_statuses.unwrap();
        assert_eq!(containers[0].restart_count, 2);
        assert!(containers[0].state.as_ref().unwrap().running.is_some());
        assert!(containers[1].state.as_ref().unwrap().running.is_none());
    }

    /// A pod the API server has not scheduled yet: no status, no init containers.
    #[test]
    fn a_pending_pod_decodes() {
        let json = serde_json::json!({"metadata": {"name": "demo-0"}, "spec": {"containers": []}});
        let MemberPod(pod) = serde_json::from_value(json).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("demo-0"));
        assert!(pod.status.is_none());
        assert_eq!(pod.spec.unwrap().node_name, None);
    }
}
