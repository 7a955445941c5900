//! Discovery documents: the aggregated form (`apidiscovery.k8s.io/v2`, one answer for `/api`
//! and one for `/apis`, which kubectl asks for first) and the legacy form (one per group
//! version, which every client falls back to).

use axum::{
    Json,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{ApiState, request::Discovery};
use crate::registry::ResourceType;

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn resource_entries(rt: &ResourceType) -> Vec<Value> {
    let mut out = vec![json!({
        "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
        "verbs": VERBS, "shortNames": rt.short_names, "categories": rt.categories,
    })];
    if rt.status {
        out.push(
            json!({"name": format!("{}/status", rt.plural), "singularName": "", "namespaced": rt.namespaced,
                        "kind": rt.kind, "verbs": ["get", "patch", "update"]}),
        );
    }
    if rt.scale.is_some() {
        out.push(json!({"name": format!("{}/scale", rt.plural), "singularName": "", "namespaced": rt.namespaced,
                        "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
    }
    out
}

fn group_entry(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({"name": name, "versions": versions, "preferredVersion": versions[0]})
}

/// The named groups (or, with `core`, the core group alone) and their versions, in order.
fn groups_of(types: &[ResourceType], core: bool) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for rt in types.iter().filter(|t| t.group.is_empty() == core).cloned() {
        match out.iter_mut().find(|(g, _)| *g == rt.group) {
            Some((_, vs)) if !vs.contains(&rt.version) => vs.push(rt.version),
            Some(_) => {}
            None => out.push((rt.group, vec![rt.version])),
        }
    }
    out
}

/// The media type of aggregated discovery, as clients ask for it and servers answer with it.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the client takes aggregated discovery (v2; v2beta1 alone is not served).
fn wants_aggregated(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept.split(',').any(|t| {
        let params: Vec<&str> = t.split(';').map(str::trim).collect();
        ["g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"].iter().all(|p| params.contains(p))
    })
}

fn subresource(rt: &ResourceType, name: &str) -> Value {
    let kind = match name {
        "scale" => json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
        _ => json!({"group": rt.group, "version": rt.version, "kind": rt.kind}),
    };
    json!({"subresource": name, "responseKind": kind, "verbs": ["get", "patch", "update"]})
}

fn resource_discovery(rt: &ResourceType) -> Value {
    let mut subresources = Vec::new();
    if rt.status {
        subresources.push(subresource(rt, "status"));
    }
    if rt.scale.is_some() {
        subresources.push(subresource(rt, "scale"));
    }
    json!({
        "resource": rt.plural, "singularResource": rt.singular,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "verbs": VERBS, "shortNames": rt.short_names, "categories": rt.categories, "subresources": subresources,
    })
}

/// The aggregated document of the core group (`/api`) or of every other group (`/apis`).
fn aggregated(state: &ApiState, core: bool) -> Response {
    let types = state.registry.all();
    let groups = groups_of(&types, core);
    let items: Vec<Value> = groups
        .iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = types
                        .iter()
                        .filter(|t| t.group == *group && t.version == *v)
                        .map(resource_discovery)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if group.is_empty() { json!({}) } else { json!({"name": group}) };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    let list = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
    ([(header::CONTENT_TYPE, AGGREGATED)], Json(list).into_response()).into_response()
}

/// Answers a discovery request.
pub fn answer(state: &ApiState, d: Discovery, headers: &HeaderMap) -> Response {
    match d {
        Discovery::CoreVersions if wants_aggregated(headers) => aggregated(state, true),
        Discovery::Groups if wants_aggregated(headers) => aggregated(state, false),
        Discovery::Health => "ok".into_response(),
        Discovery::Version => Json(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-sim", "gitCommit": "kube-sim",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "n/a",
            "compiler": "rustc", "platform": "linux/amd64",
        }))
        .into_response(),
        Discovery::CoreVersions => Json(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": state.address}],
        }))
        .into_response(),
        Discovery::Groups => {
            let groups: Vec<Value> =
                groups_of(&state.registry.all(), false).iter().map(|(g, vs)| group_entry(g, vs)).collect();
            Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})).into_response()
        }
        Discovery::Group(name) => {
            match groups_of(&state.registry.all(), false).into_iter().find(|(g, _)| *g == name) {
                Some((g, vs)) => {
                    let mut entry = group_entry(&g, &vs);
                    entry["kind"] = json!("APIGroup");
                    entry["apiVersion"] = json!("v1");
                    Json(entry).into_response()
                }
                None => crate::error::ApiError::not_found(format!("group {name}")).into_response(),
            }
        }
        Discovery::Resources { group, version } => {
            let types: Vec<ResourceType> = state
                .registry
                .all()
                .into_iter()
                .filter(|t| t.group == group && t.version == version)
                .collect();
            if types.is_empty() {
                return crate::error::ApiError::not_found(format!("{group}/{version}")).into_response();
            }
            let gv = if group.is_empty() { version } else { format!("{group}/{version}") };
            let resources: Vec<Value> = types.iter().flat_map(resource_entries).collect();
            Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
                .into_response()
        }
    }
}
