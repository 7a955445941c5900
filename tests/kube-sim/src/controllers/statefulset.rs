//! The StatefulSet controller: ordinal pods, OrderedReady and Parallel
//! management, volumeClaimTemplates with the PVC retention policy, ordered
//! scale down, rolling updates with partition, and status.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::changes::{Changes, Name};
use crate::{
    objects::{self, Propagation},
    registry::Registry,
    store::{Key, Txn},
};

/// Reconciles the StatefulSets `changes` touched (every one, when it says everything).
pub fn reconcile_changed(registry: &Registry, txn: &mut Txn<'_>, changes: &Changes) {
    let mut names: BTreeSet<Name> = changes.statefulsets.clone();
    let namespaces: Vec<Option<&str>> = match changes.everything {
        true => vec![None],
        false => changes.claim_namespaces.iter().map(|ns| Some(ns.as_str())).collect(),
    };
    for ns in namespaces {
        names.extend(txn.scan(RESOURCE, ns).map(|sts| {
            let m = &sts["metadata"];
            (
                m["namespace"].as_str().unwrap_or_default().to_owned(),
                m["name"].as_str().unwrap_or_default().to_owned(),
            )
        }));
    }
    for (namespace, name) in names {
        if let Some(sts) = txn.get(&(RESOURCE.into(), namespace, name)).cloned() {
            reconcile(registry, txn, &sts);
        }
    }
}

const RESOURCE: &str = "apps/statefulsets";

/// Whether a pod is Ready and not being deleted.
pub(super) fn is_ready(pod: &Value) -> bool {
    pod["metadata"].get("deletionTimestamp").is_none()
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn owner_ref(sts: &Value, controller: bool) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": sts["metadata"]["name"],
           "uid": sts["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": true})
}

fn owned_by(object: &Value, uid: &Value) -> bool {
    object["metadata"]["ownerReferences"].as_array().is_some_and(|r| r.iter().any(|o| o["uid"] == *uid))
}

/// The revision name of a pod template, as `controller-revision-hash` labels carry it.
pub fn revision(name: &str, template: &Value) -> String {
    format!("{name}-{}", template_hash(template))
}

/// The hash of a pod template (as `pod-template-hash` labels carry it).
pub fn template_hash(template: &Value) -> String {
    fnv_hex(&serde_json::to_string(template).unwrap_or_default())
}

fn claim_name(claim: &Value, sts: &str, ordinal: i64) -> String {
    format!("{}-{sts}-{ordinal}", claim["metadata"]["name"].as_str().unwrap_or("data"))
}

struct Spec<'a> {
    name: &'a str,
    namespace: &'a str,
    replicas: i64,
    parallel: bool,
    template: &'a Value,
    claims: Vec<Value>,
    revision: String,
}

fn reconcile(registry: &Registry, txn: &mut Txn<'_>, sts: &Value) {
    if sts["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let spec = &sts["spec"];
    let name = sts["metadata"]["name"].as_str().unwrap_or_default();
    let s = Spec {
        name,
        namespace: sts["metadata"]["namespace"].as_str().unwrap_or_default(),
        replicas: spec["replicas"].as_i64().unwrap_or(1),
        parallel: spec["podManagementPolicy"] == "Parallel",
        template: &spec["template"],
        claims: spec["volumeClaimTemplates"].as_array().cloned().unwrap_or_default(),
        revision: revision(name, &spec["template"]),
    };
    let pods: BTreeMap<i64, Value> = members(txn, sts, &s).into_iter().map(|(o, p)| (o, p.clone())).collect();

    create_missing(registry, txn, sts, &s, &pods);
    recreate_claims_of_pending_pods(registry, txn, sts, &s, &pods);
    scale_down(txn, sts, &s, &pods);
    if spec["updateStrategy"]["type"] != "OnDelete" {
        roll(txn, &s, &pods, spec["updateStrategy"]["rollingUpdate"]["partition"].as_i64().unwrap_or(0));
    }
    write_status(txn, sts, &s);
}

/// The set's pods by ordinal: as Kubernetes' controller, only pods it owns named
/// `<set>-<ordinal>` (so only those names are visited).
fn members<'t>(txn: &'t Txn<'_>, sts: &Value, s: &Spec<'_>) -> Vec<(i64, &'t Value)> {
    let uid = sts["metadata"]["uid"].clone();
    let prefix = format!("{}-", s.name);
    txn.scan_named("/pods", s.namespace, &prefix)
        .filter(|p| owned_by(p, &uid))
        .filter_map(|p| Some((p["metadata"]["name"].as_str()?.strip_prefix(&prefix)?.parse().ok()?, p)))
        .collect()
}

fn create_missing(
    registry: &Registry,
    txn: &mut Txn<'_>,
    sts: &Value,
    s: &Spec<'_>,
    pods: &BTreeMap<i64, Value>,
) {
    let pod_rt = registry.find("", "v1", "pods").expect("pods are served");
    for ordinal in 0..s.replicas {
        if pods.contains_key(&ordinal) {
            continue;
        }
        // OrderedReady: a pod is created only when every lower ordinal is running and ready.
        if !s.parallel && (0..ordinal).any(|j| !pods.get(&j).is_some_and(is_ready)) {
            return;
        }
        let pod_name = format!("{}-{ordinal}", s.name);
        let mut volumes = s.template["spec"]["volumes"].as_array().cloned().unwrap_or_default();
        ensure_claims(registry, txn, sts, s, ordinal);
        for claim in &s.claims {
            let pvc_name = claim_name(claim, s.name, ordinal);
            let volume_name = claim["metadata"]["name"].clone();
            volumes.retain(|v| v["name"] != volume_name);
            volumes.push(json!({"name": volume_name, "persistentVolumeClaim": {"claimName": pvc_name}}));
        }
        let mut labels = s.template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
        labels.insert("statefulset.kubernetes.io/pod-name".into(), json!(pod_name));
        labels.insert("controller-revision-hash".into(), json!(s.revision));
        labels.insert("apps.kubernetes.io/pod-index".into(), json!(ordinal.to_string()));
        let mut pod_spec = s.template["spec"].clone();
        pod_spec["hostname"] = json!(pod_name);
        pod_spec["subdomain"] = sts["spec"]["serviceName"].clone();
        pod_spec["volumes"] = json!(volumes);
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": s.namespace, "labels": labels,
                         "annotations": s.template["metadata"]["annotations"],
                         "ownerReferences": [owner_ref(sts, true)]},
            "spec": pod_spec});
        let mut created = objects::on_create(&pod_rt, pod);
        created["status"] = json!({"phase": "Pending"});
        txn.put(objects::key(&pod_rt, s.namespace, &pod_name), created);
        if !s.parallel {
            return;
        }
    }
}

/// Creates the claims of ordinal `ordinal` that do not exist (or only remain until their pod is gone).
fn ensure_claims(registry: &Registry, txn: &mut Txn<'_>, sts: &Value, s: &Spec<'_>, ordinal: i64) {
    let pvc_rt = registry.find("", "v1", "persistentvolumeclaims").expect("PVCs are served");
    let delete_with_set = sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete";
    for claim in &s.claims {
        let pvc_name = claim_name(claim, s.name, ordinal);
        let key = objects::key(&pvc_rt, s.namespace, &pvc_name);
        if txn.get(&key).is_some() {
            continue;
        }
        let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": pvc_name, "namespace": s.namespace,
                         "labels": s.template["metadata"]["labels"]},
            "spec": claim["spec"], "status": {"phase": "Bound"}});
        if delete_with_set {
            pvc["metadata"]["ownerReferences"] = json!([owner_ref(sts, false)]);
        }
        let mut created = objects::on_create(&pvc_rt, pvc);
        created["status"] = json!({"phase": "Bound"});
        txn.put(key, created);
    }
}

/// A pod that waits for a claim deleted after the pod was created gets the claim again, as
/// Kubernetes' StatefulSet controller recreates missing claims of Pending pods.
fn recreate_claims_of_pending_pods(
    registry: &Registry,
    txn: &mut Txn<'_>,
    sts: &Value,
    s: &Spec<'_>,
    pods: &BTreeMap<i64, Value>,
) {
    for (ordinal, pod) in pods {
        if pod["status"]["phase"] == "Pending" && pod["metadata"].get("deletionTimestamp").is_none() {
            ensure_claims(registry, txn, sts, s, *ordinal);
        }
    }
}

fn pod_key(namespace: &str, name: &str) -> Key {
    ("/pods".into(), namespace.into(), name.into())
}

fn scale_down(txn: &mut Txn<'_>, sts: &Value, s: &Spec<'_>, pods: &BTreeMap<i64, Value>) {
    let delete_claims = sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Delete";
    // Highest ordinal first; OrderedReady removes one at a time.
    for (ordinal, pod) in pods.iter().rev().filter(|(o, _)| **o >= s.replicas) {
        if pod["metadata"].get("deletionTimestamp").is_some() {
            if !s.parallel {
                return;
            }
            continue;
        }
        if delete_claims {
            for claim in &s.claims {
                let key: Key = (
                    "/persistentvolumeclaims".into(),
                    s.namespace.into(),
                    claim_name(claim, s.name, *ordinal),
                );
                if let Some(mut pvc) = txn.get(&key).cloned() {
                    let pod_ref = json!({"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                         "uid": pod["metadata"]["uid"], "blockOwnerDeletion": true});
                    pvc["metadata"]["ownerReferences"] = json!([pod_ref]);
                    txn.put(key, pvc);
                }
            }
        }
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        objects::delete(txn, &pod_key(s.namespace, name), Propagation::Background);
        if !s.parallel {
            return;
        }
    }
}

fn roll(txn: &mut Txn<'_>, s: &Spec<'_>, pods: &BTreeMap<i64, Value>, partition: i64) {
    // Only when every wanted pod exists and is ready: one pod is replaced at a time.
    let settled = (0..s.replicas).all(|o| pods.get(&o).is_some_and(is_ready));
    if !settled {
        return;
    }
    let outdated = pods
        .iter()
        .rev()
        .filter(|(o, _)| **o >= partition && **o < s.replicas)
        .find(|(_, p)| p["metadata"]["labels"]["controller-revision-hash"] != s.revision.as_str());
    if let Some((_, pod)) = outdated {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        objects::delete(txn, &pod_key(s.namespace, name), Propagation::Background);
    }
}

fn write_status(txn: &mut Txn<'_>, sts: &Value, s: &Spec<'_>) {
    let pods: Vec<&Value> = members(txn, sts, s).into_iter().map(|(_, p)| p).collect();
    let count = |f: &dyn Fn(&Value) -> bool| pods.iter().filter(|p| f(p)).count() as i64;
    let updated = count(&|p| p["metadata"]["labels"]["controller-revision-hash"] == s.revision.as_str());
    let ready = count(&|p| is_ready(p));
    let old = &sts["status"];
    let current_revision = if updated == s.replicas && ready == s.replicas {
        s.revision.clone()
    } else {
        old["currentRevision"].as_str().map_or_else(|| s.revision.clone(), String::from)
    };
    let current =
        count(&|p| p["metadata"]["labels"]["controller-revision-hash"] == current_revision.as_str());
    let status = json!({
        "observedGeneration": sts["metadata"]["generation"],
        "replicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": s.revision,
        "collisionCount": 0,
    });
    if *old != status {
        let key: Key = (RESOURCE.into(), s.namespace.into(), s.name.into());
        let mut next = sts.clone();
        next["status"] = status;
        txn.put(key, next);
    }
}

/// A short stable hash (FNV-1a, 10 hex digits), enough to name template revisions.
fn fnv_hex(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")[..10].to_owned()
}
