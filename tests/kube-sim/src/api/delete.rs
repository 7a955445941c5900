//! delete and deletecollection: preconditions, propagation, grace, dry run; a Namespace
//! terminates, a CRD's deletion stops serving its resources.

use axum::{body::Bytes, http::HeaderMap};
use serde_json::{Value, json};

use super::{
    ApiState,
    dry_run::Mode,
    read::{matching, not_found},
    request::{Query, Target, parse_body},
};
use crate::{
    convert::into_served,
    error::ApiError,
    objects::{self, Propagation},
    store::Txn,
};

/// What a delete request asks for.
struct DeleteOptions {
    propagation: Propagation,
    preconditions: Value,
    grace: Option<i64>,
    mode: Mode,
}

fn delete_options(q: &Query, headers: &HeaderMap, body: &Bytes) -> Result<DeleteOptions, ApiError> {
    let options: Value = if body.is_empty() { json!({}) } else { parse_body(None, headers, body)? };
    let policy = options["propagationPolicy"].as_str().or(q.get("propagationPolicy")).unwrap_or("Background");
    let propagation = match policy {
        "Background" => Propagation::Background,
        "Foreground" => Propagation::Foreground,
        "Orphan" => Propagation::Orphan,
        other => return Err(ApiError::bad_request(format!("unknown propagationPolicy {other:?}"))),
    };
    let grace =
        match options["gracePeriodSeconds"].as_i64() {
            Some(g) => Some(g),
            None => match q.get("gracePeriodSeconds") {
                Some(g) => Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("gracePeriodSeconds {g:?} is not an integer"))
                })?),
                None => None,
            },
        };
    // dryRun comes in the query or, from client libraries, in the DeleteOptions body.
    let mode = match options["dryRun"].as_array().and_then(|a| a.first()).and_then(Value::as_str) {
        Some(value) => Mode::of(&Query::parse(&format!("dryRun={value}")), "DeleteOptions")?,
        None => Mode::of(q, "DeleteOptions")?,
    };
    Ok(DeleteOptions { propagation, preconditions: options["preconditions"].clone(), grace, mode })
}

fn delete_one(
    state: &ApiState,
    t: &Target,
    txn: &mut Txn<'_>,
    name: &str,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let pre = &options.preconditions;
    let key = objects::key(&t.rt, &t.namespace, name);
    let current = txn.get(&key).cloned().ok_or_else(|| not_found(t, name))?;
    for field in ["uid", "resourceVersion"] {
        if let Some(want) = pre[field].as_str()
            && current["metadata"][field].as_str() != Some(want)
        {
            return Err(ApiError::conflict(format!(
                "Precondition failed: {field} in precondition: {want}, {field} in object meta: {}",
                current["metadata"][field].as_str().unwrap_or_default()
            )));
        }
    }
    if t.rt.kind == "Namespace" {
        // Namespaces terminate: the namespace controller empties them, then removes them.
        let mut ns = current;
        if ns["metadata"].get("deletionTimestamp").is_none() {
            ns["metadata"]["deletionTimestamp"] = json!(objects::now());
            ns["status"] = json!({"phase": "Terminating"});
            ns = txn.put(key, ns);
        }
        return Ok(ns);
    }
    let (object, gone) = objects::delete_with_grace(txn, &key, options.propagation, options.grace)
        .ok_or_else(|| not_found(t, name))?;
    let object = into_served(&t.rt, object);
    if gone && t.is_crd() && options.mode.writes() {
        state.registry.unregister_crd(name);
        let plural = object["spec"]["names"]["plural"].as_str().unwrap_or_default();
        let group = object["spec"]["group"].as_str().unwrap_or_default();
        let resource = format!("{group}/{plural}");
        for k in txn.keys_where(|k, _| k.0 == resource) {
            txn.remove(&k);
        }
    }
    Ok(object)
}

pub fn delete(
    state: &ApiState,
    t: &Target,
    name: &str,
    q: &Query,
    (headers, body): (&HeaderMap, &Bytes),
) -> Result<Value, ApiError> {
    let options = delete_options(q, headers, body)?;
    options.mode.transact(&state.store, |txn| delete_one(state, t, txn, name, &options))
}

pub fn delete_collection(
    state: &ApiState,
    t: &Target,
    q: &Query,
    (headers, body): (&HeaderMap, &Bytes),
) -> Result<Value, ApiError> {
    let options = DeleteOptions { preconditions: Value::Null, ..delete_options(q, headers, body)? };
    options.mode.transact(&state.store, |txn| {
        let victims = matching(txn, t, q)?;
        let mut items = Vec::new();
        for v in victims {
            let name = v["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            let scoped = Target {
                namespace: v["metadata"]["namespace"].as_str().unwrap_or_default().into(),
                ..t.clone()
            };
            items.push(delete_one(state, &scoped, txn, &name, &options)?);
        }
        Ok(json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(),
                  "metadata": {"resourceVersion": txn.rv().to_string()}, "items": items}))
    })
}
