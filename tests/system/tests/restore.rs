//! Restoring a new cluster from a backup, against real etcd pods on kube-sim's
//! node: the source is verified before anything is created, each member's
//! restore agent (init container, this build's binary) fetches the snapshot
//! over gRPC and restores with etcd's own tool, and the new cluster holds
//! exactly the backed-up keys. Unusable backups start nothing. Needs root.

use std::time::Duration;

use etcd_operator_api::EtcdCluster;
use etcd_operator_api::{
    EtcdClusterSpec,
    cluster::{CONDITION_RESTORED, ClusterPhase, RestorePhase},
    condition::find,
};
use etcd_operator_common::ClusterRef;
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Secret},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams},
};
use system_tests::real::{RealCluster, spec};

fn restore_spec(size: i32, restore: serde_json::Value) -> EtcdClusterSpec {
    let mut spec = serde_json::to_value(spec(size)).unwrap();
    spec["restore"] = restore;
    serde_json::from_value(spec).unwrap()
}

async fn all_keys(etcd: &mut etcd_client::Client) -> Vec<(String, String)> {
    let resp = etcd.get("", Some(etcd_client::GetOptions::new().with_all_keys())).await.unwrap();
    resp.kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap().to_owned(), kv.value_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_backup_restores_into_a_new_cluster_key_by_key() {
    let rc = RealCluster::start(3, Duration::from_secs(10)).await;
    rc.write("data", 200).await;
    let mut etcd = rc.etcd().await;
    etcd.delete("data/0007", None).await.unwrap();
    etcd.put("config/answer", "42", None).await.unwrap();
    let taken = rc.backup("before").await;
    let expected = all_keys(&mut etcd).await;
    assert_eq!(expected.len(), 200);

    let restored = ClusterRef { namespace: "default".into(), name: "restored".into() };
    let spec = restore_spec(3, serde_json::json!({"backupName": "before"}));
    Box::pin(rc.services.lifecycle.create_cluster(&restored, Some(spec))).await.expect("CreateCluster");
    let out = rc
        .converge("the restored cluster running", Duration::from_secs(120), || {
            rc.services.lifecycle.update_cluster(&restored, None)
        })
        .await;
    let status = out.status;
    assert_eq!(status.phase, ClusterPhase::Running, "{status:?}");
    let record = status.restore.clone().expect("restore recorded");
    assert_eq!(record.phase, RestorePhase::Completed, "{record:?}");
    assert_eq!(record.sha256, taken.sha256);
    assert_eq!(record.revision, taken.revision);
    assert!(record.message.contains("restored from EtcdBackup before"), "{}", record.message);
    assert_eq!(find(&status.conditions, CONDITION_RESTORED).map(|c| c.reason.as_str()), Some("Completed"));
    let demo_id = rc.services.lifecycle.get_cluster_status(&rc.r).await.unwrap().status.cluster_id;
    assert_ne!(status.cluster_id, demo_id, "a restore is a new cluster, not a member of the old one");
    let secrets: Api<Secret> = Api::namespaced(rc.client.clone(), "default");
    assert!(secrets.get_opt("restored-restore").await.unwrap().is_none(), "the token is gone once restored");

    let mut copy = rc.etcd_of("restored", 3).await;
    assert_eq!(all_keys(&mut copy).await, expected, "every key and value, and nothing else");
    let revision = copy.get("config/answer", None).await.unwrap().header().unwrap().revision();
    assert!(revision >= taken.revision.unwrap(), "revisions never go back: {revision}");
    // The new cluster takes writes.
    copy.put("after/restore", "yes", None).await.unwrap();
}

#[tokio::test]
async fn an_unusable_backup_starts_nothing_and_says_why() {
    let rc = RealCluster::start(1, Duration::from_secs(10)).await;
    rc.write("data", 10).await;
    let taken = rc.backup("good").await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(rc.client.clone(), "default");

    let cases = [
        ("missing", serde_json::json!({"backupName": "no-such-backup"}), "BackupNotFound", "no-such-backup"),
        (
            "unchecked",
            serde_json::json!({"location": {"storage": {"volume": {"claimName": "backups"}}, "key": "default/loose.db"}}),
            "ChecksumMissing",
            "no checksum",
        ),
        ("corrupt", serde_json::json!({"backupName": "good"}), "BackupCorrupt", "corrupt"),
    ];
    // A plain file without a checksum next to it.
    std::fs::write(rc.backup_volume_root().join("backups/default/loose.db"), b"not a snapshot").unwrap();
    for (name, restore, reason, says) in cases {
        if name == "corrupt" {
            // One flipped byte in the stored snapshot.
            let path = rc.backup_volume_root().join("backups").join(taken.key.clone().unwrap());
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[100] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
        let r = ClusterRef { namespace: "default".into(), name: name.into() };
        let out = Box::pin(rc.services.lifecycle.create_cluster(&r, Some(restore_spec(1, restore))))
            .await
            .expect("accepted");
        let record = out.status.restore.clone().expect("restore recorded");
        assert_eq!(
            (record.phase, record.reason.as_str()),
            (RestorePhase::Refused, reason),
            "{name}: {record:?}"
        );
        assert!(record.message.contains(says), "{name}: {}", record.message);
        let condition = find(&out.status.conditions, CONDITION_RESTORED).expect("Restored condition");
        assert_eq!(condition.reason, reason);
        assert_eq!(out.status.phase, ClusterPhase::Pending);
        assert!(out.requeue_after.is_some(), "looked at again later");
        assert!(statefulsets.get_opt(name).await.unwrap().is_none(), "{name}: nothing may start");
    }
}

/// Runs `name` (one member, claims retained on deletion), writes `old/` keys, then deletes it
/// keeping its claim, as a user who deletes a cluster and creates one of the same name would.
async fn retained_claims_of(rc: &RealCluster, name: &str) -> Vec<String> {
    let r = ClusterRef { namespace: "default".into(), name: name.into() };
    let mut spec = serde_json::to_value(spec(1)).unwrap();
    spec["pvcRetentionPolicy"]["whenDeleted"] = "Retain".into();
    Box::pin(rc.services.lifecycle.create_cluster(&r, Some(serde_json::from_value(spec).unwrap())))
        .await
        .unwrap();
    rc.converge("the old cluster running", Duration::from_secs(60), || {
        rc.services.lifecycle.update_cluster(&r, None)
    })
    .await;
    let mut etcd = rc.etcd_of(name, 1).await;
    for i in 0..5 {
        etcd.put(format!("old/{i}"), "stale", None).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !Box::pin(rc.services.lifecycle.delete_cluster(&r, true)).await.unwrap().done {
        assert!(std::time::Instant::now() < deadline, "the old cluster was never deleted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let clusters: Api<EtcdCluster> = Api::namespaced(rc.client.clone(), "default");
    clusters.delete(name, &DeleteParams::default()).await.unwrap();
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    let _ = clusters.patch(name, &Default::default(), &kube::api::Patch::Merge(&patch)).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(rc.client.clone(), "default");
    let claims: Vec<String> = pvcs
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(claims, [format!("data-{name}-0")], "the claim is retained");
    claims
}

#[tokio::test]
async fn a_restore_onto_claims_an_earlier_cluster_left_is_refused_or_clears_them_on_request() {
    let rc = RealCluster::start(1, Duration::from_secs(10)).await;
    rc.write("data", 10).await;
    rc.backup("good").await;
    let claims = retained_claims_of(&rc, "again").await;
    let r = ClusterRef { namespace: "default".into(), name: "again".into() };
    let statefulsets: Api<StatefulSet> = Api::namespaced(rc.client.clone(), "default");

    // Refused, naming the claims and both ways out; nothing starts.
    let restore = serde_json::json!({"backupName": "good"});
    let out =
        Box::pin(rc.services.lifecycle.create_cluster(&r, Some(restore_spec(1, restore)))).await.unwrap();
    let record = out.status.restore.clone().expect("restore recorded");
    assert_eq!(
        (record.phase, record.reason.as_str()),
        (RestorePhase::Refused, "RetainedClaims"),
        "{record:?}"
    );
    assert!(
        record.message.contains(&claims[0]) && record.message.contains("clearRetainedClaims"),
        "{}",
        record.message
    );
    assert!(statefulsets.get_opt("again").await.unwrap().is_none(), "nothing may start on old data");

    // Created again with the option: the claim is deleted first, then the backup is restored.
    let clusters: Api<EtcdCluster> = Api::namespaced(rc.client.clone(), "default");
    clusters.delete("again", &DeleteParams::default()).await.unwrap();
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    let _ = clusters.patch("again", &Default::default(), &kube::api::Patch::Merge(&patch)).await;
    let restore = serde_json::json!({"backupName": "good", "clearRetainedClaims": true});
    Box::pin(rc.services.lifecycle.create_cluster(&r, Some(restore_spec(1, restore)))).await.unwrap();
    let out = rc
        .converge("the restored cluster running", Duration::from_secs(120), || {
            rc.services.lifecycle.update_cluster(&r, None)
        })
        .await;
    let record = out.status.restore.expect("restore recorded");
    assert_eq!(record.phase, RestorePhase::Completed, "{record:?}");
    let mut etcd = rc.etcd_of("again", 1).await;
    let keys: Vec<String> = all_keys(&mut etcd).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.iter().filter(|k| k.starts_with("data/")).count(), 10, "the backup's data");
    assert!(!keys.iter().any(|k| k.starts_with("old/")), "none of the old cluster's: {keys:?}");
}

#[tokio::test]
async fn a_namespace_never_reaches_another_namespaces_backups() {
    use k8s_openapi::api::core::v1::Namespace;
    let rc = RealCluster::start(1, Duration::from_secs(10)).await;
    rc.write("data", 10).await;
    let taken = rc.backup("good").await;
    let key = taken.key.clone().expect("key");
    assert!(key.starts_with("default/demo/"), "{key}");
    let namespaces: Api<Namespace> = Api::all(rc.client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "team-b"}})).unwrap();
    namespaces.create(&Default::default(), &ns).await.unwrap();
    let statefulsets: Api<StatefulSet> = Api::namespaced(rc.client.clone(), "team-b");

    // Same claim name, another namespace's key, and traversal out of the own prefix.
    let cases = [
        ("theirs", key.clone(), "KeyOutsideNamespace", "outside namespace team-b"),
        ("escape", format!("team-b/../{key}"), "KeyOutsideNamespace", "spec.restore.location.key"),
        (
            "unmapped",
            "team-b/demo/x/snapshot.db".to_owned(),
            "StorageUnusable",
            "not mounted for namespace team-b",
        ),
    ];
    for (name, key, reason, says) in cases {
        let r = ClusterRef { namespace: "team-b".into(), name: name.into() };
        let location =
            serde_json::json!({"location": {"storage": {"volume": {"claimName": "backups"}}, "key": key}});
        let out = Box::pin(rc.services.lifecycle.create_cluster(&r, Some(restore_spec(1, location))))
            .await
            .expect("accepted");
        let record = out.status.restore.expect("restore recorded");
        assert_eq!(
            (record.phase, record.reason.as_str()),
            (RestorePhase::Refused, reason),
            "{name}: {record:?}"
        );
        assert!(record.message.contains(says), "{name}: {}", record.message);
        assert!(statefulsets.get_opt(name).await.unwrap().is_none(), "{name}: nothing may start");
    }

    // A claim name that would leave the mounted claims is refused at admission, naming the field.
    let backups: Api<etcd_operator_api::EtcdBackup> = Api::namespaced(rc.client.clone(), "team-b");
    let traversal: etcd_operator_api::EtcdBackup = serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackup", "metadata": {"name": "up"},
        "spec": {"clusterName": "demo", "storage": {"volume": {"claimName": "../default/backups"}}}
    }))
    .unwrap();
    let refused = backups.create(&Default::default(), &traversal).await.unwrap_err().to_string();
    assert!(refused.contains("claimName must be a DNS-1123 subdomain"), "{refused}");
}

/// This file runs twice, as written and as its TLS variant (`*_tls_variant` in Cargo.toml).
#[test]
fn runs_the_variant_its_target_names() {
    system_tests::secure::assert_runs_the_variant_of(env!("CARGO_CRATE_NAME"));
}
