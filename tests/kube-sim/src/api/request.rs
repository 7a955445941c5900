//! Parsing of request paths and query parameters.

use std::collections::HashMap;

use crate::{
    error::ApiError,
    registry::{Registry, ResourceType},
};

/// A discovery document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Discovery {
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/api/v1` or `/apis/{group}/{version}`.
    Resources { group: String, version: String },
    /// `/apis/{group}`.
    Group(String),
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
}

/// Which OpenAPI document a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    /// `/openapi/v2`.
    V2,
    /// `/openapi/v3`.
    V3Index,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`.
    V3(String),
}

/// The resource a request addresses.
#[derive(Clone, Debug)]
pub struct Target {
    /// The resource type.
    pub rt: ResourceType,
    /// Namespace from the path (empty: cluster-scoped or all namespaces).
    pub namespace: String,
    /// Object name, when the path names one.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`).
    pub sub: Option<String>,
}

impl Target {
    /// Whether it addresses CustomResourceDefinitions.
    pub fn is_crd(&self) -> bool {
        self.rt.kind == "CustomResourceDefinition"
    }
}

/// A JSON request body, or 400 saying why not.
pub fn parse_json(body: &axum::body::Bytes) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// An object sent to `rt` (`None`: options) in JSON, YAML or, for a built-in kind, protobuf.
pub fn parse_body(
    rt: Option<&ResourceType>,
    headers: &axum::http::HeaderMap,
    body: &axum::body::Bytes,
) -> Result<serde_json::Value, ApiError> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if super::protobuf::is_protobuf(headers) {
        if rt.is_some_and(|rt| rt.crd.is_some()) {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (not {content_type})"
            )));
        }
        return super::protobuf::object(body);
    }
    if content_type.starts_with("application/yaml") {
        return serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")));
    }
    parse_json(body)
}

/// The field manager of a write: `fieldManager`, else the client's name from its User-Agent
/// (up to the first `/`), as kube-apiserver names unnamed writers.
pub fn manager_of(q: &Query, headers: &axum::http::HeaderMap) -> String {
    if let Some(manager) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return manager.to_owned();
    }
    let agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let name = agent.split('/').next().unwrap_or_default().trim();
    if name.is_empty() { "unknown".into() } else { name.into() }
}

/// A parsed path.
pub enum Route {
    /// A discovery document.
    Discovery(Discovery),
    /// A resource or object.
    Resource(Box<Target>),
    /// `/metrics`.
    Metrics,
    /// An OpenAPI document.
    OpenApi(Document),
}

/// Parses a path against the served resources.
pub fn route(registry: &Registry, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Ok(Route::Discovery(Discovery::Version)),
        ["metrics"] => return Ok(Route::Metrics),
        ["openapi", "v2"] => return Ok(Route::OpenApi(Document::V2)),
        ["openapi", "v3"] => return Ok(Route::OpenApi(Document::V3Index)),
        ["openapi", "v3", gv @ ..] => return Ok(Route::OpenApi(Document::V3(gv.join("/")))),
        ["healthz" | "readyz" | "livez", ..] => return Ok(Route::Discovery(Discovery::Health)),
        ["api"] => return Ok(Route::Discovery(Discovery::CoreVersions)),
        ["apis"] => return Ok(Route::Discovery(Discovery::Groups)),
        ["apis", g] => return Ok(Route::Discovery(Discovery::Group((*g).into()))),
        ["api", v] => {
            return Ok(Route::Discovery(Discovery::Resources { group: String::new(), version: (*v).into() }));
        }
        ["apis", g, v] => {
            return Ok(Route::Discovery(Discovery::Resources { group: (*g).into(), version: (*v).into() }));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::not_found(format!("path {path}"))),
    };
    let find = |plural: &str| {
        registry.find(group, version, plural).ok_or_else(|| {
            ApiError::not_found(format!(
                "the server could not find the requested resource ({plural}.{group}/{version})"
            ))
        })
    };
    let target = |rt: ResourceType, namespace: &str, name: Option<&str>, sub: Option<&str>| {
        Ok(Route::Resource(Box::new(Target {
            rt,
            namespace: namespace.into(),
            name: name.map(String::from),
            sub: sub.map(String::from),
        })))
    };
    match rest {
        // Namespaced paths; `namespaces/{name}[/status|finalize]` is the Namespace object itself.
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            let rt = find(plural)?;
            if !rt.namespaced {
                return Err(ApiError::not_found(format!("{plural} is not namespaced")));
            }
            match tail {
                [] => target(rt, ns, None, None),
                [name] => target(rt, ns, Some(name), None),
                [name, sub] => target(rt, ns, Some(name), Some(sub)),
                _ => Err(ApiError::not_found(format!("path {path}"))),
            }
        }
        [plural] => target(find(plural)?, "", None, None),
        [plural, name] => target(find(plural)?, "", Some(name), None),
        [plural, name, sub] => target(find(plural)?, "", Some(name), Some(sub)),
        _ => Err(ApiError::not_found(format!("path {path}"))),
    }
}

/// Query parameters.
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a query string (percent-decoded).
    pub fn parse(raw: &str) -> Self {
        let decode = |s: &str| {
            let bytes = s.replace('+', " ").into_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%'
                    && i + 2 < bytes.len()
                    && let Ok(b) =
                        u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        Self(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.split_once('=').map_or((decode(p), String::new()), |(k, v)| (decode(k), decode(v)))
                })
                .collect(),
        )
    }

    /// A parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}
