//! Patches: JSON merge, JSON patch, strategic merge (by merge key), and
//! server-side apply (approximated; see the README).

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
fn list_key(items: &[Value]) -> Option<&'static str> {
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

/// Whether `config` sets the field at `path` (keys; list items addressed by merge key value).
fn sets(config: &Value, path: &[String]) -> bool {
    let Some((head, rest)) = path.split_first() else { return true };
    match config {
        Value::Object(m) => m.get(head).is_some_and(|v| sets(v, rest)),
        Value::Array(items) => list_key(items).is_some_and(|k| {
            items.iter().filter(|i| item_key(i, k).as_deref() == Some(head.as_str())).any(|i| sets(i, rest))
        }),
        _ => false,
    }
}

/// Removes from `object` what `previous` applied and `now` no longer does, unless another manager applies it.
fn remove_dropped(
    object: &mut Value,
    previous: &Value,
    now: &Value,
    others: &[Value],
    path: &mut Vec<String>,
) {
    match (object, previous) {
        (Value::Object(obj), Value::Object(prev)) => {
            for (k, pv) in prev {
                path.push(k.clone());
                let still = now.get(k);
                match (still, obj.get_mut(k)) {
                    (None, Some(_)) if !others.iter().any(|o| sets(o, path)) => {
                        obj.remove(k);
                    }
                    (Some(nv), Some(ov)) => remove_dropped(ov, pv, nv, others, path),
                    _ => {}
                }
                path.pop();
            }
        }
        (Value::Array(obj), Value::Array(prev)) => {
            let Some(key) = list_key(prev) else { return };
            let now_items = now.as_array().cloned().unwrap_or_default();
            for pi in prev {
                let id = item_key(pi, key).unwrap_or_default();
                path.push(id.clone());
                match now_items.iter().find(|ni| item_key(ni, key).as_deref() == Some(id.as_str())) {
                    None if !others.iter().any(|o| sets(o, path)) => {
                        obj.retain(|oi| item_key(oi, key).as_deref() != Some(id.as_str()));
                    }
                    Some(ni) => {
                        if let Some(oi) =
                            obj.iter_mut().find(|oi| item_key(oi, key).as_deref() == Some(id.as_str()))
                        {
                            remove_dropped(oi, pi, ni, others, path);
                        }
                    }
                    None => {}
                }
                path.pop();
            }
        }
        _ => {}
    }
}

/// Merges an applied configuration: maps merge, keyed lists merge by key, other lists and scalars replace.
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

/// Server-side apply of `applied` by one manager onto `current` (absent: create).
///
/// `previous` is what this manager applied last; fields it applied then and
/// not now are removed unless another manager (`others`) applies them.
pub fn apply(current: Option<&Value>, applied: &Value, previous: Option<&Value>, others: &[Value]) -> Value {
    let mut object = current.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(previous) = previous {
        remove_dropped(&mut object, previous, applied, others, &mut Vec::new());
    }
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

    #[test]
    fn apply_removes_what_the_manager_stopped_applying_but_keeps_others_fields() {
        let v1 = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "status": {"conditions": [{"type": "X", "status": "True"}, {"type": "Y", "status": "True"}]}});
        let object = apply(None, &v1, None, &[]);
        let other = json!({"status": {"conditions": [{"type": "Z", "status": "False"}]}});
        let object = apply(Some(&object), &other, None, std::slice::from_ref(&v1));
        let v2 = json!({"metadata": {"labels": {"a": "1"}}, "status": {"conditions": [{"type": "X", "status": "False"}]}});
        let object = apply(Some(&object), &v2, Some(&v1), &[other]);
        assert_eq!(object["metadata"]["labels"], json!({"a": "1"}));
        let types: Vec<_> =
            object["status"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].clone()).collect();
        assert_eq!(types, [json!("X"), json!("Z")], "Y dropped by its manager, Z kept for the other manager");
        assert_eq!(object["status"]["conditions"][0]["status"], "False");
    }
}
