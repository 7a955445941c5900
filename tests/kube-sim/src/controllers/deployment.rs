//! The Deployment controller, simplified: a Deployment owns its pods directly
//! (no ReplicaSets), named `<deployment>-<template hash>-<suffix>` and labelled
//! `pod-template-hash`; missing pods are created, surplus ones deleted (newest
//! first), and a changed template replaces pods one at a time once the others
//! are ready (RollingUpdate with maxSurge 1, maxUnavailable 0). Status carries
//! replicas, readyReplicas, availableReplicas, updatedReplicas and
//! observedGeneration. See the README for what this leaves out.

use serde_json::{Value, json};

use super::{
    changes::{Changes, Name},
    statefulset::{is_ready as ready, template_hash},
};
use crate::{
    objects::{self, Propagation},
    registry::Registry,
    store::{Key, Txn},
};

/// Reconciles the Deployments `changes` touched (every one, when it says everything).
pub fn reconcile_changed(registry: &Registry, txn: &mut Txn<'_>, changes: &Changes) {
    let deployments: Vec<Value> = if changes.everything {
        txn.list(RESOURCE, None)
    } else {
        let key = |(ns, name): &Name| (RESOURCE.to_owned(), ns.clone(), name.clone());
        changes.deployments.iter().filter_map(|n| txn.get(&key(n)).cloned()).collect()
    };
    for deployment in deployments {
        reconcile(registry, txn, &deployment);
    }
}

const RESOURCE: &str = "apps/deployments";

fn pod_key(namespace: &str, name: &str) -> Key {
    ("/pods".into(), namespace.into(), name.into())
}

fn reconcile(registry: &Registry, txn: &mut Txn<'_>, d: &Value) {
    if d["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let name = d["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let uid = d["metadata"]["uid"].clone();
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let template = &d["spec"]["template"];
    let hash = template_hash(template);
    let mut pods: Vec<Value> = txn
        .list("/pods", Some(namespace))
        .into_iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"].as_array().is_some_and(|r| r.iter().any(|o| o["uid"] == uid))
        })
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .collect();
    pods.sort_by(|a, b| {
        a["metadata"]["creationTimestamp"].as_str().cmp(&b["metadata"]["creationTimestamp"].as_str())
    });
    let current = |p: &Value| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str();
    let updated = pods.iter().filter(|p| current(p)).count();
    let outdated: Vec<&Value> = pods.iter().filter(|p| !current(p)).collect();
    let all_ready = pods.iter().all(ready);
    if pods.len() < replicas || (!outdated.is_empty() && pods.len() == replicas && all_ready) {
        // Missing pods, or one surge pod of the new template while the old ones still serve.
        create_pod(registry, txn, d, namespace, name, &hash, template);
    } else if pods.len() > replicas {
        // Surplus: outdated pods first (once the new ones are ready), else the newest.
        let victim = if updated >= replicas && pods.iter().filter(|p| current(p)).all(ready) {
            outdated.first().copied()
        } else if outdated.is_empty() {
            pods.last()
        } else {
            None
        };
        if let Some(pod) = victim {
            let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            objects::delete(txn, &pod_key(namespace, &pod_name), Propagation::Background);
        }
    }
    write_status(txn, d, namespace, &hash);
}

fn create_pod(
    registry: &Registry,
    txn: &mut Txn<'_>,
    d: &Value,
    namespace: &str,
    name: &str,
    hash: &str,
    template: &Value,
) {
    let pod_rt = registry.find("", "v1", "pods").expect("pods are served");
    let suffix = &objects::new_uid()[..5];
    let pod_name = format!("{name}-{hash}-{suffix}");
    let mut labels = template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert("pod-template-hash".into(), json!(hash));
    let owner = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                       "uid": d["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true});
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                     "annotations": template["metadata"]["annotations"], "ownerReferences": [owner]},
        "spec": template["spec"]});
    let mut created = objects::on_create(&pod_rt, pod);
    created["status"] = json!({"phase": "Pending"});
    txn.put(objects::key(&pod_rt, namespace, &pod_name), created);
}

fn write_status(txn: &mut Txn<'_>, d: &Value, namespace: &str, hash: &str) {
    let uid = &d["metadata"]["uid"];
    let pods: Vec<Value> = txn
        .list("/pods", Some(namespace))
        .into_iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"].as_array().is_some_and(|r| r.iter().any(|o| o["uid"] == *uid))
        })
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .collect();
    let ready_count = pods.iter().filter(|p| ready(p)).count();
    let updated = pods.iter().filter(|p| p["metadata"]["labels"]["pod-template-hash"] == hash).count();
    let wanted = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let available = ready_count as i64 >= wanted;
    let status = json!({
        "observedGeneration": d["metadata"]["generation"],
        "replicas": pods.len(),
        "readyReplicas": ready_count,
        "availableReplicas": ready_count,
        "updatedReplicas": updated,
        "unavailableReplicas": (wanted - ready_count as i64).max(0),
        "conditions": [{"type": "Available", "status": if available { "True" } else { "False" },
                        "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}],
    });
    if d["status"] != status {
        let key: Key =
            (RESOURCE.into(), namespace.into(), d["metadata"]["name"].as_str().unwrap_or_default().into());
        let mut next = d.clone();
        next["status"] = status;
        txn.put(key, next);
    }
}
