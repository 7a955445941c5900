//! Messages whose JSON is not an object of their fields: times, durations, quantities,
//! int-or-strings, raw JSON, and the schema unions of CustomResourceDefinitions.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

use super::wire::{Kind, Wire, fields, scalar};

const CRD: &str = "apiextensions_apiserver.pkg.apis.apiextensions.v1.";

/// The value of each field of a small message, by tag (repeated ones in order).
fn values(bytes: &[u8], kinds: &[(u32, Kind)]) -> Result<Vec<(u32, Value)>, String> {
    let mut out = Vec::new();
    for (tag, wire) in fields(bytes)? {
        if let Some((_, kind)) = kinds.iter().find(|(t, _)| *t == tag) {
            out.push((tag, scalar(*kind, &wire)?));
        }
    }
    Ok(out)
}

fn first(values: &[(u32, Value)], tag: u32) -> Option<&Value> {
    values.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
}

fn all(values: &[(u32, Value)], tag: u32) -> Vec<Value> {
    values.iter().filter(|(t, _)| *t == tag).map(|(_, v)| v.clone()).collect()
}

fn raw_json(bytes: &[u8]) -> Result<Value, String> {
    for (tag, wire) in fields(bytes)? {
        if let (1, Wire::Bytes(raw)) = (tag, wire) {
            return serde_json::from_slice(raw).map_err(|e| format!("raw JSON: {e}"));
        }
    }
    Ok(Value::Null)
}

fn time(bytes: &[u8], format: SecondsFormat) -> Result<Value, String> {
    let v = values(bytes, &[(1, Kind::Int64), (2, Kind::Int32)])?;
    let seconds = first(&v, 1).and_then(Value::as_i64).unwrap_or(0);
    let nanos = first(&v, 2).and_then(Value::as_i64).unwrap_or(0);
    if seconds == 0 && nanos == 0 {
        // Go's zero time: its JSON is null, and the field is left out.
        return Ok(Value::Null);
    }
    let at = DateTime::from_timestamp(seconds, u32::try_from(nanos).map_err(|_| "negative nanos")?)
        .ok_or("time out of range")?;
    Ok(json!(at.to_rfc3339_opts(format, true)))
}

/// A duration as Go prints it (`1h0m0s`, `1m30s`, `1.5s`, `500ms`).
fn go_duration(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return match ns {
            n if n % 1_000_000 == 0 => format!("{sign}{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{sign}{}µs", n / 1_000),
            n => format!("{sign}{n}ns"),
        };
    }
    let (h, rest) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let (s, frac) = (rest / 1_000_000_000, rest % 1_000_000_000);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:09}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }
}

/// The JSON of a message with a form of its own, or `None` for an ordinary one.
pub fn special(name: &str, bytes: &[u8]) -> Result<Option<Value>, String> {
    let schema = Kind::Message("apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps");
    let value = match name {
        "apimachinery.pkg.apis.meta.v1.Time" => time(bytes, SecondsFormat::Secs)?,
        "apimachinery.pkg.apis.meta.v1.MicroTime" => time(bytes, SecondsFormat::Micros)?,
        "apimachinery.pkg.apis.meta.v1.Duration" => {
            let v = values(bytes, &[(1, Kind::Int64)])?;
            json!(go_duration(first(&v, 1).and_then(Value::as_i64).unwrap_or(0)))
        }
        "apimachinery.pkg.api.resource.Quantity" => {
            first(&values(bytes, &[(1, Kind::Str)])?, 1).cloned().unwrap_or(json!("0"))
        }
        "apimachinery.pkg.util.intstr.IntOrString" => {
            let v = values(bytes, &[(1, Kind::Int64), (2, Kind::Int32), (3, Kind::Str)])?;
            match first(&v, 1).and_then(Value::as_i64) {
                Some(1) => first(&v, 3).cloned().unwrap_or(json!("")),
                _ => first(&v, 2).cloned().unwrap_or(json!(0)),
            }
        }
        "apimachinery.pkg.runtime.RawExtension" | "apimachinery.pkg.apis.meta.v1.FieldsV1" => {
            raw_json(bytes)?
        }
        _ => match name.strip_prefix(CRD) {
            Some("JSON") => raw_json(bytes)?,
            Some("JsonSchemaPropsOrArray") => {
                let v = values(bytes, &[(1, schema), (2, schema)])?;
                first(&v, 1).cloned().unwrap_or_else(|| Value::Array(all(&v, 2)))
            }
            Some("JsonSchemaPropsOrBool") => {
                let v = values(bytes, &[(1, Kind::Bool), (2, schema)])?;
                first(&v, 2).cloned().or_else(|| first(&v, 1).cloned()).unwrap_or(json!(false))
            }
            Some("JsonSchemaPropsOrStringArray") => {
                let v = values(bytes, &[(1, schema), (2, Kind::Str)])?;
                first(&v, 1).cloned().unwrap_or_else(|| Value::Array(all(&v, 2)))
            }
            _ => return Ok(None),
        },
    };
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::go_duration;

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(-2_000), "-2µs");
    }
}
