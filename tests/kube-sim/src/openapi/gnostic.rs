//! The Swagger 2.0 document in gnostic's protobuf form (`openapi_v2.Document`), which kubectl
//! and client-go ask `/openapi/v2` for (and nothing else): its schemas for client-side
//! validation of kinds the v3 documents do not describe, and `kubectl explain --output
//! plaintext-openapiv2`. Those readers use the definitions only, so paths are left out of this
//! form (the JSON form has them). Field numbers are those of gnostic's OpenAPIv2.proto.

use serde_json::{Map, Value};

use crate::protowrite::{bytes, double, number, text};

/// `Any { yaml = 2 }`: gnostic keeps free-form values (defaults, enums, extensions) as YAML.
fn any(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    text(&mut out, 2, &serde_yaml_ng::to_string(value).unwrap_or_default());
    out
}

/// `NamedX { name = 1, value = 2 }`.
fn named(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    text(&mut out, 1, name);
    bytes(&mut out, 2, value);
    out
}

/// One `Schema`: its keywords, then its structure (field order is free on the wire).
fn schema(s: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::new();
    keywords(s, &mut out);
    structure(s, &mut out);
    out
}

/// A schema's scalar keywords (fields 1 to 20).
fn keywords(s: &Map<String, Value>, out: &mut Vec<u8>) {
    let str_field = |out: &mut Vec<u8>, tag, key: &str| {
        if let Some(v) = s.get(key).and_then(Value::as_str) {
            text(out, tag, v);
        }
    };
    let int_field = |out: &mut Vec<u8>, tag, key: &str| {
        if let Some(v) = s.get(key).and_then(Value::as_u64) {
            number(out, tag, v);
        }
    };
    let bool_field = |out: &mut Vec<u8>, tag, key: &str| {
        if s.get(key).and_then(Value::as_bool) == Some(true) {
            number(out, tag, 1);
        }
    };
    str_field(out, 1, "$ref");
    str_field(out, 2, "format");
    str_field(out, 3, "title");
    str_field(out, 4, "description");
    if let Some(d) = s.get("default") {
        bytes(out, 5, &any(d));
    }
    for (tag, key) in [(6, "multipleOf"), (7, "maximum"), (9, "minimum")] {
        if let Some(v) = s.get(key).and_then(Value::as_f64) {
            double(out, tag, v);
        }
    }
    bool_field(out, 8, "exclusiveMaximum");
    bool_field(out, 10, "exclusiveMinimum");
    for (tag, key) in [(11, "maxLength"), (12, "minLength"), (14, "maxItems"), (15, "minItems")] {
        int_field(out, tag, key);
    }
    str_field(out, 13, "pattern");
    bool_field(out, 16, "uniqueItems");
    int_field(out, 17, "maxProperties");
    int_field(out, 18, "minProperties");
    for r in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        text(out, 19, r);
    }
    for e in s.get("enum").and_then(Value::as_array).into_iter().flatten() {
        bytes(out, 20, &any(e));
    }
}

/// A schema's structure: what it holds, and its extensions (fields 21 to 31).
fn structure(s: &Map<String, Value>, out: &mut Vec<u8>) {
    match s.get("additionalProperties") {
        Some(Value::Object(sub)) => bytes(out, 21, &{
            let mut item = Vec::new();
            bytes(&mut item, 1, &schema(sub));
            item
        }),
        Some(Value::Bool(b)) => bytes(out, 21, &{
            let mut item = Vec::new();
            number(&mut item, 2, u64::from(*b));
            item
        }),
        _ => {}
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let mut item = Vec::new();
        text(&mut item, 1, t);
        bytes(out, 22, &item);
    }
    let items: Vec<&Map<String, Value>> = match s.get("items") {
        Some(Value::Object(one)) => vec![one],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_object).collect(),
        _ => vec![],
    };
    if !items.is_empty() {
        let mut item = Vec::new();
        for sub in items {
            bytes(&mut item, 1, &schema(sub));
        }
        bytes(out, 23, &item);
    }
    for sub in s.get("allOf").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object) {
        bytes(out, 24, &schema(sub));
    }
    if let Some(properties) = s.get("properties").and_then(Value::as_object) {
        let mut item = Vec::new();
        for (name, sub) in properties {
            if let Some(sub) = sub.as_object() {
                bytes(&mut item, 1, &named(name, &schema(sub)));
            }
        }
        bytes(out, 25, &item);
    }
    if s.get("readOnly").and_then(Value::as_bool) == Some(true) {
        number(out, 27, 1);
    }
    if let Some(e) = s.get("example") {
        bytes(out, 30, &any(e));
    }
    for (key, value) in s.iter().filter(|(k, _)| k.starts_with("x-")) {
        bytes(out, 31, &named(key, &any(value)));
    }
}

/// A Swagger 2.0 document (its `swagger`, `info` and `definitions`) as gnostic's `Document`.
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    text(&mut out, 1, doc["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Vec::new();
    text(&mut info, 1, doc["info"]["title"].as_str().unwrap_or_default());
    text(&mut info, 2, doc["info"]["version"].as_str().unwrap_or_default());
    bytes(&mut out, 2, &info);
    let mut definitions = Vec::new();
    for (name, s) in doc["definitions"].as_object().into_iter().flatten() {
        if let Some(s) = s.as_object() {
            bytes(&mut definitions, 1, &named(name, &schema(s)));
        }
    }
    bytes(&mut out, 9, &definitions);
    out
}
