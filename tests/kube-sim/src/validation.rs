//! Validation of custom resources against their CRD's structural schema
//! (types, required, enums, bounds, lengths, patterns; unknown fields pruned;
//! defaults applied) and its CEL rules (`x-kubernetes-validations`, kube-cel).

use serde_json::{Map, Value};

use crate::{
    error::ApiError,
    fields::{self, FieldValidation},
    registry::ResourceType,
};

/// What a check found: invalid values, and the unknown fields it pruned.
#[derive(Default)]
struct Findings {
    errors: Vec<String>,
    pruned: Vec<String>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Checks `value` against `schema` at `path`, pruning unknown fields; collects errors.
fn check(schema: &Value, value: &mut Value, path: &str, out: &mut Findings) {
    if value.is_null() {
        if schema["nullable"].as_bool() != Some(true) && schema.get("type").is_some() {
            out.errors.push(format!(
                "{path}: Invalid value: \"null\": {path} in body must be of type {}",
                schema["type"].as_str().unwrap_or("object")
            ));
        }
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"].as_bool() == Some(true);
    if let Some(want) = schema["type"].as_str() {
        let got = type_name(value);
        let ok = got == want
            || (want == "number" && got == "integer")
            || (int_or_string && (got == "integer" || got == "string"));
        if !ok && !int_or_string {
            out.errors.push(format!(
                "{path}: Invalid value: \"{got}\": {path} in body must be of type {want}: \"{got}\""
            ));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        out.errors.push(format!(
            "{path}: Unsupported value: {}: supported values: {}",
            shown(value),
            list.join(", ")
        ));
    }
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(max) = schema["maximum"].as_f64()
                && x > max
            {
                out.errors.push(format!(
                    "{path}: Invalid value: {n}: {path} in body should be less than or equal to {max}"
                ));
            }
            if let Some(min) = schema["minimum"].as_f64()
                && x < min
            {
                out.errors.push(format!(
                    "{path}: Invalid value: {n}: {path} in body should be greater than or equal to {min}"
                ));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64()
                && len > max
            {
                out.errors.push(format!("{path}: Too long: may not be more than {max} bytes"));
            }
            if let Some(min) = schema["minLength"].as_u64()
                && len < min
            {
                out.errors.push(format!(
                    "{path}: Invalid value: {s:?}: {path} in body should be at least {min} chars long"
                ));
            }
            if let Some(pattern) = schema["pattern"].as_str() {
                match regex_lite(pattern) {
                    Some(re) if !re.is_match(s) => out.errors.push(format!(
                        "{path}: Invalid value: {s:?}: {path} in body should match '{pattern}'"
                    )),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                out.errors.push(format!("{path}: Too many: {}: must have at most {max} items", items.len()));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => check_object(schema, map, path, out),
        _ => {}
    }
}

fn check_object(schema: &Value, map: &mut Map<String, Value>, path: &str, out: &mut Findings) {
    for field in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(field) {
            out.errors.push(format!("{path}.{field}: Required value"));
        }
    }
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let properties = schema["properties"].as_object();
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let child = format!("{path}.{k}");
        match (properties.and_then(|p| p.get(&k)), additional) {
            (Some(s), _) | (None, Some(s)) => check(s, map.get_mut(&k).expect("present"), &child, out),
            (None, None) if preserve || properties.is_none() && schema["type"] != "object" => {}
            (None, None) => {
                if properties.is_some() || schema["type"] == "object" && !preserve {
                    // Kubernetes prunes fields the schema does not know.
                    map.remove(&k);
                    out.pruned.push(child);
                }
            }
        }
    }
}

/// The `pattern` keyword as a regular expression (ECMA-262 subset the regex crate shares).
fn regex_lite(pattern: &str) -> Option<regex::Regex> {
    regex::Regex::new(pattern).ok()
}

/// Checks a custom resource against its kind's schema, pruning what it does not declare.
fn check_root(schema: &Value, object: &mut Value, out: &mut Findings) {
    out.pruned.extend(fields::prune_metadata(object));
    let Some(map) = object.as_object_mut() else { return };
    for (k, v) in map.iter_mut().filter(|(k, _)| !matches!(k.as_str(), "metadata" | "apiVersion" | "kind")) {
        if let Some(s) = schema["properties"].get(k) {
            check(s, v, k, out);
        }
    }
    let known = schema["properties"].as_object();
    if schema["x-kubernetes-preserve-unknown-fields"].as_bool() != Some(true) {
        map.retain(|k, _| {
            let keep = matches!(k.as_str(), "metadata" | "apiVersion" | "kind")
                || known.is_some_and(|p| p.contains_key(k));
            if !keep {
                out.pruned.push(k.clone());
            }
            keep
        });
    }
}

/// The unknown fields a write introduced: those the stored object did not have already.
fn introduced(
    unknown: Vec<String>,
    old: Option<&Value>,
    before: impl Fn(&Value) -> Vec<String>,
) -> Vec<String> {
    match old {
        Some(old) if !unknown.is_empty() => {
            let had = before(old);
            unknown.into_iter().filter(|f| !had.contains(f)).collect()
        }
        _ => unknown,
    }
}

/// Validates (and defaults, and prunes) an object as kube-apiserver decodes and validates it:
/// unknown fields are dropped and judged by `fields` (only those the write introduced: what
/// was stored before is not the writer's); a custom resource is checked against its schema
/// and CEL rules. Returns what is stored.
pub fn validate(
    rt: &ResourceType,
    object: &Value,
    old: Option<&Value>,
    fields: &FieldValidation,
) -> Result<Value, ApiError> {
    let Some(schema) = &rt.schema else {
        let mut pruned = object.clone();
        let unknown = fields::prune_builtin(rt, &mut pruned);
        let before = |old: &Value| fields::prune_builtin(rt, &mut old.clone());
        fields.judge(rt, object, introduced(unknown, old, before))?;
        return Ok(pruned);
    };
    let mut defaulted = kube_cel::apply_defaults(schema, object);
    let mut out = Findings::default();
    check_root(schema, &mut defaulted, &mut out);
    let unknown = std::mem::take(&mut out.pruned);
    let before = |old: &Value| {
        let mut again = Findings::default();
        check_root(schema, &mut old.clone(), &mut again);
        again.pruned
    };
    fields.judge(rt, object, introduced(unknown, old, before))?;
    let mut errors = out.errors;
    let rules = || match &rt.cel {
        Some(compiled) => kube_cel::validate_compiled(compiled, &defaulted, old),
        None => kube_cel::validate(schema, &defaulted, old),
    };
    if errors.is_empty()
        && let Err(cel) = rules()
    {
        errors.extend(cel.iter().map(|e| {
            let field = if e.field_path.is_empty() { "<root>".to_owned() } else { e.field_path.clone() };
            format!("{field}: Invalid value: {}", e.message)
        }));
    }
    if errors.is_empty() {
        Ok(defaulted)
    } else {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        Err(ApiError::invalid(format!(
            "{}.{} \"{name}\" is invalid: {}",
            rt.kind,
            rt.group,
            errors.join(", ")
        )))
    }
}
