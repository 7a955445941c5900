//! OpenAPI documents as kube-apiserver publishes them: `/openapi/v2` (one Swagger 2.0
//! document) and `/openapi/v3` (an index naming one OpenAPI 3.0 document per group version,
//! each with a hash of its content, so that clients cache a document until it changes). The
//! built-in types' schemas come from k8s-openapi; a custom resource's from its CRD's
//! structural schema, with `metadata` referring to ObjectMeta as kube-apiserver publishes it.

mod builtin;
pub mod gnostic;
mod paths;

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, LazyLock, Mutex},
};

use serde_json::{Map, Value, json};

pub use builtin::BUILTINS;
pub use paths::Flavor;

use crate::registry::{Registry, ResourceType};

/// The extension that names the kind a schema or an operation is for.
pub const GVK: &str = "x-kubernetes-group-version-kind";

/// A schema's `x-kubernetes-group-version-kind` (a list: one schema may serve several).
pub fn gvk_list(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "version": version, "kind": kind}])
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const API_VERSION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The schema name of a kind: k8s-openapi's for a built-in one; for a custom resource,
/// kube-apiserver's (the group reversed, then version and kind).
pub fn schema_name(rt: &ResourceType) -> String {
    if rt.crd.is_none()
        && let Some(name) = BUILTINS.name_of(&rt.group, &rt.version, &rt.kind)
    {
        return name.to_owned();
    }
    let group: Vec<&str> = rt.group.split('.').rev().collect();
    format!("{}.{}.{}", group.join("."), rt.version, rt.kind)
}

/// A custom resource's schema as published: its CRD's, with the envelope's fields described.
pub fn custom_schema(rt: &ResourceType, refs: &str) -> Value {
    let mut schema = rt.schema.as_deref().cloned().unwrap_or_else(|| json!({"type": "object"}));
    let Some(map) = schema.as_object_mut() else { return schema };
    let properties = map.entry("properties").or_insert_with(|| json!({}));
    if let Some(properties) = properties.as_object_mut() {
        let meta = json!({"allOf": [{"$ref": format!("{refs}{META}ObjectMeta")}],
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"});
        properties.insert("metadata".into(), meta);
        properties
            .entry("apiVersion")
            .or_insert_with(|| json!({"type": "string", "description": API_VERSION}));
        properties.entry("kind").or_insert_with(|| json!({"type": "string", "description": KIND}));
    }
    map.insert(GVK.into(), gvk_list(&rt.group, &rt.version, &rt.kind));
    schema
}

fn list_schema(rt: &ResourceType, item: &str, refs: &str) -> Value {
    json!({
        "description": format!("{}List is a list of {}", rt.kind, rt.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION},
            "items": {"type": "array", "items": {"$ref": format!("{refs}{item}")}},
            "kind": {"type": "string", "description": KIND},
            "metadata": {"allOf": [{"$ref": format!("{refs}{META}ListMeta")}], "description": "Standard list metadata."},
        },
        GVK: gvk_list(&rt.group, &rt.version, &format!("{}List", rt.kind)),
    })
}

/// Every `$ref` target under `value`.
fn refs_in(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(target) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(prefix))
            {
                out.push(target.to_owned());
            }
            map.values().for_each(|v| refs_in(v, prefix, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, prefix, out)),
        _ => {}
    }
}

/// The built-in schemas `roots` need, transitively.
fn closure(mut roots: Vec<String>) -> Map<String, Value> {
    let prefix = Flavor::V3.refs();
    let mut out = Map::new();
    while let Some(name) = roots.pop() {
        if out.contains_key(&name) {
            continue;
        }
        if let Some(schema) = BUILTINS.definitions.get(&name) {
            refs_in(schema, prefix, &mut roots);
            out.insert(name, schema.clone());
        }
    }
    out
}

/// Schemas in Swagger 2.0's style: references into `#/definitions/`, and a described
/// reference written as `$ref` beside its description, as kube-apiserver's v2 document has it
/// (OpenAPI 3.0 wraps it in `allOf`).
fn v2_style(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let single = map.get("allOf").and_then(Value::as_array).filter(|all| all.len() == 1);
            if let Some(target) = single.and_then(|all| all[0].get("$ref")).cloned() {
                map.remove("allOf");
                map.insert("$ref".into(), target);
            }
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(rest) = r.strip_prefix(Flavor::V3.refs())
            {
                *r = format!("{}{rest}", Flavor::V2.refs());
            }
            map.values_mut().for_each(v2_style);
        }
        Value::Array(items) => items.iter_mut().for_each(v2_style),
        _ => {}
    }
}

/// The document describing `types`.
fn document(types: &[ResourceType], flavor: Flavor) -> Value {
    let v3 = Flavor::V3.refs();
    let mut roots: Vec<String> =
        ["Status", "DeleteOptions", "ObjectMeta", "ListMeta"].iter().map(|n| format!("{META}{n}")).collect();
    let mut own = Map::new();
    let mut paths = Map::new();
    for rt in types {
        let name = schema_name(rt);
        if BUILTINS.definitions.contains_key(&name) {
            roots.push(name.clone());
        } else {
            own.insert(name.clone(), custom_schema(rt, v3));
        }
        if rt.scale.is_some() {
            roots.push("io.k8s.api.autoscaling.v1.Scale".into());
        }
        let list = format!("{name}List");
        own.insert(list.clone(), list_schema(rt, &name, v3));
        paths.extend(paths::items(rt, &name, &list, flavor));
    }
    let mut schemas = closure(roots);
    schemas.extend(own);
    schemas.insert(format!("{META}Patch"), json!({"description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object"}));
    let mut schemas = Value::Object(schemas);
    let info = json!({"title": "Kubernetes", "version": "v1.33.0"});
    match flavor {
        Flavor::V2 => {
            v2_style(&mut schemas);
            json!({"swagger": "2.0", "info": info, "paths": paths, "definitions": schemas})
        }
        Flavor::V3 => {
            json!({"openapi": "3.0.0", "info": info, "paths": paths, "components": {"schemas": schemas}})
        }
    }
}

/// The Swagger 2.0 document of everything served.
pub fn v2(registry: &Registry) -> Value {
    document(&registry.all(), Flavor::V2)
}

/// The path a group version's v3 document is served under (`api/v1`, `apis/apps/v1`).
pub fn gv_path(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        format!("api/{}", rt.version)
    } else {
        format!("apis/{}/{}", rt.group, rt.version)
    }
}

/// A document and its hash.
pub type Kept = Arc<(Value, String)>;

/// The v3 document of one group version (`api/v1`, `apis/apps/v1`), and its hash. Documents
/// are kept while the types they describe stay the same (kubectl asks for the index each time).
pub fn v3(registry: &Registry, gv: &str) -> Option<Kept> {
    static KEPT: LazyLock<Mutex<HashMap<String, (String, Kept)>>> = LazyLock::new(Mutex::default);
    let types: Vec<ResourceType> = registry.all().into_iter().filter(|rt| gv_path(rt) == gv).collect();
    if types.is_empty() {
        return None;
    }
    let described = hash_of(&format!("{types:?}"));
    let mut kept = KEPT.lock().expect("not poisoned");
    if let Some((of, doc)) = kept.get(gv)
        && *of == described
    {
        return Some(doc.clone());
    }
    let doc = document(&types, Flavor::V3);
    let hash = hash_of(&doc.to_string());
    let doc = Arc::new((doc, hash));
    kept.insert(gv.to_owned(), (described, doc.clone()));
    Some(doc)
}

/// `/openapi/v3`: where each group version's document is, named by its content's hash.
pub fn v3_index(registry: &Registry) -> Value {
    let mut gvs: Vec<String> = registry.all().iter().map(gv_path).collect();
    gvs.sort();
    gvs.dedup();
    let paths: Map<String, Value> = gvs
        .into_iter()
        .filter_map(|gv| {
            let doc = v3(registry, &gv)?;
            Some((gv.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", doc.1)})))
        })
        .collect();
    json!({"paths": paths})
}

fn hash_of(text: &str) -> String {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}
