//! Field sets in Kubernetes' FieldsV1 form: a trie whose keys are `f:<field>` for a field of
//! an object or map, `k:{"<key>":<value>}` for an item of a list keyed by a merge key, and `.`
//! for the item itself; an empty node is a field owned whole (a scalar, or an atomic list).

use serde_json::{Map, Value, json};

use crate::patch::list_key;

/// A path in a field set: its trie keys.
pub type Path = Vec<String>;

fn item_key(key: &str, item: &Value) -> String {
    let mut one = Map::new();
    one.insert(key.to_owned(), item.get(key).cloned().unwrap_or(Value::Null));
    format!("k:{}", Value::Object(one))
}

/// The fields a value sets.
pub fn of_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (format!("f:{k}"), of_value(v))).collect())
        }
        Value::Array(items) => match list_key(items) {
            Some(key) => Value::Object(
                items
                    .iter()
                    .map(|item| {
                        let mut node = of_value(item);
                        node.as_object_mut().map(|m| m.insert(".".into(), json!({})));
                        (item_key(key, item), node)
                    })
                    .collect(),
            ),
            None => json!({}),
        },
        _ => json!({}),
    }
}

/// Every owned field: the paths to empty nodes and to items (`.`).
pub fn leaves(trie: &Value) -> Vec<Path> {
    fn walk(node: &Value, path: &mut Path, out: &mut Vec<Path>) {
        match node.as_object() {
            Some(map) if !map.is_empty() => {
                for (k, child) in map {
                    if k == "." {
                        out.push(path.clone());
                        continue;
                    }
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => out.push(path.clone()),
        }
    }
    let mut out = Vec::new();
    if trie.as_object().is_some_and(|m| !m.is_empty()) {
        walk(trie, &mut Vec::new(), &mut out);
    }
    out
}

/// Whether the set owns `path` or something below it. (Fields are owned one by one: owning a
/// map, `f:data: {}` from applying `data: {}`, is not owning its keys.)
pub fn owns(trie: &Value, path: &[String]) -> bool {
    let mut node = trie;
    for k in path {
        match node.as_object().and_then(|map| map.get(k)) {
            Some(child) => node = child,
            None => return false,
        }
    }
    true
}

/// Removes `path` (and what is below it) from a set, and nodes left empty above it.
pub fn remove(trie: &mut Value, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        *trie = json!({});
        return;
    };
    let Some(map) = trie.as_object_mut() else { return };
    if rest.is_empty() {
        map.remove(head);
        return;
    }
    if let Some(child) = map.get_mut(head)
        && child.as_object().is_some_and(|c| !c.is_empty())
    {
        remove(child, rest);
        if child.as_object().is_some_and(Map::is_empty) {
            map.remove(head);
        }
    }
}

/// `a` with everything of `b` added.
pub fn union(a: &mut Value, b: &Value) {
    let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) else { return };
    for (k, v) in b {
        match a.get_mut(k) {
            Some(existing) => union(existing, v),
            None => {
                a.insert(k.clone(), v.clone());
            }
        }
    }
}

fn matches_key(item: &Value, key: &str) -> bool {
    let Some(Value::Object(want)) = key.strip_prefix("k:").and_then(|j| serde_json::from_str(j).ok()) else {
        return false;
    };
    want.iter().all(|(k, v)| item.get(k) == Some(v))
}

/// The value at `path` in an object.
pub fn value_at<'v>(object: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut node = object;
    for k in path {
        node = match (k.strip_prefix("f:"), node) {
            (Some(field), Value::Object(map)) => map.get(field)?,
            (None, Value::Array(items)) => items.iter().find(|i| matches_key(i, k))?,
            _ => return None,
        };
    }
    Some(node)
}

/// Removes the field or item at `path` from an object.
pub fn remove_value(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = object;
    for k in parents {
        node = match (k.strip_prefix("f:"), node) {
            (Some(field), Value::Object(map)) => match map.get_mut(field) {
                Some(child) => child,
                None => return,
            },
            (None, Value::Array(items)) => match items.iter_mut().find(|i| matches_key(i, k)) {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
    match (last.strip_prefix("f:"), node) {
        (Some(field), Value::Object(map)) => {
            map.remove(field);
        }
        (None, Value::Array(items)) => items.retain(|i| !matches_key(i, last)),
        _ => {}
    }
}

/// The fields a write changed (set to a new value, or added) and those it removed.
pub fn changed(old: &Value, new: &Value) -> (Value, Value) {
    let (mut set, mut removed) = (json!({}), json!({}));
    diff(old, new, &mut Vec::new(), &mut set, &mut removed);
    (set, removed)
}

fn insert(trie: &mut Value, path: &[String], node: Value) {
    let mut at = trie;
    for k in path {
        at = at.as_object_mut().expect("a trie node").entry(k.clone()).or_insert_with(|| json!({}));
    }
    union(at, &node);
    if at.as_object().is_some_and(Map::is_empty) {
        *at = node;
    }
}

fn diff(old: &Value, new: &Value, path: &mut Path, set: &mut Value, removed: &mut Value) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, nv) in n {
                path.push(format!("f:{k}"));
                match o.get(k) {
                    Some(ov) => diff(ov, nv, path, set, removed),
                    None => insert(set, path, of_value(nv)),
                }
                path.pop();
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                path.push(format!("f:{k}"));
                insert(removed, path, json!({}));
                path.pop();
            }
        }
        (Value::Array(o), Value::Array(n)) if list_key(n).is_some() && list_key(n) == list_key(o) => {
            let key = list_key(n).expect("keyed");
            for item in n {
                path.push(item_key(key, item));
                match o.iter().find(|i| i.get(key) == item.get(key)) {
                    Some(before) => diff(before, item, path, set, removed),
                    None => {
                        let mut node = of_value(item);
                        node.as_object_mut().map(|m| m.insert(".".into(), json!({})));
                        insert(set, path, node);
                    }
                }
                path.pop();
            }
            for item in o.iter().filter(|i| !n.iter().any(|x| x.get(key) == i.get(key))) {
                path.push(item_key(key, item));
                insert(removed, path, json!({}));
                path.pop();
            }
        }
        (o, n) if o != n => insert(set, path, json!({})),
        _ => {}
    }
}

/// A path as Kubernetes names it in conflicts: `.spec.containers[name="c"].image`.
pub fn shown(path: &[String]) -> String {
    let mut out = String::new();
    for k in path {
        if let Some(field) = k.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(Value::Object(key)) =
            k.strip_prefix("k:").and_then(|j| serde_json::from_str(j).ok())
        {
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    out
}
