//! `/metrics`: `apiserver_request_total`, counted and labelled as kube-apiserver does
//! (verb, dry run, group, version, resource, subresource, scope, code), so tests and benchmarks can
//! say how many requests of a kind a component made.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex};

use axum::http::{HeaderMap, Method, header::CONTENT_TYPE};

use super::request::{Query, Target};

/// Labels of one counter, in exposition order.
type Labels = [String; 8];

/// Requests served, by their labels.
#[derive(Default)]
pub struct RequestCounts(Mutex<BTreeMap<Labels, u64>>);

impl RequestCounts {
    /// Counts a resource request answered with `code`.
    pub fn count(&self, method: &Method, target: &Target, query: &Query, headers: &HeaderMap, code: u16) {
        let labels = [
            verb(method, target, query, headers).into(),
            // kube-apiserver labels the query's dryRun (not a DeleteOptions body's), and any
            // value but All as invalid.
            match query.get("dryRun") {
                None | Some("") => "",
                Some("All") => "All",
                Some(_) => "invalid",
            }
            .to_owned(),
            target.rt.group.clone(),
            target.rt.version.clone(),
            target.rt.plural.clone(),
            target.sub.clone().unwrap_or_default(),
            scope(target).into(),
            code.to_string(),
        ];
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(labels).or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn exposition(&self) -> String {
        let mut out = String::from(
            "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, \
             dry run value, group, version, resource, scope, component, and HTTP response code.\n\
             # TYPE apiserver_request_total counter\n",
        );
        let names = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "code"];
        for (labels, n) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let pairs: Vec<String> = names.iter().zip(labels).map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            let _ =
                writeln!(out, "apiserver_request_total{{component=\"apiserver\",{}}} {n}", pairs.join(","));
        }
        out
    }
}

/// kube-apiserver's verb: the method, with GET split into GET, LIST and WATCH, and PATCH
/// into PATCH and APPLY (server-side apply), as its metrics report them.
fn verb(method: &Method, target: &Target, query: &Query, headers: &HeaderMap) -> &'static str {
    let apply =
        headers.get(CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/apply-patch"));
    match *method {
        Method::GET if query.flag("watch") => "WATCH",
        Method::GET if target.name.is_none() => "LIST",
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH if apply => "APPLY",
        Method::PATCH => "PATCH",
        Method::DELETE if target.name.is_none() => "DELETECOLLECTION",
        Method::DELETE => "DELETE",
        _ => "UNKNOWN",
    }
}

/// kube-apiserver's scope label.
fn scope(target: &Target) -> &'static str {
    match (target.rt.namespaced, target.namespace.is_empty(), target.name.is_some()) {
        (_, _, true) => "resource",
        (true, false, false) => "namespace",
        _ => "cluster",
    }
}
