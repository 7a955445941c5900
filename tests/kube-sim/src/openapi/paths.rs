//! The operations of each served resource, rendered as OpenAPI v2 or v3 path items.
//!
//! Clients read more than schemas here: kubectl asks whether a PATCH of a kind takes the
//! `fieldValidation` query parameter before it leaves field validation to the server.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// Which OpenAPI version a document is rendered in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Swagger 2.0 (`/openapi/v2`).
    V2,
    /// OpenAPI 3.0 (`/openapi/v3/...`).
    V3,
}

impl Flavor {
    /// Where schemas live in a document of this flavor.
    pub fn refs(self) -> &'static str {
        match self {
            Self::V2 => "#/definitions/",
            Self::V3 => "#/components/schemas/",
        }
    }

    fn reference(self, name: &str) -> Value {
        json!({"$ref": format!("{}{name}", self.refs())})
    }

    fn query(self, name: &str, kind: &str, description: &str) -> Value {
        match self {
            Self::V2 => {
                json!({"name": name, "in": "query", "type": kind, "uniqueItems": true, "description": description})
            }
            Self::V3 => {
                json!({"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": true}, "description": description})
            }
        }
    }

    fn path_param(self, name: &str, description: &str) -> Value {
        match self {
            Self::V2 => {
                json!({"name": name, "in": "path", "required": true, "type": "string", "uniqueItems": true, "description": description})
            }
            Self::V3 => {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}, "description": description})
            }
        }
    }

    fn body(self, schema: &str, patch: bool, op: &mut Map<String, Value>) {
        let reference = if patch {
            self.reference("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")
        } else {
            self.reference(schema)
        };
        match self {
            Self::V2 => {
                let params = op.entry("parameters").or_insert_with(|| json!([]));
                params
                    .as_array_mut()
                    .expect("an array")
                    .push(json!({"name": "body", "in": "body", "required": true, "schema": reference}));
                if patch {
                    op.insert("consumes".into(), json!(PATCH_TYPES));
                }
            }
            Self::V3 => {
                let types: &[&str] = if patch { PATCH_TYPES } else { &["*/*"] };
                let content: Map<String, Value> =
                    types.iter().map(|t| ((*t).to_owned(), json!({"schema": reference}))).collect();
                op.insert("requestBody".into(), json!({"content": content, "required": true}));
            }
        }
    }

    fn answers(self, codes: &[&str], schema: &str) -> Value {
        let one = |code: &str| {
            let description = match code {
                "201" => "Created",
                "202" => "Accepted",
                _ => "OK",
            };
            let answer = match self {
                Self::V2 => json!({"description": description, "schema": self.reference(schema)}),
                Self::V3 => {
                    json!({"description": description, "content": {"application/json": {"schema": self.reference(schema)}}})
                }
            };
            (code.to_owned(), answer)
        };
        let mut map: Map<String, Value> = codes.iter().map(|c| one(c)).collect();
        map.insert("401".into(), json!({"description": "Unauthorized"}));
        Value::Object(map)
    }
}

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";

/// One operation: its verb, the action kube-apiserver names it by, and what it answers.
struct Op {
    method: &'static str,
    action: &'static str,
    answers: &'static [&'static str],
    query: &'static [(&'static str, &'static str, &'static str)],
}

const WRITE: &[(&str, &str, &str)] = &[
    (
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
    ),
    (
        "fieldManager",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes.",
    ),
    (
        "fieldValidation",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn (the default) - Strict",
    ),
];
const PATCH: &[(&str, &str, &str)] = &[
    (
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
    ),
    (
        "fieldManager",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes. It is required for apply requests.",
    ),
    (
        "fieldValidation",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn (the default) - Strict",
    ),
    (
        "force",
        "boolean",
        "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.",
    ),
];
const LIST: &[(&str, &str, &str)] = &[
    ("labelSelector", "string", "A selector to restrict the list of returned objects by their labels."),
    ("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields."),
    ("limit", "integer", "limit is a maximum number of responses to return for a list call."),
    ("continue", "string", "The continue option should be set when retrieving more results from the server."),
    (
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    (
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
    ),
    ("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
    ("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`."),
    ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
];
const DELETE: &[(&str, &str, &str)] = &[
    (
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
    ),
    ("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
    (
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
    ),
];

const GET: Op = Op { method: "get", action: "get", answers: &["200"], query: &[] };
const PUT: Op = Op { method: "put", action: "put", answers: &["200", "201"], query: WRITE };
const PATCH_OP: Op = Op { method: "patch", action: "patch", answers: &["200", "201"], query: PATCH };

/// The path items of one resource type, keyed by path.
pub fn items(
    rt: &ResourceType,
    kind_schema: &str,
    list_schema: &str,
    flavor: Flavor,
) -> Vec<(String, Value)> {
    let prefix = if rt.group.is_empty() {
        format!("/api/{}", rt.version)
    } else {
        format!("/apis/{}/{}", rt.group, rt.version)
    };
    let scope = if rt.namespaced { format!("{prefix}/namespaces/{{namespace}}") } else { prefix.clone() };
    let collection = format!("{scope}/{}", rt.plural);
    let object = format!("{collection}/{{name}}");
    let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    let scale_gvk = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
    let item = |ops: &[(&Op, &str)], named: bool| {
        let mut path = Map::new();
        for (op, schema) in ops {
            // The scale subresource reads and writes autoscaling/v1 Scale.
            let gvk = if schema.ends_with(".autoscaling.v1.Scale") { &scale_gvk } else { &gvk };
            path.insert(op.method.into(), operation(rt, op, schema, gvk, flavor));
        }
        let mut params =
            vec![flavor.query("pretty", "string", "If 'true', then the output is pretty printed.")];
        if named {
            params.insert(0, flavor.path_param("name", &format!("name of the {}", rt.kind)));
        }
        if rt.namespaced {
            params.insert(
                usize::from(named),
                flavor.path_param("namespace", "object name and auth scope, such as for teams and projects"),
            );
        }
        path.insert("parameters".into(), Value::Array(params));
        Value::Object(path)
    };
    // Reviews are create-only, as in kube-apiserver.
    if rt.kind.ends_with("Review") {
        let create = Op { method: "post", action: "post", answers: &["200", "201", "202"], query: WRITE };
        return vec![(collection, item(&[(&create, kind_schema)], false))];
    }
    let create = Op { method: "post", action: "post", answers: &["200", "201", "202"], query: WRITE };
    let list = Op { method: "get", action: "list", answers: &["200"], query: LIST };
    let delete_all = Op { method: "delete", action: "deletecollection", answers: &["200"], query: DELETE };
    let delete = Op { method: "delete", action: "delete", answers: &["200", "202"], query: DELETE };
    let mut out = vec![
        (
            collection.clone(),
            item(&[(&list, list_schema), (&create, kind_schema), (&delete_all, STATUS)], false),
        ),
        (
            object.clone(),
            item(
                &[(&GET, kind_schema), (&PUT, kind_schema), (&PATCH_OP, kind_schema), (&delete, STATUS)],
                true,
            ),
        ),
    ];
    if rt.status {
        out.push((
            format!("{object}/status"),
            item(&[(&GET, kind_schema), (&PUT, kind_schema), (&PATCH_OP, kind_schema)], true),
        ));
    }
    if rt.scale.is_some() {
        let scale = "io.k8s.api.autoscaling.v1.Scale";
        out.push((
            format!("{object}/scale"),
            item(&[(&GET, scale), (&PUT, scale), (&PATCH_OP, scale)], true),
        ));
    }
    if rt.namespaced {
        let all = Op { method: "get", action: "list", answers: &["200"], query: LIST };
        out.push((format!("{prefix}/{}", rt.plural), item(&[(&all, list_schema)], false)));
    }
    out
}

fn operation(rt: &ResourceType, op: &Op, schema: &str, gvk: &Value, flavor: Flavor) -> Value {
    let verb = match op.action {
        "post" => "create",
        "put" => "replace",
        "deletecollection" => "deletecollection",
        other => other,
    };
    let tag = if rt.group.is_empty() {
        format!("core_{}", rt.version)
    } else {
        format!("{}_{}", rt.group.replace('.', ""), rt.version)
    };
    let mut map = Map::new();
    map.insert("description".into(), json!(format!("{verb} {}", rt.kind)));
    map.insert("operationId".into(), json!(format!("{verb}{}", rt.kind)));
    map.insert("tags".into(), json!([tag]));
    let params: Vec<Value> =
        op.query.iter().map(|(name, kind, description)| flavor.query(name, kind, description)).collect();
    map.insert("parameters".into(), Value::Array(params));
    if matches!(op.method, "post" | "put" | "patch") {
        flavor.body(schema, op.method == "patch", &mut map);
    }
    map.insert("responses".into(), flavor.answers(op.answers, schema));
    map.insert("x-kubernetes-action".into(), json!(op.action));
    map.insert(super::GVK.into(), gvk.clone());
    Value::Object(map)
}
