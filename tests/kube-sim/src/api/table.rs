//! Server-side printing: `Table` answers for clients that ask for them
//! (`kubectl get`), with a CRD's `additionalPrinterColumns`, kube-apiserver's columns for
//! Events and the built-in kinds of `printers`, NAME and AGE for the rest.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::printers::{self, age};
use crate::registry::ResourceType;

/// How rows carry their object (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

/// Whether the client asked for a Table, and how rows carry objects.
pub fn requested(headers: &HeaderMap, include: Option<&str>) -> Option<Include> {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept.split(',').next().filter(|first| first.contains("as=Table"))?;
    Some(match include {
        Some("None") => Include::None,
        Some("Object") => Include::Object,
        _ => Include::Metadata,
    })
}

fn column_value(object: &Value, column: &Value) -> Value {
    let path = column["jsonPath"].as_str().unwrap_or_default();
    let value = path
        .trim_start_matches('.')
        .split('.')
        .try_fold(object, |v, k| v.get(k))
        .cloned()
        .unwrap_or(Value::Null);
    match (column["type"].as_str(), &value) {
        (Some("date"), Value::String(t)) => age(t),
        _ => value,
    }
}

/// Whether `rt` is core/v1 Event, which kube-apiserver prints with its own columns.
fn is_core_event(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.kind == "Event"
}

/// kube-apiserver's columns for core Events (`kubectl get events`); the rest are `-o wide`.
fn event_columns() -> Vec<Value> {
    let column = |name: &str, priority: u8, description: &str| json!({"name": name, "type": "string", "format": "", "description": description, "priority": priority});
    vec![
        column("Last Seen", 0, "Time since the event was last seen"),
        column("Type", 0, "Type of this event (Normal, Warning)"),
        column("Reason", 0, "Why the action was taken"),
        column("Object", 0, "The object this event is about"),
        column("Source", 1, "The component reporting this event"),
        column("Message", 0, "A human-readable description"),
        column("Count", 1, "The number of times this event has occurred"),
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 1}),
    ]
}

fn event_cells(e: &Value) -> Vec<Value> {
    let seen = [
        &e["series"]["lastObservedTime"],
        &e["lastTimestamp"],
        &e["eventTime"],
        &e["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .map_or(Value::Null, age);
    let regarding = &e["involvedObject"];
    let object = format!(
        "{}/{}",
        regarding["kind"].as_str().unwrap_or_default().to_lowercase(),
        regarding["name"].as_str().unwrap_or_default()
    );
    let source = e["source"]["component"].as_str().or(e["reportingComponent"].as_str()).unwrap_or_default();
    let count = e["series"]["count"].as_i64().or(e["count"].as_i64()).unwrap_or(1);
    vec![
        seen,
        e["type"].clone(),
        e["reason"].clone(),
        json!(object),
        json!(source),
        e["message"].clone(),
        json!(count),
        e["metadata"]["name"].clone(),
    ]
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    if is_core_event(rt) {
        return event_columns();
    }
    let mut out = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    if let Some((columns, _)) = printers::builtin(&rt.group, &rt.kind) {
        out.extend(columns.iter().map(|(name, kind, priority, description)| {
            json!({"name": name, "type": kind, "format": "", "description": description, "priority": priority})
        }));
    } else if rt.printer_columns.is_empty() {
        out.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}));
    } else {
        out.extend(rt.printer_columns.iter().map(|c| {
            json!({"name": c["name"], "type": if c["type"] == "date" { json!("string") } else { c["type"].clone() },
                   "format": c.get("format").cloned().unwrap_or(json!("")), "description": c.get("description").cloned().unwrap_or(json!("")),
                   "priority": c.get("priority").cloned().unwrap_or(json!(0))})
        }));
    }
    out
}

fn row(rt: &ResourceType, object: &Value, include: Include) -> Value {
    let mut cells = vec![object["metadata"]["name"].clone()];
    if is_core_event(rt) {
        cells = event_cells(object);
    } else if let Some((_, printer)) = printers::builtin(&rt.group, &rt.kind) {
        cells.extend(printer(object));
    } else if rt.printer_columns.is_empty() {
        cells.push(object["metadata"]["creationTimestamp"].as_str().map_or(Value::Null, age));
    } else {
        cells.extend(rt.printer_columns.iter().map(|c| column_value(object, c)));
    }
    let mut r = json!({"cells": cells});
    match include {
        Include::None => {}
        Include::Object => r["object"] = object.clone(),
        Include::Metadata => {
            r["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]})
        }
    }
    r
}

/// A Table of `objects`; column definitions only when `with_columns`.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    include: Include,
    metadata: Value,
    with_columns: bool,
) -> Value {
    let columns = if with_columns { columns(rt) } else { Vec::new() };
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
        "columnDefinitions": columns,
        "rows": objects.iter().map(|o| row(rt, o, include)).collect::<Vec<_>>(),
    })
}
