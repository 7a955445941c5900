//! Services end to end over a scripted Kubernetes API, and against
//! real etcd members for the status.

use etcd_fixture::EtcdCluster as Etcd;
use etcd_operator_api::cluster::ClusterPhase;
use etcd_operator_client::{etcd::EndpointRewrite, metrics::EtcdMetrics};
use etcd_operator_common::ClusterRef;
use etcd_operator_resource::{
    names::ClusterNames,
    templates::{BootstrapConfig, TemplateContext, statefulset},
};
use etcd_operator_service::{LifecycleService, ServiceConfig, ServiceError, Services};
use scripted_api::*;
use serde_json::json;

fn demo() -> ClusterRef {
    ClusterRef { namespace: "prod".into(), name: "demo".into() }
}

const HOLDER: &str = "cluster-service";

fn service(client: kube::Client, config: ServiceConfig) -> LifecycleService {
    Services::new(client, config, EtcdMetrics::default()).lifecycle
}

#[tokio::test]
async fn create_applies_every_owned_object_then_records_status() {
    let cluster = cluster_object(json!({"size": 3, "version": "3.5.17"}), None);
    // First seen: the security service records how its members speak (plaintext) before anything
    // mounts or listens, so a spec.tls added later is a move, not a surprise.
    let recorded = cluster_object(json!({"size": 3, "version": "3.5.17"}), Some(json!({"transport": {}})));
    let mut steps = lock_acquire();
    steps.extend([
        step("GET", CLUSTER, Reply::Ok(cluster.clone())),
        step("PATCH", format!("{CLUSTER}/status"), Reply::WithStatus(cluster.clone())),
        step("GET", CLUSTER, Reply::Ok(recorded.clone())),
        step("GET", CLUSTER, Reply::Ok(recorded.clone())),
        step("GET", STS, Reply::NotFound),
        step("GET", CM, Reply::NotFound),
        step("PATCH", PEER_SVC, Reply::Echo),
        step("PATCH", CLIENT_SVC, Reply::Echo),
        step("PATCH", METRICS_SVC, Reply::Echo),
        step("PATCH", CM, Reply::Echo),
        step("PATCH", STS, Reply::Echo),
        step("PATCH", PDB, Reply::Echo),
        step("PATCH", format!("{CLUSTER}/status"), Reply::WithStatus(recorded)),
    ]);
    steps.extend(lock_release());
    let (client, record, api) = scripted_api(steps);
    let outcome = service(client, ServiceConfig::default()).create_cluster(&demo(), None).await.unwrap();
    api.await.unwrap();

    assert!(outcome.requeue_after.is_some(), "a new cluster is not converged yet");
    // Skip the lock request at the start.
    let record: Vec<_> = record.lock().unwrap().iter().skip(1).cloned().collect();
    let transport = &record[1];
    assert!(transport.query.contains("fieldManager=etcd-operator%2Ftransport"), "{}", transport.query);
    assert_eq!(transport.body["status"], json!({"transport": {}}), "only its own field");
    let record: Vec<_> = record.into_iter().skip(3).collect();
    for write in record.iter().filter(|r| r.method == "PATCH" && !r.path.contains("/leases/")) {
        assert!(
            write.query.contains("fieldManager=etcd-operator%2Flifecycle"),
            "{}: {}",
            write.path,
            write.query
        );
        if !write.path.ends_with("/status") {
            assert_eq!(write.body["metadata"]["ownerReferences"][0]["kind"], "EtcdCluster", "{}", write.path);
            assert_eq!(write.body["metadata"]["ownerReferences"][0]["controller"], true);
        }
    }
    let cm = &record[6].body;
    assert_eq!(cm["data"]["ETCD_INITIAL_CLUSTER_STATE"], "new");
    assert_eq!(cm["data"]["ETCD_INITIAL_CLUSTER"].as_str().unwrap().split(',').count(), 3);
    let sts = &record[7].body;
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["serviceName"], "demo");
    assert_eq!(record[8].body["spec"]["minAvailable"], 2);
    let status = &record[9].body["status"];
    assert_eq!(status["phase"], "Creating");
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["operation"]["type"], "Create");
}

#[tokio::test]
async fn an_invalid_spec_is_reported_in_status_and_nothing_is_applied() {
    let mut cluster = cluster_object(json!({"size": 3, "version": "3.5.1"}), None);
    cluster["metadata"]["resourceVersion"] = json!("7");
    let mut read_again = cluster.clone();
    read_again["metadata"]["resourceVersion"] = json!("8");
    let mut steps = lock_acquire();
    steps.extend([
        step("GET", CLUSTER, Reply::Ok(cluster.clone())),
        step("GET", STS, Reply::NotFound),
        // Onto the cluster as read; something else changed it meanwhile (not its status), so it
        // is read again and the status lands onto it as it is now.
        step("PATCH", format!("{CLUSTER}/status"), Reply::Conflict),
        step("GET", CLUSTER, Reply::Ok(read_again)),
        step("PATCH", format!("{CLUSTER}/status"), Reply::WithStatus(cluster)),
    ]);
    steps.extend(lock_release());
    let (client, record, api) = scripted_api(steps);
    let outcome = service(client, ServiceConfig::default()).create_cluster(&demo(), None).await.unwrap();
    api.await.unwrap();
    assert_eq!(outcome.status.phase, ClusterPhase::Invalid);
    assert!(outcome.requeue_after.is_none());
    assert_eq!(record.lock().unwrap()[3].body["metadata"]["resourceVersion"], "7");
    let write = &record.lock().unwrap()[5].body;
    assert_eq!(write["metadata"]["resourceVersion"], "8", "only onto the cluster as read again: {write}");
    let status = &write["status"];
    let progressing =
        status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Progressing").unwrap();
    assert_eq!(progressing["reason"], "InvalidSpec");
    assert!(
        progressing["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.version: etcd 3.5.1 can lose committed writes")
    );
}

#[tokio::test]
async fn a_spec_from_the_api_is_validated_before_anything_is_written() {
    let (client, record, api) = scripted_api(vec![]);
    let spec =
        serde_json::from_value(json!({"size": 11, "version": "3.5.17", "storage": {"size": "0"}})).unwrap();
    let err =
        service(client, ServiceConfig::default()).create_cluster(&demo(), Some(spec)).await.unwrap_err();
    api.await.unwrap();
    let ServiceError::InvalidArgument(v) = err else { panic!("{err:?}") };
    let fields: Vec<_> = v.0.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["spec.size", "spec.storage.size"]);
    assert!(record.lock().unwrap().is_empty());
}

#[tokio::test]
async fn delete_of_a_cluster_not_being_deleted_is_refused_unless_forced_and_touches_nothing() {
    let live = cluster_object(json!({"size": 2, "version": "3.5.17"}), None);
    let mut steps = lock_acquire();
    steps.push(step("GET", CLUSTER, Reply::Ok(live)));
    steps.extend(lock_release());
    let (client, record, api) = scripted_api(steps);
    let err = service(client, ServiceConfig::default()).delete_cluster(&demo(), false).await.unwrap_err();
    api.await.unwrap();
    let ServiceError::FailedPrecondition(why) = err else { panic!("{err:?}") };
    assert!(why.contains("is not being deleted") && why.contains("force"), "{why}");
    // The only DELETE is of its own lock.
    assert!(record.lock().unwrap().iter().all(|r| r.method != "DELETE" || r.path == LOCK));
}

#[tokio::test]
async fn delete_removes_owned_objects_and_follows_the_pvc_policy() {
    let pvcs = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaimList", "metadata": {}, "items": [
        {"metadata": {"name": "data-demo-0", "namespace": "prod"}},
        {"metadata": {"name": "data-demo-1", "namespace": "prod"}}]});
    let retain = cluster_object(json!({"size": 2, "version": "3.5.17"}), None);
    let mut steps = lock_acquire();
    steps.extend([
        step("GET", CLUSTER, Reply::Ok(retain)),
        step("DELETE", PDB, Reply::NotFound),
        step("DELETE", STS, Reply::Ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))),
        step("DELETE", CLIENT_SVC, Reply::NotFound),
        step("DELETE", METRICS_SVC, Reply::NotFound),
        step("DELETE", PEER_SVC, Reply::NotFound),
        step("DELETE", CM, Reply::NotFound),
        step("GET", PVCS, Reply::Ok(pvcs.clone())),
        step("GET", STS, Reply::NotFound),
    ]);
    steps.extend(lock_release());
    let (client, _, api) = scripted_api(steps);
    // Forced: the EtcdCluster is not being deleted.
    let outcome = service(client, ServiceConfig::default()).delete_cluster(&demo(), true).await.unwrap();
    api.await.unwrap();
    assert!(outcome.done);
    assert_eq!(outcome.retained_pvcs, ["data-demo-0", "data-demo-1"]);

    let mut delete = cluster_object(
        json!({"size": 2, "version": "3.5.17", "pvcRetentionPolicy": {"whenDeleted": "Delete"}}),
        None,
    );
    delete["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    delete["metadata"]["finalizers"] = json!(["etcd.operator.dev/cleanup"]);
    let mut steps = lock_acquire();
    steps.extend([
        step("GET", CLUSTER, Reply::Ok(delete)),
        step("DELETE", PDB, Reply::NotFound),
        step("DELETE", STS, Reply::NotFound),
        step("DELETE", CLIENT_SVC, Reply::NotFound),
        step("DELETE", METRICS_SVC, Reply::NotFound),
        step("DELETE", PEER_SVC, Reply::NotFound),
        step("DELETE", CM, Reply::NotFound),
        step("GET", PVCS, Reply::Ok(pvcs)),
        step("DELETE", format!("{PVCS}/data-demo-0"), Reply::NotFound),
        step("DELETE", format!("{PVCS}/data-demo-1"), Reply::NotFound),
        step("GET", STS, Reply::NotFound),
    ]);
    steps.extend(lock_release());
    let (client, record, api) = scripted_api(steps);
    let outcome = service(client, ServiceConfig::default()).delete_cluster(&demo(), false).await.unwrap();
    api.await.unwrap();
    assert!(!outcome.done, "claims being deleted must be seen gone before the delete is done");
    assert!(outcome.retained_pvcs.is_empty());
    assert!(record.lock().unwrap()[8].query.contains("labelSelector=app.kubernetes.io%2Finstance%3Ddemo"));
}

#[tokio::test]
async fn a_cluster_locked_by_another_replica_is_aborted_and_untouched() {
    let (client, record, api) = scripted_api(vec![
        step("POST", LEASES, Reply::AlreadyExists),
        step("GET", LOCK, Reply::Ok(lease("replica-b", 5, 30))),
    ]);
    let err = service(client, ServiceConfig::default()).update_cluster(&demo(), None).await.unwrap_err();
    api.await.unwrap();
    let ServiceError::Aborted(message) = err else { panic!("{err:?}") };
    assert!(message.contains("replica-b"), "{message}");
    assert_eq!(record.lock().unwrap().len(), 2, "nothing but the lock was asked for");
}

#[tokio::test]
async fn a_crashed_holders_expired_lock_is_taken_over() {
    let cluster = cluster_object(json!({"size": 3, "version": "3.5.17", "paused": true}), None);
    // Its renewTime is a minute old by the holder's clock, but expiry is judged on ours: first
    // refused, then taken once this replica has seen it unchanged for the whole 1 s duration.
    let (client, record, api) = scripted_api(vec![
        step("POST", LEASES, Reply::AlreadyExists),
        step("GET", LOCK, Reply::Ok(lease("replica-b", 60, 1))),
        step("POST", LEASES, Reply::AlreadyExists),
        step("GET", LOCK, Reply::Ok(lease("replica-b", 60, 1))),
        step("PUT", LOCK, Reply::Echo),
        step("GET", CLUSTER, Reply::Ok(cluster.clone())),
        step("GET", STS, Reply::NotFound),
        step("PATCH", format!("{CLUSTER}/status"), Reply::WithStatus(cluster)),
        step("DELETE", LOCK, Reply::Ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))),
    ]);
    let service = service(client, ServiceConfig::default());
    let early = service.update_cluster(&demo(), None).await;
    assert!(matches!(early, Err(ServiceError::Aborted(ref m)) if m.contains("replica-b")), "{early:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let outcome = service.update_cluster(&demo(), None).await.unwrap();
    api.await.unwrap();
    assert_eq!(outcome.status.phase, ClusterPhase::Paused);
    let record = record.lock().unwrap();
    let takeover = &record[4].body;
    assert_eq!(takeover["spec"]["holderIdentity"], HOLDER);
    assert_eq!(takeover["metadata"]["resourceVersion"], "7", "the takeover is conditional on what was read");
    // The release deletes the Lease as the takeover wrote it (the scripted API's echo is at "1").
    assert_eq!(record[8].body["preconditions"]["resourceVersion"], "1");
}

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
