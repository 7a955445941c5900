//! The lifecycle's create, delete and cluster lock end to end over a scripted Kubernetes API
//! (GetClusterStatus's reads are in `status.rs`).

mod common;

use common::{demo, service};
use etcd_operator_api::cluster::ClusterPhase;
use etcd_operator_service::{ServiceConfig, ServiceError};
use scripted_api::*;
use serde_json::json;

const HOLDER: &str = "cluster-service";

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
