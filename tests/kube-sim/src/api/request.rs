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

/// A parsed path.
pub enum Route {
    /// A discovery document.
    Discovery(Discovery),
    /// A resource or object.
    Resource(Box<Target>),
    /// `/metrics`.
    Metrics,
}

/// Parses a path against the served resources.
pub fn route(registry: &Registry, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Ok(Route::Discovery(Discovery::Version)),
        ["metrics"] => return Ok(Route::Metrics),
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
