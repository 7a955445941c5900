//! GetClusterStatus over a scripted Kubernetes API: what it observes (against real etcd
//! members), what it records, and what it never writes over.

mod common;

use common::{demo, service};
use etcd_fixture::EtcdCluster as Etcd;
use etcd_operator_api::cluster::ClusterPhase;
use etcd_operator_client::etcd::EndpointRewrite;
use etcd_operator_resource::{
    names::ClusterNames,
    templates::{BootstrapConfig, TemplateContext, statefulset},
};
use etcd_operator_service::{ServiceConfig, ServiceError};
use scripted_api::*;
use serde_json::json;

/// Three real members named demo-0..2, and a service configuration that reaches them by their
/// DNS names (cluster DNS is not available here: each name points at its loopback port).
async fn real_members() -> (Etcd, ServiceConfig) {
    let names: Vec<String> = (0..3).map(|i| format!("demo-{i}")).collect();
    let etcd = Etcd::start_named(&names).await;
    etcd.wait_healthy().await;
    let mut config = ServiceConfig::default();
    let mut rewrite = EndpointRewrite::default();
    for m in etcd.members() {
        rewrite.insert(format!("{}.demo.prod.svc.cluster.local:2379", m.name), m.client_addr());
        rewrite.insert(m.client_url.trim_start_matches("http://"), m.client_addr());
    }
    config.etcd.rewrite = rewrite;
    (etcd, config)
}

/// The StatefulSet the lifecycle would have applied for `cluster` (3 members), with `ready` of
/// them passing readiness.
fn settled_statefulset(cluster: &serde_json::Value, ready: i32) -> serde_json::Value {
    let typed: etcd_operator_api::EtcdCluster = serde_json::from_value(cluster.clone()).unwrap();
    let cluster_names = ClusterNames::new("prod", "demo", "cluster.local");
    let ctx = TemplateContext::new(&typed, "cluster.local");
    let bootstrap = BootstrapConfig::new_cluster(&cluster_names, 3);
    let mut sts = serde_json::to_value(statefulset(&ctx, 3, &bootstrap).unwrap()).unwrap();
    sts["metadata"]["generation"] = json!(1);
    sts["status"] = json!({"replicas": 3, "readyReplicas": ready, "updatedReplicas": 3, "currentRevision": "r1", "updateRevision": "r1", "observedGeneration": 1});
    sts
}

#[tokio::test]
async fn status_tells_the_truth_from_real_etcd() {
    let (_etcd, config) = real_members().await;
    let cluster = cluster_object(json!({"size": 3, "version": "3.4.23"}), None);
    let mut steps = observing(&cluster, settled_statefulset(&cluster, 3));
    // Written onto the cluster as read before observing (nothing came between).
    steps.push(step("PATCH", format!("{CLUSTER}/status"), Reply::WithStatus(cluster)));
    let (client, record, api) = scripted_api(steps);
    let outcome = service(client, config).get_cluster_status(&demo()).await.unwrap();
    api.await.unwrap();

    let s = &outcome.status;
    assert_eq!(s.phase, ClusterPhase::Running, "{s:#?}");
    assert_eq!((s.ready_members, s.current_size), (3, 3));
    let mut member_names: Vec<_> = s.members.iter().map(|m| m.name.as_str()).collect();
    member_names.sort();
    assert_eq!(member_names, ["demo-0", "demo-1", "demo-2"]);
    assert_eq!(s.members.iter().filter(|m| m.is_leader).count(), 1);
    assert!(s.members.iter().all(|m| m.healthy && m.db_size_bytes.unwrap_or(0) > 0 && !m.id.is_empty()));
    assert!(s.cluster_id.as_deref().is_some_and(|id| id != "0"));
    assert!(s.current_version.as_deref().is_some_and(|v| v.starts_with("3.")));
    assert_eq!(record.lock().unwrap()[4].body["status"]["phase"], "Running");
}

/// With no member Ready, the pods are looked at first: while none is on a node nothing can
/// answer, so etcd is not asked (no client is built for it: at 1 000 Pending clusters, one per
/// look). Once one is on a node, etcd is asked — here real members, which answer.
#[tokio::test]
async fn etcd_is_asked_once_a_member_pod_is_on_a_node() {
    let (_etcd, config) = real_members().await;
    let cluster = cluster_object(json!({"size": 3, "version": "3.4.23"}), None);
    for node in [None, Some("node-a")] {
        let pods: Vec<_> = (0..3)
            .map(|i| {
                json!({"metadata": {"name": format!("demo-{i}"), "namespace": "prod"},
                            "spec": {"containers": [], "nodeName": node}})
            })
            .collect();
        let mut steps = observing(&cluster, settled_statefulset(&cluster, 0));
        steps[2] = step(
            "GET",
            "/api/v1/namespaces/prod/pods",
            Reply::Ok(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods})),
        );
        steps.push(step("PATCH", format!("{CLUSTER}/status"), Reply::WithStatus(cluster.clone())));
        let (client, record, api) = scripted_api(steps);
        let outcome = service(client, config.clone()).get_cluster_status(&demo()).await.unwrap();
        api.await.unwrap();
        let status = &record.lock().unwrap()[4].body["status"];
        let available =
            status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Available").unwrap();
        match node {
            None => {
                assert!(outcome.status.members.iter().all(|m| !m.healthy), "{:#?}", outcome.status);
                let message = available["message"].as_str().unwrap();
                assert!(message.contains("none of the 3 member pods is on a node yet"), "{message}");
            }
            Some(_) => {
                assert_eq!(outcome.status.members.len(), 3, "{:#?}", outcome.status);
                assert!(outcome.status.members.iter().all(|m| m.healthy), "{:#?}", outcome.status);
            }
        }
    }
}

/// A spec the running StatefulSet cannot take (admission's CEL stops it; a CRD installed without
/// those rules does not) reads InvalidSpec from GetClusterStatus as from the lifecycle, so the
/// health probes never report a refused change as accepted.
#[tokio::test]
async fn status_reports_what_the_statefulset_cannot_change_as_the_lifecycle_does() {
    let running = cluster_object(json!({"size": 3, "version": "3.4.23", "storage": {"size": "1Gi"}}), None);
    let typed: etcd_operator_api::EtcdCluster = serde_json::from_value(running).unwrap();
    let cluster_names = ClusterNames::new("prod", "demo", "cluster.local");
    let ctx = TemplateContext::new(&typed, "cluster.local");
    let sts = statefulset(&ctx, 3, &BootstrapConfig::new_cluster(&cluster_names, 3)).unwrap();
    let grown = cluster_object(json!({"size": 3, "version": "3.4.23", "storage": {"size": "2Gi"}}), None);
    let mut config = ServiceConfig::default();
    config.etcd.connect_timeout = std::time::Duration::from_millis(200);
    let mut steps = observing(&grown, serde_json::to_value(sts).unwrap());
    steps.push(step("PATCH", format!("{CLUSTER}/status"), Reply::WithStatus(grown)));
    let (client, record, api) = scripted_api(steps);
    let outcome = service(client, config).get_cluster_status(&demo()).await.unwrap();
    api.await.unwrap();
    assert_eq!(outcome.status.phase, ClusterPhase::Invalid, "{:#?}", outcome.status);
    let status = &record.lock().unwrap()[4].body["status"];
    let progressing =
        status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Progressing").unwrap();
    assert_eq!(progressing["reason"], "InvalidSpec");
    assert!(progressing["message"].as_str().unwrap().contains("spec.storage.size"), "{progressing}");
}

/// A probe that observed while another writer recorded a status (the lifecycle writing Running
/// from a newer observation) writes nothing: its older picture never sets the cluster back.
#[tokio::test]
async fn a_status_recorded_while_observing_is_never_overwritten_by_the_older_observation() {
    let mut cluster = cluster_object(json!({"size": 3, "version": "3.4.23"}), None);
    cluster["metadata"]["resourceVersion"] = json!("5");
    let typed: etcd_operator_api::EtcdCluster = serde_json::from_value(cluster.clone()).unwrap();
    let cluster_names = ClusterNames::new("prod", "demo", "cluster.local");
    let ctx = TemplateContext::new(&typed, "cluster.local");
    let sts = statefulset(&ctx, 3, &BootstrapConfig::new_cluster(&cluster_names, 3)).unwrap();
    let running = cluster_object(
        json!({"size": 3, "version": "3.4.23"}),
        Some(json!({"phase": "Running", "readyMembers": 3, "currentSize": 3})),
    );
    let mut config = ServiceConfig::default();
    config.etcd.connect_timeout = std::time::Duration::from_millis(200);
    let mut steps = observing(&cluster, serde_json::to_value(sts).unwrap());
    // Recorded by another writer while the members were asked: the write onto the first read
    // is refused, and the cluster read again.
    steps.push(step("PATCH", format!("{CLUSTER}/status"), Reply::Conflict));
    steps.push(step("GET", CLUSTER, Reply::Ok(running)));
    let (client, record, api) = scripted_api(steps);
    let outcome = service(client, config).get_cluster_status(&demo()).await.unwrap();
    api.await.unwrap();
    assert_eq!(outcome.status.phase, ClusterPhase::Running, "{:#?}", outcome.status);
    assert_eq!(outcome.status.ready_members, 3);
    assert!(outcome.requeue_after.is_some(), "looked at again soon");
    let record = record.lock().unwrap();
    let writes: Vec<_> = record.iter().filter(|r| r.method != "GET").collect();
    assert_eq!(writes.len(), 1, "nothing written over the newer status after the refusal");
    assert_eq!(writes[0].body["metadata"]["resourceVersion"], "5", "only onto the cluster as read");
}

/// The lifecycle too: a status recorded while it observed (scaling's "Running" as a restart
/// ends) stands, and the lifecycle looks again soon instead of writing what it saw before.
#[tokio::test]
async fn the_lifecycle_never_writes_an_older_observation_over_a_newer_status() {
    let paused = json!({"size": 3, "version": "3.5.17", "paused": true});
    let mut cluster = cluster_object(paused.clone(), None);
    cluster["metadata"]["resourceVersion"] = json!("5");
    let recorded =
        cluster_object(paused, Some(json!({"phase": "Running", "readyMembers": 3, "currentSize": 3})));
    let mut steps = lock_acquire();
    steps.extend([
        step("GET", CLUSTER, Reply::Ok(cluster)),
        step("GET", STS, Reply::NotFound),
        // The write lands only onto the cluster as read; the API server refuses it, since
        // another writer recorded a status meanwhile.
        step("PATCH", format!("{CLUSTER}/status"), Reply::Conflict),
        step("GET", CLUSTER, Reply::Ok(recorded)),
    ]);
    steps.extend(lock_release());
    let (client, record, api) = scripted_api(steps);
    let outcome = service(client, ServiceConfig::default()).update_cluster(&demo(), None).await.unwrap();
    api.await.unwrap();
    assert_eq!(outcome.status.phase, ClusterPhase::Running, "{:#?}", outcome.status);
    assert!(outcome.requeue_after.is_some(), "looked at again");
    let record = record.lock().unwrap();
    let writes: Vec<_> = record.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(writes.len(), 1, "nothing written over it after the refusal");
    assert_eq!(writes[0].body["metadata"]["resourceVersion"], "5", "only onto the cluster as read");
}

/// GetClusterStatus's default answers what is recorded: one read of the cluster (without a
/// watch cache to answer from), no StatefulSet read, no etcd call, no write; a converging phase
/// still asks the caller to look again.
#[tokio::test]
async fn a_recorded_status_read_is_one_read_and_touches_nothing_else() {
    let recorded = json!({"phase": "Updating", "readyMembers": 2, "currentSize": 3, "observedGeneration": 1});
    let cluster = cluster_object(json!({"size": 3, "version": "3.4.23"}), Some(recorded));
    let (client, record, api) = scripted_api(vec![step("GET", CLUSTER, Reply::Ok(cluster))]);
    let outcome = service(client, ServiceConfig::default()).recorded_cluster_status(&demo()).await.unwrap();
    api.await.unwrap();
    assert_eq!(record.lock().unwrap().len(), 1);
    assert_eq!((outcome.status.phase, outcome.status.ready_members), (ClusterPhase::Updating, 2));
    assert!(outcome.requeue_after.is_some(), "an updating cluster is looked at again");

    let (client, _, api) = scripted_api(vec![step("GET", CLUSTER, Reply::NotFound)]);
    let missing = service(client, ServiceConfig::default()).recorded_cluster_status(&demo()).await;
    api.await.unwrap();
    assert!(matches!(missing, Err(ServiceError::NotFound { .. })), "{missing:?}");
}
