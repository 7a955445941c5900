//! Unknown fields and the `fieldValidation` directive (`Ignore`, `Warn`, the default, or
//! `Strict`), as kube-apiserver decodes requests: a field the kind's schema does not declare
//! is dropped, and reported as a warning or refused with 400 naming every such field.

use std::cell::RefCell;

use serde_json::Value;

use crate::{error::ApiError, openapi::BUILTINS, registry::ResourceType};

/// What the request asked to be done with unknown fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Directive {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in a `Warning` header (kube-apiserver's default).
    #[default]
    Warn,
    /// Refuse the request.
    Strict,
}

/// The directive of one write, and the warnings it gathers for the answer's headers.
#[derive(Debug, Default)]
pub struct FieldValidation {
    /// The directive.
    pub directive: Directive,
    /// Whether the write is a server-side apply (refused with apply's own message).
    pub apply: bool,
    warnings: RefCell<Vec<String>>,
}

impl FieldValidation {
    /// The `fieldValidation` query parameter, or why it is not one kube-apiserver takes.
    pub fn of(value: Option<&str>) -> Result<Self, ApiError> {
        let directive = match value {
            None | Some("") | Some("Warn") => Directive::Warn,
            Some("Ignore") => Directive::Ignore,
            Some("Strict") => Directive::Strict,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
                )));
            }
        };
        Ok(Self { directive, ..Self::default() })
    }

    /// For kube-sim's own writes, which carry no field of a client's.
    pub fn ignore() -> Self {
        Self { directive: Directive::Ignore, ..Self::default() }
    }

    /// The warnings gathered (each a `Warning` header).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.borrow().clone()
    }

    /// Judges the unknown fields a write introduced.
    pub fn judge(&self, rt: &ResourceType, object: &Value, unknown: Vec<String>) -> Result<(), ApiError> {
        if unknown.is_empty() || self.directive == Directive::Ignore {
            return Ok(());
        }
        let listed: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        if self.directive == Directive::Warn {
            self.warnings.borrow_mut().extend(listed);
            return Ok(());
        }
        if self.apply {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            let declared: Vec<String> =
                unknown.iter().map(|f| format!(".{f}: field not declared in schema")).collect();
            return Err(ApiError::bad_request(format!(
                "failed to create typed patch object ({}, Kind={}) {namespace}/{name}: {}",
                if rt.group.is_empty() { format!("/{}", rt.version) } else { rt.api_version() },
                rt.kind,
                declared.join(", ")
            )));
        }
        Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            rt.kind,
            rt.version,
            rt.kind,
            listed.join(", ")
        )))
    }
}

/// Removes from a built-in object (in the form it is stored in) every field its kind's schema
/// does not declare, and names them (`spec.template.spec.containers[0].foo`).
pub fn prune_builtin(rt: &ResourceType, object: &mut Value) -> Vec<String> {
    let (group, kind) =
        if rt.viewed().is_some() { ("", "Event") } else { (rt.group.as_str(), rt.kind.as_str()) };
    let version = if rt.viewed().is_some() { "v1" } else { rt.version.as_str() };
    let Some(name) = BUILTINS.name_of(group, version, kind) else { return Vec::new() };
    let mut unknown = Vec::new();
    prune(&BUILTINS.definitions[name], object, "", &mut unknown);
    unknown
}

/// Removes the fields of `metadata` that ObjectMeta does not declare (custom resources too).
pub fn prune_metadata(object: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    if let Some(meta) = object.get_mut("metadata") {
        prune(&BUILTINS.definitions[&BUILTINS.object_meta()], meta, "metadata", &mut unknown);
    }
    unknown
}

/// The schema a `$ref` (or an `allOf` of one, kube-apiserver's way of describing a reference)
/// stands for.
fn resolve(schema: &Value) -> &Value {
    let target = schema
        .get("$ref")
        .or_else(|| schema["allOf"].as_array().and_then(|all| all.first()).and_then(|s| s.get("$ref")))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(crate::openapi::Flavor::V3.refs()));
    target.and_then(|name| BUILTINS.definitions.get(name)).map_or(schema, resolve)
}

fn prune(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    let schema = resolve(schema);
    let at = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                map.retain(|k, _| {
                    let known = properties.contains_key(k);
                    if !known {
                        unknown.push(at(k));
                    }
                    known
                });
                for (k, v) in map.iter_mut() {
                    prune(&properties[k], v, &at(k), unknown);
                }
            } else if let Some(each) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in map.iter_mut() {
                    prune(each, v, &at(k), unknown);
                }
            }
        }
        Value::Array(items) => {
            if let Some(each) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(each, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}
