//! get, list, create, update, patch, delete and deletecollection.

use axum::{
    Json,
    body::Bytes,
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    ApiState,
    dry_run::Mode,
    read::{get, matching, not_found},
    request::{Query, Target},
    scale, table, watch,
};
use crate::{
    convert::{into_served, served, stored},
    error::ApiError,
    objects::{self, Part, Propagation},
    patch,
    store::Txn,
    validation,
};

/// Routes a resource request by method and shape.
pub async fn dispatch(
    state: &ApiState,
    method: &Method,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let part = match t.sub.as_deref() {
        None => Part::Main,
        Some("status") if t.rt.status || t.rt.kind == "Namespace" => Part::Status,
        Some("scale") if t.rt.scale.is_some() => return scale::dispatch(state, method, t, q, body),
        Some(other) => return Err(ApiError::not_found(format!("subresource {other} of {}", t.rt.plural))),
    };
    if !body.is_empty() {
        check_media(headers)?;
    }
    match (method.as_str(), t.name.as_deref()) {
        ("GET", None) if q.flag("watch") => {
            watch::stream(state, t, q, table::requested(headers, q.get("includeObject")))
        }
        ("GET", None) => list(state, t, q, table::requested(headers, q.get("includeObject"))),
        ("GET", Some(name)) => {
            let object = get(state, t, name)?;
            Ok(match table::requested(headers, q.get("includeObject")) {
                Some(include) => {
                    let rv = object["metadata"]["resourceVersion"].clone();
                    Json(table::table(&t.rt, &[object], include, json!({"resourceVersion": rv}), true))
                        .into_response()
                }
                None => Json(object).into_response(),
            })
        }
        ("POST", None) => create(state, t, parse_json(body)?, Mode::of(q, "CreateOptions")?)
            .map(|o| (StatusCode::CREATED, Json(o)).into_response()),
        ("PUT", Some(name)) => {
            let mode = Mode::of(q, "UpdateOptions")?;
            update(state, t, name, parse_json(body)?, part, mode).map(|o| Json(o).into_response())
        }
        ("PATCH", Some(name)) => {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let mode = Mode::of(q, "PatchOptions")?;
            patch_object(state, t, name, (content_type, mode), q, body, part)
                .map(|(code, o)| (code, Json(o)).into_response())
        }
        ("DELETE", Some(name)) => delete(state, t, name, q, body).map(|o| Json(o).into_response()),
        ("DELETE", None) => delete_collection(state, t, q, body).map(|o| Json(o).into_response()),
        _ => Err(ApiError::method_not_allowed(format!("{method} is not supported here"))),
    }
}

/// Bodies must be JSON (or YAML for apply): protobuf is not served, and says so with 415.
fn check_media(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    if content_type.contains("protobuf") {
        return Err(ApiError::unsupported_media_type(format!("{content_type} is not supported; send JSON")));
    }
    Ok(())
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn list(
    state: &ApiState,
    t: &Target,
    q: &Query,
    as_table: Option<table::Include>,
) -> Result<Response, ApiError> {
    let (items, rv) = state.store.read(|txn| matching(txn, t, q).map(|items| (items, txn.rv())))?;
    // Pagination: `continue` is the index of the next item at the list's resourceVersion.
    let start: usize =
        q.get("continue").and_then(|c| c.split_once(':')).and_then(|(i, _)| i.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let next = start + page.len();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if next < items.len() {
        metadata["continue"] = json!(format!("{next}:{rv}"));
        metadata["remainingItemCount"] = json!(items.len() - next);
    }
    if let Some(include) = as_table {
        return Ok(Json(table::table(&t.rt, &page, include, metadata, true)).into_response());
    }
    Ok(Json(json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(), "metadata": metadata, "items": page}))
        .into_response())
}

fn require_namespace(txn: &Txn<'_>, t: &Target) -> Result<(), ApiError> {
    if !t.rt.namespaced {
        return Ok(());
    }
    match txn.get(&("/namespaces".into(), String::new(), t.namespace.clone())) {
        None => Err(ApiError::not_found(format!("namespaces \"{}\"", t.namespace))),
        Some(ns) if ns["metadata"].get("deletionTimestamp").is_some() => Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {} because it is being terminated",
            t.namespace
        ))),
        Some(_) => Ok(()),
    }
}

/// Marks a CRD accepted and established once its resources are served (a dry run only checks
/// that they could be).
fn establish_crd(state: &ApiState, crd: &mut Value, mode: Mode) -> Result<(), ApiError> {
    let served = match mode {
        Mode::Write => state.registry.register_crd(crd),
        Mode::DryRun => crate::registry::crd_types(crd).map(drop),
    };
    served.map_err(|e| ApiError::invalid(format!("CustomResourceDefinition is invalid: {e}")))?;
    let now = objects::now();
    let versions: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    crd["status"] = json!({
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": versions,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
    Ok(())
}

fn is_crd(t: &Target) -> bool {
    t.rt.kind == "CustomResourceDefinition"
}

/// Creates an object (kube-sim's own setup).
pub fn create_object(state: &ApiState, t: &Target, object: Value) -> Result<Value, ApiError> {
    create(state, t, object, Mode::Write)
}

/// Creates an object.
fn create(state: &ApiState, t: &Target, mut object: Value, mode: Mode) -> Result<Value, ApiError> {
    objects::check_identity(&t.rt, &mut object, &t.namespace, None)?;
    let object = stored(&t.rt, object);
    let mut object = objects::on_create(&t.rt, validation::validate(&t.rt, &object, None)?);
    if is_crd(t) {
        establish_crd(state, &mut object, mode)?;
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let key = objects::key(&t.rt, &t.namespace, &name);
    mode.transact(&state.store, |txn| {
        require_namespace(txn, t)?;
        if txn.get(&key).is_some() {
            return Err(ApiError::already_exists(format!("{} \"{name}\"", t.rt.plural)));
        }
        Ok(into_served(&t.rt, txn.put(key.clone(), object)))
    })
}

/// Writes `new` over the stored object `old` (already merged by the caller for patches; both in
/// the stored form); answers in the served form.
fn write(
    (state, mode): (&ApiState, Mode),
    t: &Target,
    txn: &mut Txn<'_>,
    name: &str,
    old: &Value,
    new: Value,
    part: Part,
) -> Result<Value, ApiError> {
    let mut merged = objects::on_update(&t.rt, old, new, part)?;
    merged = validation::validate(&t.rt, &merged, Some(old))?;
    if is_crd(t) {
        establish_crd(state, &mut merged, mode)?;
    }
    let key = objects::key(&t.rt, &t.namespace, name);
    if merged == *old {
        return Ok(into_served(&t.rt, old.clone()));
    }
    let stored = txn.put(key.clone(), merged);
    Ok(into_served(&t.rt, objects::finish_deletion(txn, &key, stored)))
}

fn update(
    state: &ApiState,
    t: &Target,
    name: &str,
    mut object: Value,
    part: Part,
    mode: Mode,
) -> Result<Value, ApiError> {
    objects::check_identity(&t.rt, &mut object, &t.namespace, Some(name))?;
    let object = stored(&t.rt, object);
    let key = objects::key(&t.rt, &t.namespace, name);
    mode.transact(&state.store, |txn| {
        let old = txn.get(&key).cloned().ok_or_else(|| not_found(t, name))?;
        write((state, mode), t, txn, name, &old, object, part)
    })
}

fn patch_object(
    state: &ApiState,
    t: &Target,
    name: &str,
    (content_type, mode): (&str, Mode),
    q: &Query,
    body: &Bytes,
    part: Part,
) -> Result<(StatusCode, Value), ApiError> {
    let key = objects::key(&t.rt, &t.namespace, name);
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let body: Value = if media == "application/apply-patch+yaml" {
        serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")))?
    } else {
        parse_json(body)?
    };
    mode.transact(&state.store, |txn| {
        let old = txn.get(&key).cloned();
        // Patches apply to the object as the target's API serves it.
        let shown = old.as_ref().map(|o| served(&t.rt, o).into_owned());
        if media == "application/apply-patch+yaml" {
            let manager = q
                .get("fieldManager")
                .filter(|m| !m.is_empty())
                .ok_or_else(|| ApiError::bad_request("fieldManager is required for apply patch"))?
                .to_owned();
            let mut applied = body.clone();
            objects::check_identity(&t.rt, &mut applied, &t.namespace, Some(name))?;
            let previous = txn.applied(&key, &manager).cloned();
            let others = txn.applied_by_others(&key, &manager);
            let merged = stored(&t.rt, patch::apply(shown.as_ref(), &applied, previous.as_ref(), &others));
            let result = match &old {
                Some(old) => (StatusCode::OK, write((state, mode), t, txn, name, old, merged, part)?),
                None if part == Part::Main => {
                    let created = objects::on_create(&t.rt, validation::validate(&t.rt, &merged, None)?);
                    require_namespace(txn, t)?;
                    (StatusCode::CREATED, into_served(&t.rt, txn.put(key.clone(), created)))
                }
                None => return Err(not_found(t, name)),
            };
            // A resourceVersion in an apply is a precondition (checked by the write), never a field the manager owns.
            if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            txn.set_applied(&key, &manager, applied);
            return Ok(result);
        }
        let (old, mut patched) = old.zip(shown).ok_or_else(|| not_found(t, name))?;
        match media {
            "application/merge-patch+json" => patch::merge(&mut patched, &body),
            "application/json-patch+json" => patch::json(&mut patched, &body)?,
            "application/strategic-merge-patch+json" => patch::strategic(&mut patched, &body),
            other => {
                return Err(ApiError::unsupported_media_type(format!("unsupported patch type {other:?}")));
            }
        }
        // A patch never carries a stale resourceVersion unless it asks for the check.
        if body["metadata"].get("resourceVersion").is_none() {
            patched["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        }
        let patched = stored(&t.rt, patched);
        Ok((StatusCode::OK, write((state, mode), t, txn, name, &old, patched, part)?))
    })
}

/// What a delete request asks for.
struct DeleteOptions {
    propagation: Propagation,
    preconditions: Value,
    grace: Option<i64>,
    mode: Mode,
}

fn delete_options(q: &Query, body: &Bytes) -> Result<DeleteOptions, ApiError> {
    let options: Value = if body.is_empty() { json!({}) } else { parse_json(body)? };
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
    if gone && is_crd(t) && options.mode.writes() {
        state.registry.unregister_crd(name);
        let plural = object["spec"]["names"]["plural"].as_str().unwrap_or_default();
        let group = object["spec"]["group"].as_str().unwrap_or_default();
        let resource = format!("{group}/{plural}");
        for (k, _) in txn.all().into_iter().filter(|(k, _)| k.0 == resource) {
            txn.remove(&k);
        }
    }
    Ok(object)
}

fn delete(state: &ApiState, t: &Target, name: &str, q: &Query, body: &Bytes) -> Result<Value, ApiError> {
    let options = delete_options(q, body)?;
    options.mode.transact(&state.store, |txn| delete_one(state, t, txn, name, &options))
}

fn delete_collection(state: &ApiState, t: &Target, q: &Query, body: &Bytes) -> Result<Value, ApiError> {
    let options = DeleteOptions { preconditions: Value::Null, ..delete_options(q, body)? };
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
