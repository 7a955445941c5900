//! Patches: JSON merge, JSON patch, strategic merge (by merge key), and
//! server-side apply's merge (ownership is `managed`'s).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Keys that identify items of well-known lists of objects (strategic merge keys,
/// `x-kubernetes-list-map-keys` of the types served here).
const MERGE_KEYS: &[&str] = &["name", "type", "containerPort", "mountPath", "port", "key", "ip", "uid"];

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch, as Kubernetes applies it: a `test` for `null` passes on a missing path.
pub fn json(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: Vec<Value> = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?
        .iter()
        .filter(|op| {
            let missing = op["path"].as_str().is_some_and(|p| target.pointer(p).is_none());
            !(op["op"] == "test" && op["value"].is_null() && missing)
        })
        .cloned()
        .collect();
    let ops: json_patch::Patch = serde_json::from_value(Value::Array(ops))
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &ops).map_err(|e| ApiError::invalid(format!("JSON patch failed: {e}")))
}

/// The merge key of a list whose items are all objects sharing one known key.
pub(crate) fn list_key(items: &[Value]) -> Option<&'static str> {
    MERGE_KEYS.iter().copied().find(|k| !items.is_empty() && items.iter().all(|i| i.get(*k).is_some()))
}

fn item_key(item: &Value, key: &str) -> Option<String> {
    item.get(key).map(|v| v.to_string())
}

/// Strategic merge: maps merge, `null` deletes, keyed lists merge by key, other lists replace.
pub fn strategic(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if k.starts_with("$") {
                    continue;
                }
                if v.is_null() {
                    t.remove(k);
                } else {
                    strategic(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (Value::Array(t), Value::Array(p)) => {
            match list_key(p).filter(|k| t.iter().all(|i| i.get(*k).is_some())) {
                Some(key) => {
                    for item in p {
                        let id = item_key(item, key);
                        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                            t.retain(|i| item_key(i, key) != id);
                        } else if let Some(existing) = t.iter_mut().find(|i| item_key(i, key) == id) {
                            strategic(existing, item);
                        } else {
                            t.push(item.clone());
                        }
                    }
                }
                None => *t = p.clone(),
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Merges an applied configuration: maps recursively, keyed lists by key, the rest replaced.
fn apply_merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                apply_merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (Value::Array(t), Value::Array(a)) => {
            match list_key(a).filter(|k| t.iter().all(|i| i.get(*k).is_some())) {
                Some(key) => {
                    for item in a {
                        let id = item_key(item, key);
                        match t.iter_mut().find(|i| item_key(i, key) == id) {
                            Some(existing) => apply_merge(existing, item),
                            None => t.push(item.clone()),
                        }
                    }
                }
                None => *t = a.clone(),
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// Server-side apply of `applied` onto `current` (absent: create): merged by merge key. What
/// the manager stopped applying is taken away by `managed`, which knows who owns what.
pub fn apply(current: Option<&Value>, applied: &Value) -> Value {
    let mut object = current.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    apply_merge(&mut object, applied);
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_tests_for_null_pass_on_missing_paths() {
        let mut t = json!({"metadata": {"name": "x"}});
        let p = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                       {"op": "add", "path": "/metadata/finalizers", "value": []},
                       {"op": "add", "path": "/metadata/finalizers/-", "value": "f"}]);
        json(&mut t, &p).unwrap();
        assert_eq!(t["metadata"]["finalizers"], json!(["f"]));
        assert!(json(&mut t, &json!([{"op": "test", "path": "/metadata/name", "value": "y"}])).is_err());
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut t =
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        strategic(
            &mut t,
            &json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}}),
        );
        assert_eq!(
            t["spec"]["containers"],
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}, {"name": "c", "image": "w"}])
        );
        strategic(&mut t, &json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}));
        assert_eq!(t["spec"]["containers"].as_array().unwrap().len(), 2);
    }
}
