//! get, list, create, update and patch; deletes are `delete`'s.

use axum::{
    Json,
    body::Bytes,
    http::{HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    ApiState, delete,
    dry_run::Mode,
    protobuf,
    read::{get, matching, not_found},
    request::{Query, Target, manager_of, parse_body, parse_json},
    scale, table, watch,
};
use crate::{
    convert::{into_served, served, stored},
    error::ApiError,
    fields::FieldValidation,
    managed,
    objects::{self, Part},
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
        Some("scale") if t.rt.scale.is_some() => {
            return scale::dispatch(state, method, t, (q, headers), body);
        }
        Some(other) => return Err(ApiError::not_found(format!("subresource {other} of {}", t.rt.plural))),
    };
    match (method.as_str(), t.name.as_deref()) {
        ("GET", None) if q.flag("watch") => {
            watch::stream(state, t, q, table::requested(headers, q.get("includeObject")))
        }
        ("GET", None) => list(state, t, q, headers),
        ("GET", Some(name)) => {
            let object = get(state, t, name)?;
            Ok(match table::requested(headers, q.get("includeObject")) {
                Some(include) => {
                    let rv = object["metadata"]["resourceVersion"].clone();
                    Json(table::table(&t.rt, &[object], include, json!({"resourceVersion": rv}), true))
                        .into_response()
                }
                None => protobuf::respond(headers, &t.rt, StatusCode::OK, object),
            })
        }
        ("POST", None) => {
            let fields = FieldValidation::of(q.get("fieldValidation"))?;
            let manager = manager_of(q, headers);
            let w = Writing::new(state, Mode::of(q, "CreateOptions")?, &fields, &manager);
            let created = create(w, t, parse_body(Some(&t.rt), headers, body)?)?;
            Ok(warned(protobuf::respond(headers, &t.rt, StatusCode::CREATED, created), &fields))
        }
        ("PUT", Some(name)) => {
            let fields = FieldValidation::of(q.get("fieldValidation"))?;
            let manager = manager_of(q, headers);
            let w = Writing::new(state, Mode::of(q, "UpdateOptions")?, &fields, &manager);
            let updated = update(w, t, name, parse_body(Some(&t.rt), headers, body)?, part)?;
            Ok(warned(protobuf::respond(headers, &t.rt, StatusCode::OK, updated), &fields))
        }
        ("PATCH", Some(name)) => {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let mut fields = FieldValidation::of(q.get("fieldValidation"))?;
            fields.apply = content_type.starts_with(APPLY);
            let manager = manager_of(q, headers);
            let w = Writing::new(state, Mode::of(q, "PatchOptions")?, &fields, &manager);
            let (code, patched) = patch_object(w, t, name, content_type, q, body, part)?;
            Ok(warned(protobuf::respond(headers, &t.rt, code, patched), &fields))
        }
        ("DELETE", Some(name)) => {
            let deleted = delete::delete(state, t, name, q, (headers, body))?;
            Ok(protobuf::respond(headers, &t.rt, StatusCode::OK, deleted))
        }
        ("DELETE", None) => {
            let deleted = delete::delete_collection(state, t, q, (headers, body))?;
            Ok(protobuf::respond(headers, &t.rt, StatusCode::OK, deleted))
        }
        _ => Err(ApiError::method_not_allowed(format!("{method} is not supported here"))),
    }
}

const APPLY: &str = "application/apply-patch+yaml";

/// A write's answer, with a `Warning` header for each unknown field it dropped.
fn warned(mut response: Response, fields: &FieldValidation) -> Response {
    for warning in fields.warnings() {
        let text = format!("299 - {}", serde_json::Value::String(warning));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
    response
}

fn list(state: &ApiState, t: &Target, q: &Query, headers: &HeaderMap) -> Result<Response, ApiError> {
    let as_table = table::requested(headers, q.get("includeObject"));
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
    let list = json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(), "metadata": metadata, "items": page});
    Ok(protobuf::respond(headers, &t.rt, StatusCode::OK, list))
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

/// Creates an object (kube-sim's own setup).
pub fn create_object(state: &ApiState, t: &Target, object: Value) -> Result<Value, ApiError> {
    let fields = FieldValidation::ignore();
    create(Writing::new(state, Mode::Write, &fields, "kube-sim"), t, object)
}

/// How a write is carried out: where, whether for real, what is done with unknown fields, who
/// writes, and for an apply its configuration (in the stored form) and whether it forces.
#[derive(Clone, Copy)]
struct Writing<'a> {
    state: &'a ApiState,
    mode: Mode,
    fields: &'a FieldValidation,
    manager: &'a str,
    apply: Option<(&'a Value, bool)>,
}

impl<'a> Writing<'a> {
    fn new(state: &'a ApiState, mode: Mode, fields: &'a FieldValidation, manager: &'a str) -> Self {
        Self { state, mode, fields, manager, apply: None }
    }
}

/// Records who owns what after a write of `old` (absent: a create) into `new`.
fn record_owners(
    w: Writing<'_>,
    t: &Target,
    old: Option<&Value>,
    new: &mut Value,
    part: Part,
) -> Result<(), ApiError> {
    let api_version = t.rt.api_version();
    let writer = managed::Writer {
        manager: w.manager,
        part,
        subresource: (part == Part::Status).then_some("status"),
        status_subresource: t.rt.status,
        api_version: &api_version,
    };
    match w.apply {
        Some((applied, force)) => managed::record_apply(old, applied, new, &writer, force),
        None => {
            managed::record_update(old, new, &writer);
            Ok(())
        }
    }
}

/// Creates an object.
fn create(w: Writing<'_>, t: &Target, mut object: Value) -> Result<Value, ApiError> {
    let (state, mode, fields) = (w.state, w.mode, w.fields);
    objects::check_identity(&t.rt, &mut object, &t.namespace, None)?;
    let object = stored(&t.rt, object);
    let mut object = objects::on_create(&t.rt, validation::validate(&t.rt, &object, None, fields)?);
    record_owners(w, t, None, &mut object, Part::Main)?;
    if t.is_crd() {
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
    w: Writing<'_>,
    t: &Target,
    txn: &mut Txn<'_>,
    name: &str,
    old: &Value,
    new: Value,
    part: Part,
) -> Result<Value, ApiError> {
    let (state, mode, fields) = (w.state, w.mode, w.fields);
    let mut merged = objects::on_update(&t.rt, old, new, part)?;
    record_owners(w, t, Some(old), &mut merged, part)?;
    merged = validation::validate(&t.rt, &merged, Some(old), fields)?;
    if t.is_crd() {
        establish_crd(state, &mut merged, mode)?;
    }
    let key = objects::key(&t.rt, &t.namespace, name);
    if merged == *old {
        return Ok(into_served(&t.rt, old.clone()));
    }
    let stored = txn.put(key.clone(), merged);
    Ok(into_served(&t.rt, objects::finish_deletion(txn, &key, stored)))
}

fn update(w: Writing<'_>, t: &Target, name: &str, mut object: Value, part: Part) -> Result<Value, ApiError> {
    objects::check_identity(&t.rt, &mut object, &t.namespace, Some(name))?;
    let object = stored(&t.rt, object);
    let key = objects::key(&t.rt, &t.namespace, name);
    w.mode.transact(&w.state.store, |txn| {
        let old = txn.get(&key).cloned().ok_or_else(|| not_found(t, name))?;
        write(w, t, txn, name, &old, object, part)
    })
}

fn patch_object(
    w: Writing<'_>,
    t: &Target,
    name: &str,
    content_type: &str,
    q: &Query,
    body: &Bytes,
    part: Part,
) -> Result<(StatusCode, Value), ApiError> {
    let key = objects::key(&t.rt, &t.namespace, name);
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let body: Value = if media == APPLY {
        // YAML, which JSON is a subset of: clients send JSON (kube, client-go), which the JSON
        // parser reads several times faster.
        serde_json::from_slice(body)
            .or_else(|_| serde_yaml_ng::from_slice(body))
            .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")))?
    } else {
        parse_json(body)?
    };
    w.mode.transact(&w.state.store, |txn| {
        let old = txn.get(&key).cloned();
        // Patches apply to the object as the target's API serves it.
        let shown = old.as_ref().map(|o| served(&t.rt, o).into_owned());
        if media == APPLY {
            let manager = q
                .get("fieldManager")
                .filter(|m| !m.is_empty())
                .ok_or_else(|| ApiError::bad_request("fieldManager is required for apply patch"))?
                .to_owned();
            let mut applied = body.clone();
            objects::check_identity(&t.rt, &mut applied, &t.namespace, Some(name))?;
            let merged = stored(&t.rt, patch::apply(shown.as_ref(), &applied));
            let applied = stored(&t.rt, applied);
            let w = Writing { manager: &manager, apply: Some((&applied, q.flag("force"))), ..w };
            return match &old {
                Some(old) => Ok((StatusCode::OK, write(w, t, txn, name, old, merged, part)?)),
                None if part == Part::Main => {
                    let mut created =
                        objects::on_create(&t.rt, validation::validate(&t.rt, &merged, None, w.fields)?);
                    record_owners(w, t, None, &mut created, part)?;
                    require_namespace(txn, t)?;
                    Ok((StatusCode::CREATED, into_served(&t.rt, txn.put(key.clone(), created))))
                }
                None => Err(not_found(t, name)),
            };
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
        Ok((StatusCode::OK, write(w, t, txn, name, &old, patched, part)?))
    })
}
