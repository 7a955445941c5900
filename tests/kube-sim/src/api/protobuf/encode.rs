//! JSON objects to Kubernetes protobuf messages: the inverse of `wire::decode`, for answers to
//! clients that prefer protobuf (client-go's typed clients ask for it first).

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::DateTime;
use serde_json::Value;

use super::wire::{Card, Kind, json_name, table};
use crate::protowrite::{bytes, double, number, text};

fn scalar(out: &mut Vec<u8>, tag: u32, kind: Kind, value: &Value) -> Result<(), String> {
    let wrong = || format!("{value} is not a {kind:?}");
    match kind {
        Kind::Str => text(out, tag, value.as_str().ok_or_else(wrong)?),
        Kind::Bytes => {
            let decoded = STANDARD.decode(value.as_str().ok_or_else(wrong)?).map_err(|e| e.to_string())?;
            bytes(out, tag, &decoded);
        }
        Kind::Bool => number(out, tag, u64::from(value.as_bool().ok_or_else(wrong)?)),
        // Negative integers travel as two's complement varints.
        Kind::Int32 | Kind::Int64 => number(out, tag, value.as_i64().ok_or_else(wrong)? as u64),
        Kind::Double => double(out, tag, value.as_f64().ok_or_else(wrong)?),
        Kind::Message(name) => bytes(out, tag, &encode(name, value)?),
    }
    Ok(())
}

/// The fields of a small message, written from (tag, kind, value) triples.
fn small(fields: &[(u32, Kind, &Value)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (tag, kind, value) in fields {
        scalar(&mut out, *tag, *kind, value)?;
    }
    Ok(out)
}

/// Go's duration syntax (`1h2m3.5s`, `500ms`) in nanoseconds.
fn parse_duration(text: &str) -> Option<i64> {
    let (sign, mut rest) = text.strip_prefix('-').map_or((1, text), |r| (-1, r));
    let mut total = 0f64;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(split);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * scale;
        rest = next;
    }
    Some(sign * total.round() as i64)
}

/// The message of a form of its own (see `forms`), or `None` for an ordinary one.
fn special(name: &str, value: &Value) -> Result<Option<Vec<u8>>, String> {
    let schema = Kind::Message("apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps");
    let raw = |v: &Value| Value::String(STANDARD.encode(v.to_string()));
    let encoded = match name {
        "apimachinery.pkg.apis.meta.v1.Time" | "apimachinery.pkg.apis.meta.v1.MicroTime" => {
            let at = DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default())
                .map_err(|e| e.to_string())?;
            let (seconds, nanos) = (Value::from(at.timestamp()), Value::from(at.timestamp_subsec_nanos()));
            small(&[(1, Kind::Int64, &seconds), (2, Kind::Int32, &nanos)])?
        }
        "apimachinery.pkg.apis.meta.v1.Duration" => {
            let ns = parse_duration(value.as_str().unwrap_or_default()).ok_or("not a duration")?;
            small(&[(1, Kind::Int64, &Value::from(ns))])?
        }
        "apimachinery.pkg.api.resource.Quantity" => {
            let text = match value {
                Value::Number(n) => Value::String(n.to_string()),
                other => other.clone(),
            };
            small(&[(1, Kind::Str, &text)])?
        }
        "apimachinery.pkg.util.intstr.IntOrString" => match value {
            Value::String(_) => small(&[(1, Kind::Int64, &Value::from(1)), (3, Kind::Str, value)])?,
            _ => small(&[(1, Kind::Int64, &Value::from(0)), (2, Kind::Int32, value)])?,
        },
        "apimachinery.pkg.runtime.RawExtension"
        | "apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON" => {
            small(&[(1, Kind::Bytes, &raw(value))])?
        }
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrArray" => match value {
            Value::Array(items) => small(&items.iter().map(|i| (2, schema, i)).collect::<Vec<_>>())?,
            _ => small(&[(1, schema, value)])?,
        },
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrBool" => match value {
            Value::Bool(_) => small(&[(1, Kind::Bool, value)])?,
            _ => small(&[(1, Kind::Bool, &Value::Bool(true)), (2, schema, value)])?,
        },
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrStringArray" => match value {
            Value::Array(items) => small(&items.iter().map(|i| (2, Kind::Str, i)).collect::<Vec<_>>())?,
            _ => small(&[(1, schema, value)])?,
        },
        _ => return Ok(None),
    };
    Ok(Some(encoded))
}

/// A message's bytes, from its JSON.
pub fn encode(name: &str, value: &Value) -> Result<Vec<u8>, String> {
    if let Some(special) = special(name, value)? {
        return Ok(special);
    }
    let (name, fields) = table(name)?;
    let object = value.as_object().ok_or_else(|| format!("{name} is not an object in JSON"))?;
    let mut out = Vec::new();
    for (tag, field, card, kind) in *fields {
        let Some(v) = object.get(&json_name(name, field)).filter(|v| !v.is_null()) else { continue };
        match card {
            Card::Optional => scalar(&mut out, *tag, *kind, v)?,
            Card::Repeated => {
                for item in v.as_array().ok_or_else(|| format!("{name}.{field} is not a list"))? {
                    scalar(&mut out, *tag, *kind, item)?;
                }
            }
            Card::Map => {
                for (k, item) in v.as_object().ok_or_else(|| format!("{name}.{field} is not a map"))? {
                    let mut entry = Vec::new();
                    text(&mut entry, 1, k);
                    scalar(&mut entry, 2, *kind, item)?;
                    bytes(&mut out, *tag, &entry);
                }
            }
        }
    }
    Ok(out)
}
