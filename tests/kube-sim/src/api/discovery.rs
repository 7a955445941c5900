//! Discovery documents (legacy JSON form, which every client accepts).

use axum::{
    Json,
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

fn groups(state: &ApiState) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for rt in state.registry.all().into_iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == rt.group) {
            Some((_, vs)) if !vs.contains(&rt.version) => vs.push(rt.version),
            Some(_) => {}
            None => out.push((rt.group, vec![rt.version])),
        }
    }
    out
}

/// Answers a discovery request.
pub fn answer(state: &ApiState, d: Discovery) -> Response {
    match d {
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
            let groups: Vec<Value> = groups(state).iter().map(|(g, vs)| group_entry(g, vs)).collect();
            Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})).into_response()
        }
        Discovery::Group(name) => match groups(state).into_iter().find(|(g, _)| *g == name) {
            Some((g, vs)) => {
                let mut entry = group_entry(&g, &vs);
                entry["kind"] = json!("APIGroup");
                entry["apiVersion"] = json!("v1");
                Json(entry).into_response()
            }
            None => crate::error::ApiError::not_found(format!("group {name}")).into_response(),
        },
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
