//! The scale subresource (`autoscaling/v1` Scale) of StatefulSets and custom resources.

use axum::{
    Json,
    body::Bytes,
    http::{HeaderMap, Method},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    ApiState,
    dry_run::Mode,
    read,
    request::{Query, Target, manager_of},
};
use crate::{
    error::ApiError,
    fields::FieldValidation,
    managed,
    objects::{self, Part},
    patch, validation,
};

fn read_path<'a>(object: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches('.').split('.').fold(object, |v, k| &v[k])
}

fn write_path(object: &mut Value, path: &str, value: Value) {
    let keys: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = object;
    for k in &keys[..keys.len() - 1] {
        if !cur[*k].is_object() {
            cur[*k] = json!({});
        }
        cur = &mut cur[*k];
    }
    cur[keys[keys.len() - 1]] = value;
}

fn scale_of(t: &Target, object: &Value) -> Value {
    let paths = t.rt.scale.as_ref().expect("scale subresource");
    let meta = &object["metadata"];
    let selector = match &paths.label_selector {
        Some(p) => read_path(object, p).clone(),
        None => {
            // StatefulSets: the selector's matchLabels as a string.
            let labels = object["spec"]["selector"]["matchLabels"].as_object().cloned().unwrap_or_default();
            json!(
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
    };
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                     "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": read_path(object, &paths.spec_replicas).as_i64().unwrap_or(0)},
        "status": {"replicas": read_path(object, &paths.status_replicas).as_i64().unwrap_or(0), "selector": selector},
    })
}

/// GET, PUT and PATCH on `/scale`.
pub fn dispatch(
    state: &ApiState,
    method: &Method,
    t: &Target,
    (q, headers): (&Query, &HeaderMap),
    body: &Bytes,
) -> Result<Response, ApiError> {
    let name = t.name.as_deref().ok_or_else(|| ApiError::not_found("scale of a collection"))?;
    if *method == Method::GET {
        return Ok(Json(scale_of(t, &read::get(state, t, name)?)).into_response());
    }
    let manager = manager_of(q, headers);
    let change: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let key = objects::key(&t.rt, &t.namespace, name);
    let verb = if *method == Method::PUT { "UpdateOptions" } else { "PatchOptions" };
    let stored = Mode::of(q, verb)?.transact(&state.store, |txn| {
        let old = txn
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("{} \"{name}\"", t.rt.plural)))?;
        let mut scale = scale_of(t, &old);
        match *method {
            Method::PUT => scale = change.clone(),
            Method::PATCH => patch::merge(&mut scale, &change),
            _ => return Err(ApiError::method_not_allowed("scale supports get, update and patch")),
        }
        let replicas = scale["spec"]["replicas"].as_i64().filter(|r| *r >= 0).ok_or_else(|| {
            ApiError::invalid("spec.replicas: Invalid value: must be a non-negative integer")
        })?;
        let mut new = old.clone();
        if let Some(rv) = scale["metadata"]["resourceVersion"].as_str() {
            new["metadata"]["resourceVersion"] = json!(rv);
        }
        write_path(&mut new, &t.rt.scale.as_ref().expect("scale").spec_replicas, json!(replicas));
        // Only replicas changed: there is no field of the writer's to judge.
        let fields = FieldValidation::ignore();
        let mut merged = objects::on_update(&t.rt, &old, new, Part::Main)?;
        let api_version = t.rt.api_version();
        let writer = managed::Writer {
            manager: &manager,
            part: Part::Main,
            subresource: Some("scale"),
            status_subresource: t.rt.status,
            api_version: &api_version,
        };
        managed::record_update(Some(&old), &mut merged, &writer);
        let merged = validation::validate(&t.rt, &merged, Some(&old), &fields)?;
        Ok(txn.put(key.clone(), merged))
    })?;
    Ok(Json(scale_of(t, &stored)).into_response())
}
