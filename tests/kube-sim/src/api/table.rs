//! Server-side printing: `Table` answers for clients that ask for them
//! (`kubectl get`), with a CRD's `additionalPrinterColumns`.

use axum::http::HeaderMap;
use serde_json::{Value, json};

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

/// Human age of an RFC 3339 time, as kubectl prints it.
fn age(timestamp: &str) -> Value {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(timestamp) else { return Value::Null };
    let s = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    json!(match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
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

fn columns(rt: &ResourceType) -> Vec<Value> {
    let mut out = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    if rt.printer_columns.is_empty() {
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
    if rt.printer_columns.is_empty() {
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
