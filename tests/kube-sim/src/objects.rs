//! Object semantics: metadata the server owns, generation, the status
//! subresource split, finalizers and deletion, garbage collection.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::{
    error::ApiError,
    registry::ResourceType,
    store::{Key, Txn},
};

/// Now, RFC 3339 in UTC with second precision.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A new unique UID in UUID form.
pub fn new_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 32) as u32,
        (t >> 16) as u16,
        n & 0xfff,
        (n >> 12) & 0xfff,
        t & 0xffff_ffff_ffff
    )
}

/// Key of an object of `rt`.
pub fn key(rt: &ResourceType, namespace: &str, name: &str) -> Key {
    (rt.key(), if rt.namespaced { namespace.to_owned() } else { String::new() }, name.to_owned())
}

/// Everything but metadata and status: what a generation counts.
fn spec_part(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    v
}

/// Checks `apiVersion`, `kind`, name and namespace against the request, filling them in.
pub fn check_identity(
    rt: &ResourceType,
    object: &mut Value,
    namespace: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    for (field, want) in [("apiVersion", rt.api_version()), ("kind", rt.kind.clone())] {
        match object.get(field).and_then(Value::as_str) {
            Some(got) if got != want => {
                return Err(ApiError::bad_request(format!(
                    "{field} {got:?} does not match the endpoint ({want})"
                )));
            }
            _ => object[field] = Value::String(want),
        }
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    let meta = &mut object["metadata"];
    if let Some(name) = name {
        match meta.get("name").and_then(Value::as_str) {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "metadata.name {n:?} does not match the URL ({name})"
                )));
            }
            _ => meta["name"] = Value::String(name.to_owned()),
        }
    }
    if meta.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
        if let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
            meta["name"] = Value::String(format!("{prefix}{}", &new_uid()[..5]));
        } else {
            return Err(ApiError::invalid("metadata.name: Required value: name or generateName is required"));
        }
    }
    if rt.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != namespace => {
                return Err(ApiError::bad_request(format!(
                    "metadata.namespace {ns:?} does not match the namespace of the request ({namespace})"
                )));
            }
            _ => meta["namespace"] = Value::String(namespace.to_owned()),
        }
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    Ok(())
}

/// Server-owned metadata of a new object; status is dropped where it is a subresource.
pub fn on_create(rt: &ResourceType, mut object: Value) -> Value {
    let meta = &mut object["metadata"];
    meta["uid"] = Value::String(new_uid());
    meta["creationTimestamp"] = Value::String(now());
    meta["generation"] = json!(1);
    if let Some(m) = meta.as_object_mut() {
        m.remove("deletionTimestamp");
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    if rt.status
        && rt.kind != "Pod"
        && let Some(o) = object.as_object_mut()
    {
        o.remove("status");
    }
    if rt.kind == "Namespace" {
        // Kubernetes' namespace strategy: a new namespace is Active.
        object["status"] = json!({"phase": "Active"});
    }
    if rt.kind == "PersistentVolumeClaim" {
        // Kubernetes' StorageObjectInUseProtection admission: released by the controller.
        let finalizer = json!(PVC_PROTECTION);
        let finalizers = object["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        if !finalizers.contains(&finalizer) {
            object["metadata"]["finalizers"] = json!([finalizers, vec![finalizer]].concat());
        }
    }
    object
}

/// The finalizer that keeps a claim while a pod uses it (`controllers::pvc_protection`).
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main endpoint: everything but status (where status is a subresource).
    Main,
    /// The /status subresource: only status.
    Status,
}

/// Merges a write into the stored object: optimistic concurrency, immutable
/// metadata, the status split, and the generation bump on spec changes.
pub fn on_update(rt: &ResourceType, old: &Value, mut new: Value, part: Part) -> Result<Value, ApiError> {
    let old_rv = old["metadata"]["resourceVersion"].as_str().unwrap_or_default();
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str().filter(|rv| !rv.is_empty())
        && rv != old_rv
    {
        return Err(ApiError::conflict(format!(
            "Operation cannot be fulfilled on {}.{} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
            rt.plural,
            rt.group,
            old["metadata"]["name"].as_str().unwrap_or_default()
        )));
    }
    let mut result = match part {
        Part::Status => {
            let mut r = old.clone();
            r["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            r
        }
        Part::Main => {
            if rt.status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            new
        }
    };
    for field in ["uid", "creationTimestamp", "deletionTimestamp", "namespace", "name", "generation"] {
        match old["metadata"].get(field) {
            Some(v) => result["metadata"][field] = v.clone(),
            None => {
                if let Some(m) = result["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    if part == Part::Main && spec_part(old) != spec_part(&result) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        result["metadata"]["generation"] = json!(generation + 1);
    }
    Ok(result)
}

/// Whether an object waits for finalizers.
pub fn has_finalizers(object: &Value) -> bool {
    object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty())
}

/// How dependents are treated when their owner is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// Owner goes now; dependents are deleted after it.
    Background,
    /// Dependents are deleted first, then the owner.
    Foreground,
    /// Dependents stay, without the owner reference.
    Orphan,
}

/// Deletes an object: marks it (finalizers pending) or removes it, then handles its dependents.
///
/// Returns the object as it is after the call and whether it is gone.
pub fn delete(txn: &mut Txn<'_>, key: &Key, propagation: Propagation) -> Option<(Value, bool)> {
    delete_with_grace(txn, key, propagation, None)
}

/// [`delete`] with the request's `gracePeriodSeconds`.
///
/// A pod bound to a node is only marked (deletionTimestamp and
/// deletionGracePeriodSeconds): the node stops its containers, then removes
/// it. A grace period of 0 removes it at once, as a force delete does.
pub fn delete_with_grace(
    txn: &mut Txn<'_>,
    key: &Key,
    propagation: Propagation,
    grace: Option<i64>,
) -> Option<(Value, bool)> {
    let object = txn.get(key)?.clone();
    let uid = object["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    if propagation == Propagation::Foreground {
        delete_dependents(txn, &uid, Propagation::Foreground);
    }
    let bound = key.0 == "/pods" && object["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    if bound && grace != Some(0) {
        if object["metadata"].get("deletionTimestamp").is_some() {
            return Some((object, false));
        }
        let seconds = grace.or(object["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30);
        let mut marked = object;
        marked["metadata"]["deletionTimestamp"] = Value::String(
            (chrono::Utc::now() + chrono::Duration::seconds(seconds))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(seconds);
        let generation = marked["metadata"]["generation"].as_i64().unwrap_or(1);
        marked["metadata"]["generation"] = json!(generation + 1);
        return Some((txn.put(key.clone(), marked), false));
    }
    if has_finalizers(&object) {
        if object["metadata"].get("deletionTimestamp").is_some() {
            return Some((object, false));
        }
        let mut marked = object;
        marked["metadata"]["deletionTimestamp"] = Value::String(now());
        let generation = marked["metadata"]["generation"].as_i64().unwrap_or(1);
        marked["metadata"]["generation"] = json!(generation + 1);
        return Some((txn.put(key.clone(), marked), false));
    }
    let removed = txn.remove(key)?;
    match propagation {
        Propagation::Orphan => orphan_dependents(txn, &uid),
        _ => delete_dependents(txn, &uid, propagation),
    }
    Some((removed, true))
}

fn delete_dependents(txn: &mut Txn<'_>, uid: &str, propagation: Propagation) {
    if uid.is_empty() {
        return;
    }
    for key in txn.dependents(uid) {
        delete(txn, &key, propagation);
    }
}

fn orphan_dependents(txn: &mut Txn<'_>, uid: &str) {
    for key in txn.dependents(uid) {
        let Some(mut object) = txn.get(&key).cloned() else { continue };
        if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
            refs.retain(|r| r["uid"] != uid);
        }
        txn.put(key, object);
    }
}

/// After an update: an object being deleted whose last finalizer is gone is removed.
pub fn finish_deletion(txn: &mut Txn<'_>, key: &Key, stored: Value) -> Value {
    if stored["metadata"].get("deletionTimestamp").is_some() && !has_finalizers(&stored) {
        let uid = stored["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
        let removed = txn.remove(key).unwrap_or(stored);
        delete_dependents(txn, &uid, Propagation::Background);
        removed
    } else {
        stored
    }
}
