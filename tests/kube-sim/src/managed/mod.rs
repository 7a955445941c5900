//! Field ownership (`metadata.managedFields`), as kube-apiserver's field manager keeps it:
//! each manager, per operation (Apply or Update) and subresource, owns a set of fields. An
//! update owns what it changed, taking it from everyone else; an apply owns what it applies,
//! is refused with 409 when another manager owns a field it sets to a different value (unless
//! forced, which takes the field), and removes what it applied before and no longer does
//! when no other manager owns it.

pub mod trie;

use serde_json::{Value, json};

use crate::{error::ApiError, objects::Part};

/// Who writes, and to which part of the object.
#[derive(Clone, Copy, Debug)]
pub struct Writer<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// The main resource or `/status`.
    pub part: Part,
    /// The subresource written through (`status`, `scale`), if any.
    pub subresource: Option<&'a str>,
    /// Whether status is a subresource of the kind (then the main resource owns none of it).
    pub status_subresource: bool,
    /// The apiVersion written with.
    pub api_version: &'a str,
}

impl Writer<'_> {
    fn is(&self, entry: &Value, operation: &str) -> bool {
        entry["manager"] == self.manager
            && entry["operation"] == operation
            && entry["subresource"].as_str() == self.subresource
    }
}

/// Metadata the server sets, which no manager owns.
const SERVER_SET: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The part of an object a writer's fields are counted in.
fn owned_view(object: &Value, w: &Writer<'_>) -> Value {
    let mut view = object.clone();
    let Some(map) = view.as_object_mut() else { return json!({}) };
    map.remove("apiVersion");
    map.remove("kind");
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| !SERVER_SET.contains(&k.as_str()));
        if meta.is_empty() {
            map.remove("metadata");
        }
    }
    match w.part {
        Part::Status => map.retain(|k, _| k == "status"),
        Part::Main if w.status_subresource => {
            map.remove("status");
        }
        Part::Main => {}
    }
    view
}

fn entries(object: Option<&Value>) -> Vec<Value> {
    object.and_then(|o| o["metadata"]["managedFields"].as_array().cloned()).unwrap_or_default()
}

fn entry(w: &Writer<'_>, operation: &str, fields: Value) -> Value {
    let mut e = json!({"manager": w.manager, "operation": operation, "apiVersion": w.api_version,
        "time": crate::objects::now(), "fieldsType": "FieldsV1", "fieldsV1": fields});
    if let Some(sub) = w.subresource {
        e["subresource"] = json!(sub);
    }
    e
}

/// Stores `list` as the object's managed fields; an unchanged ownership keeps its entries (and
/// their times) as they were, so a write that changes nothing stays a no-op.
fn store(object: &mut Value, old: &[Value], mut list: Vec<Value>) {
    list.retain(|e| e["fieldsV1"].as_object().is_some_and(|f| !f.is_empty()));
    let same = |a: &Value, b: &Value| {
        ["manager", "operation", "subresource", "fieldsV1"].iter().all(|k| a.get(*k) == b.get(*k))
    };
    let unchanged = list.len() == old.len() && list.iter().zip(old).all(|(a, b)| same(a, b));
    let list = if unchanged { old.to_vec() } else { list };
    if object["metadata"].is_null() {
        object["metadata"] = json!({});
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn without(fields: &mut Value, paths: &[trie::Path]) {
    for path in paths {
        trie::remove(fields, path);
    }
}

/// Records an Update (a create, an update or a non-apply patch) of `old` into `new`.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>) {
    let before = old.map_or_else(|| json!({}), |o| owned_view(o, w));
    let (set, removed) = trie::changed(&before, &owned_view(new, w));
    let previous = entries(old);
    let taken: Vec<trie::Path> = trie::leaves(&set).into_iter().chain(trie::leaves(&removed)).collect();
    let mut list = previous.clone();
    for e in &mut list {
        without(&mut e["fieldsV1"], &taken);
    }
    match list.iter_mut().find(|e| w.is(e, "Update")) {
        Some(mine) => {
            trie::union(&mut mine["fieldsV1"], &set);
            if !taken.is_empty() {
                mine["time"] = json!(crate::objects::now());
            }
        }
        None => list.push(entry(w, "Update", set)),
    }
    store(new, &previous, list);
}

/// Removes the value at `path`, and the maps above it that it alone filled, unless someone owns
/// such a map itself: Kubernetes drops a struct emptied by removal rather than leave `{}` behind
/// (a required field inside it would then fail validation; structured-merge-diff#171, #184).
fn remove_with_emptied(merged: &mut Value, path: &[String], owned: impl Fn(&[String]) -> bool) {
    trie::remove_value(merged, path);
    for end in (1..path.len()).rev() {
        let parent = &path[..end];
        let emptied = parent.last().is_some_and(|k| k.starts_with("f:"))
            && trie::value_at(merged, parent).and_then(Value::as_object).is_some_and(|m| m.is_empty());
        if !emptied || owned(parent) {
            break;
        }
        trie::remove_value(merged, parent);
    }
}

/// Records an apply of `applied` by `w` that turned `old` (absent: a create) into `merged`:
/// refuses conflicts unless `force`, takes forced fields from their owners, and removes from
/// `merged` what `w` applied before and no longer does, where no one else owns it.
pub fn record_apply(
    old: Option<&Value>,
    applied: &Value,
    merged: &mut Value,
    w: &Writer<'_>,
    force: bool,
) -> Result<(), ApiError> {
    let fields = trie::of_value(&owned_view(applied, w));
    let previous = entries(old);
    let mut list = previous.clone();
    let mine = list.iter().position(|e| w.is(e, "Apply"));
    let mut conflicts = Vec::new();
    if let Some(old) = old {
        for path in trie::leaves(&fields) {
            // Maps and list items are owned field by field: only values of their own conflict.
            let value = trie::value_at(applied, &path);
            if value.is_some_and(Value::is_object) || trie::value_at(old, &path) == value {
                continue;
            }
            // A manager is its name, operation and subresource: its own updates are another's.
            for (i, e) in list.iter().enumerate() {
                if Some(i) != mine && trie::owns(&e["fieldsV1"], &path) {
                    conflicts.push((i, path.clone()));
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let lines: Vec<String> = conflicts
            .iter()
            .map(|(i, path)| {
                let e = &list[*i];
                format!(
                    "conflict with \"{}\" using {}: {}",
                    e["manager"].as_str().unwrap_or_default(),
                    e["apiVersion"].as_str().unwrap_or_default(),
                    trie::shown(path)
                )
            })
            .collect();
        let n = lines.len();
        let plural = if n == 1 { "" } else { "s" };
        return Err(ApiError::conflict(format!(
            "Apply failed with {n} conflict{plural}: {}",
            lines.join("\n")
        )));
    }
    for (i, path) in &conflicts {
        trie::remove(&mut list[*i]["fieldsV1"], path);
    }
    if let Some(before) = mine.map(|i| list[i]["fieldsV1"].clone()) {
        // Kept when this apply still sets it, or another manager owns it.
        let owned = |path: &[String]| {
            trie::owns(&fields, path)
                || list.iter().enumerate().any(|(i, e)| Some(i) != mine && trie::owns(&e["fieldsV1"], path))
        };
        for path in trie::leaves(&before) {
            if !owned(&path) {
                remove_with_emptied(merged, &path, owned);
            }
        }
    }
    match mine {
        Some(i) => list[i] = entry(w, "Apply", fields),
        None => list.push(entry(w, "Apply", fields)),
    }
    store(merged, &previous, list);
    Ok(())
}

#[cfg(test)]
mod tests;
