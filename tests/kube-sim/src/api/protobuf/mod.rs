//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl's typed
//! commands (`kubectl create namespace|secret|configmap|token ...`) and client-go's typed
//! clients (Helm's release storage among them) send for built-in kinds. Kubernetes wraps each
//! object in an envelope: the magic `k8s\0`, then a `runtime.Unknown` whose typeMeta (1) names
//! the kind and whose field 2 holds the object. kube-sim reads it into the JSON it handles;
//! answers stay JSON, which these clients accept. Custom resources have no protobuf form, in
//! Kubernetes as here.

mod forms;
mod messages;
#[cfg(test)]
mod tests;
mod wire;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::error::ApiError;

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
