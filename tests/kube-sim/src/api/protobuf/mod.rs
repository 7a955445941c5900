//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl's typed
//! commands (`kubectl create namespace|secret|configmap|token ...`) and client-go's typed
//! clients (Helm's release storage among them) send for built-in kinds. Kubernetes wraps each
//! object in an envelope: the magic `k8s\0`, then a `runtime.Unknown` whose typeMeta (1) names
//! the kind and whose field 2 holds the object. kube-sim reads it into the JSON it handles, and
//! answers in it a client that asks for it first (watches stay JSON, which such clients also
//! take). Custom resources have no protobuf form, in Kubernetes as here.

mod encode;
mod forms;
mod messages;
#[cfg(test)]
mod tests;
mod wire;

use axum::{
    Json,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{error::ApiError, protowrite, registry::ResourceType};

/// Kubernetes' content type for protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Whether a request's body is protobuf.
pub fn is_protobuf(headers: &HeaderMap) -> bool {
    headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with(CONTENT_TYPE))
}

/// The package of a kind's message: options of every group are meta's, built-in groups are
/// named by their first label (`rbac.authorization.k8s.io` → `api.rbac.v1`).
fn package(group: &str, version: &str, kind: &str) -> String {
    if group == "meta.k8s.io" || kind.ends_with("Options") {
        return "apimachinery.pkg.apis.meta.v1".into();
    }
    match group {
        "" => format!("api.core.{version}"),
        "apiextensions.k8s.io" => format!("apiextensions_apiserver.pkg.apis.apiextensions.{version}"),
        g => format!("api.{}.{version}", g.split('.').next().unwrap_or(g)),
    }
}

fn unreadable(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("the protobuf body could not be read: {why}"))
}

/// The object a protobuf body holds, as JSON with its `apiVersion` and `kind`.
pub fn object(body: &[u8]) -> Result<Value, ApiError> {
    let unknown = body.strip_prefix(b"k8s\0").ok_or_else(|| unreadable("no k8s\\0 envelope"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (tag, field) in wire::fields(unknown).map_err(unreadable)? {
        match (tag, field) {
            (1, wire::Wire::Bytes(type_meta)) => {
                for (tag, field) in wire::fields(type_meta).map_err(unreadable)? {
                    let text = wire::scalar(wire::Kind::Str, &field).map_err(unreadable)?;
                    let text = text.as_str().unwrap_or_default().to_owned();
                    match tag {
                        1 => api_version = text,
                        2 => kind = text,
                        _ => {}
                    }
                }
            }
            (2, wire::Wire::Bytes(bytes)) => raw = Some(bytes),
            (3, wire::Wire::Bytes(encoding)) if !encoding.is_empty() => {
                return Err(unreadable("content encodings are not supported"));
            }
            _ => {}
        }
    }
    if kind.is_empty() {
        return Err(unreadable("the envelope names no kind"));
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let message = format!("{}.{kind}", package(group, version, &kind));
    let mut object = wire::decode(&message, raw.unwrap_or_default()).map_err(unreadable)?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

/// Whether a client asks for protobuf first (client-go's typed clients do).
pub fn preferred(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept.split(',').next().and_then(|t| t.split(';').next()).is_some_and(|t| t.trim() == CONTENT_TYPE)
}

/// An object (or list) with its `apiVersion` and `kind`, in Kubernetes' protobuf envelope.
pub fn envelope(object: &Value) -> Result<Vec<u8>, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().ok_or("the object names no kind")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let raw = encode::encode(&format!("{}.{kind}", package(group, version, kind)), object)?;
    let mut type_meta = Vec::new();
    protowrite::text(&mut type_meta, 1, api_version);
    protowrite::text(&mut type_meta, 2, kind);
    let mut unknown = Vec::new();
    protowrite::bytes(&mut unknown, 1, &type_meta);
    protowrite::bytes(&mut unknown, 2, &raw);
    Ok([b"k8s\0".as_slice(), &unknown].concat())
}

/// An answer: in protobuf when the client prefers it and the kind has a protobuf form, else JSON.
pub fn respond(headers: &HeaderMap, rt: &ResourceType, code: StatusCode, object: Value) -> Response {
    if preferred(headers) && rt.crd.is_none() {
        match envelope(&object) {
            Ok(bytes) => return (code, [(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response(),
            // The client takes JSON too; say why it gets JSON.
            Err(why) => tracing::warn!(kind = %rt.kind, "answering in JSON: no protobuf form: {why}"),
        }
    }
    (code, Json(object)).into_response()
}
