//! Kubernetes protobuf messages to JSON, driven by the generated table of their fields
//! (`messages.rs`): the wire format walked field by field, names and forms as Kubernetes'
//! JSON has them (camelCase names as the kind's OpenAPI schema spells them; times as
//! RFC 3339, quantities and int-or-strings as their JSON scalars, bytes in base64, raw
//! extensions as the JSON they hold).

use std::{collections::HashMap, sync::LazyLock};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Map, Value, json};

use super::messages::MESSAGES;
use crate::openapi::BUILTINS;

/// How many values a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    /// At most one.
    Optional,
    /// A list.
    Repeated,
    /// A map with string keys (entries: key 1, value 2).
    Map,
}

/// A field's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `string`.
    Str,
    /// `bool`.
    Bool,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `double`.
    Double,
    /// `bytes`.
    Bytes,
    /// Another message, by its package-qualified name.
    Message(&'static str),
}

/// A message: its name and fields (tag, prost's field name, cardinality, type).
pub type Message = (&'static str, &'static [(u32, &'static str, Card, Kind)]);

/// One field on the wire.
pub enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5 (no Kubernetes field has it; skipped).
    Fixed32,
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if buf.len() < n {
        return Err("truncated field".into());
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// The fields of a message, in wire order.
pub fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let tag = u32::try_from(key >> 3).map_err(|_| "field number out of range")?;
        let wire = match key & 7 {
            0 => Wire::Varint(varint(&mut buf)?),
            1 => Wire::Fixed64(u64::from_le_bytes(take(&mut buf, 8)?.try_into().expect("8 bytes"))),
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| "length out of range")?;
                Wire::Bytes(take(&mut buf, len)?)
            }
            5 => {
                take(&mut buf, 4)?;
                Wire::Fixed32
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((tag, wire));
    }
    Ok(out)
}

fn normalized(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// Each message's OpenAPI schema name, found by spelling (`api.core.v1.Pod` ↔
/// `io.k8s.api.core.v1.Pod`, `…JsonSchemaProps` ↔ `…JSONSchemaProps`).
static SCHEMAS: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    BUILTINS
        .definitions
        .keys()
        .filter_map(|name| name.strip_prefix("io.k8s.").map(|short| (normalized(short), name.as_str())))
        .collect()
});

/// A field's JSON name: as the message's schema spells it, else prost's name in camelCase.
pub fn json_name(message: &str, field: &str) -> String {
    let property = SCHEMAS
        .get(&normalized(message))
        .and_then(|schema| BUILTINS.definitions[*schema]["properties"].as_object())
        .and_then(|properties| properties.keys().find(|p| normalized(p) == normalized(field)));
    property.cloned().unwrap_or_else(|| {
        let mut out = String::new();
        let mut upper = false;
        for c in field.chars() {
            match c {
                '_' => upper = true,
                c if upper => {
                    out.push(c.to_ascii_uppercase());
                    upper = false;
                }
                c => out.push(c),
            }
        }
        out
    })
}

/// One value of a field.
pub fn scalar(kind: Kind, wire: &Wire<'_>) -> Result<Value, String> {
    Ok(match (kind, wire) {
        (Kind::Str, Wire::Bytes(b)) => {
            Value::String(String::from_utf8(b.to_vec()).map_err(|e| e.to_string())?)
        }
        (Kind::Bytes, Wire::Bytes(b)) => Value::String(STANDARD.encode(b)),
        (Kind::Bool, Wire::Varint(v)) => json!(*v != 0),
        // int32 and int64 travel as two's complement varints.
        (Kind::Int32 | Kind::Int64, Wire::Varint(v)) => json!(*v as i64),
        (Kind::Double, Wire::Fixed64(v)) => json!(f64::from_bits(*v)),
        (Kind::Message(name), Wire::Bytes(b)) => decode(name, b)?,
        (kind, _) => return Err(format!("a {kind:?} field with the wrong wire type")),
    })
}

/// The values of a repeated scalar field held by one wire entry (packed or not).
fn repeated(kind: Kind, wire: &Wire<'_>) -> Result<Vec<Value>, String> {
    match (kind, wire) {
        (Kind::Int32 | Kind::Int64 | Kind::Bool, Wire::Bytes(packed)) => {
            let mut packed: &[u8] = packed;
            let mut out = Vec::new();
            while !packed.is_empty() {
                out.push(scalar(kind, &Wire::Varint(varint(&mut packed)?))?);
            }
            Ok(out)
        }
        _ => Ok(vec![scalar(kind, wire)?]),
    }
}

/// A message's table entry.
pub fn table(name: &str) -> Result<&'static Message, String> {
    MESSAGES
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .map(|i| &MESSAGES[i])
        .map_err(|_| format!("no protobuf message {name} is known"))
}

/// A message's JSON, from its bytes.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Value, String> {
    if let Some(special) = super::forms::special(name, bytes)? {
        return Ok(special);
    }
    let (name, table) = table(name)?;
    let mut out = Map::new();
    for (tag, wire) in fields(bytes)? {
        // Fields this table does not know are skipped, as protobuf readers do.
        let Some((_, field, card, kind)) = table.iter().find(|(t, ..)| *t == tag) else { continue };
        let key = json_name(name, field);
        match card {
            Card::Optional => {
                let value = scalar(*kind, &wire)?;
                // Go's encoder writes empty strings of plain fields; its JSON leaves them out.
                if value != json!("") && !value.is_null() {
                    out.insert(key, value);
                }
            }
            Card::Repeated => {
                let list = out.entry(key).or_insert_with(|| json!([]));
                list.as_array_mut().expect("a list").extend(repeated(*kind, &wire)?);
            }
            Card::Map => {
                let Wire::Bytes(entry) = wire else {
                    return Err(format!("map {field} is not length-delimited"));
                };
                let (mut k, mut v) = (String::new(), None);
                for (t, w) in fields(entry)? {
                    match t {
                        1 => k = scalar(Kind::Str, &w)?.as_str().unwrap_or_default().to_owned(),
                        2 => v = Some(scalar(*kind, &w)?),
                        _ => {}
                    }
                }
                let map = out.entry(key).or_insert_with(|| json!({}));
                map[k] =
                    v.unwrap_or_else(|| if matches!(kind, Kind::Message(_)) { json!({}) } else { json!("") });
            }
        }
    }
    Ok(Value::Object(out))
}
