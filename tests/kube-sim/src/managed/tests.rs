use serde_json::{Value, json};

use super::{Writer, record_apply, record_update};
use crate::{objects::Part, patch};

fn w(manager: &str) -> Writer<'_> {
    Writer { manager, part: Part::Main, subresource: None, status_subresource: true, api_version: "apps/v1" }
}

fn owners(object: &Value) -> Vec<(String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["manager"].as_str().unwrap().to_owned(), e["operation"].as_str().unwrap().to_owned()))
        .collect()
}

fn fields_of<'v>(object: &'v Value, manager: &str) -> &'v Value {
    let entries = object["metadata"]["managedFields"].as_array().unwrap();
    &entries.iter().find(|e| e["manager"] == manager).unwrap()["fieldsV1"]
}

/// An apply by `manager` onto `object`, as the API does it.
fn apply(object: Option<&Value>, applied: &Value, manager: &str, force: bool) -> Result<Value, String> {
    let mut merged = patch::apply(object, applied);
    record_apply(object, applied, &mut merged, &w(manager), force).map_err(|e| e.message)?;
    Ok(merged)
}

/// A merge patch by `manager`.
fn update(object: &Value, change: &Value, manager: &str) -> Value {
    let mut new = object.clone();
    patch::merge(&mut new, change);
    record_update(Some(object), &mut new, &w(manager));
    new
}

#[test]
fn an_update_owns_what_it_changed_and_takes_it_from_the_others() {
    let mut created = json!({"metadata": {"name": "s", "uid": "u", "labels": {"a": "1"}}, "spec": {"replicas": 3}, "status": {"replicas": 0}});
    record_update(None, &mut created, &w("creator"));
    assert_eq!(
        fields_of(&created, "creator"),
        &json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:replicas": {}}}),
        "server-set metadata and the status subresource are nobody's here"
    );
    let scaled = update(&created, &json!({"spec": {"replicas": 5}}), "scaler");
    assert_eq!(fields_of(&scaled, "scaler"), &json!({"f:spec": {"f:replicas": {}}}));
    assert_eq!(fields_of(&scaled, "creator"), &json!({"f:metadata": {"f:labels": {"f:a": {}}}}));
    let same = update(&scaled, &json!({"spec": {"replicas": 5}}), "other");
    assert_eq!(
        same["metadata"]["managedFields"], scaled["metadata"]["managedFields"],
        "a no-op owns nothing"
    );
}

#[test]
fn an_apply_conflicts_with_another_owner_of_a_different_value_unless_forced() {
    let applied = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "etcd", "image": "etcd:3.5"}]}}}});
    let object = apply(None, &applied, "operator", false).unwrap();
    assert_eq!(owners(&object), [("operator".to_owned(), "Apply".to_owned())]);
    let scaled = update(&object, &json!({"spec": {"replicas": 5}}), "kubectl-scale");
    let refused = apply(Some(&scaled), &applied, "operator", false).unwrap_err();
    assert_eq!(
        refused,
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
    // The same value is no conflict: both own it.
    let agreed = json!({"spec": {"replicas": 5}});
    let shared = apply(Some(&scaled), &agreed, "other", false).unwrap();
    assert_eq!(fields_of(&shared, "kubectl-scale"), &json!({"f:spec": {"f:replicas": {}}}));
    // Forced: the field is taken.
    let forced = apply(Some(&scaled), &applied, "operator", true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert_eq!(owners(&forced), [("operator".to_owned(), "Apply".to_owned())]);
    // The same name updating is another manager: its apply conflicts with its own update.
    let edited = update(&forced, &json!({"spec": {"replicas": 7}}), "operator");
    let refused = apply(Some(&edited), &applied, "operator", false).unwrap_err();
    assert_eq!(
        refused,
        "Apply failed with 1 conflict: conflict with \"operator\" using apps/v1: .spec.replicas"
    );
    // An item of a keyed list is named by its key.
    let image = update(
        &forced,
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "etcd", "image": "etcd:3.6"}]}}}}),
        "kubectl-edit",
    );
    let refused = apply(Some(&image), &applied, "operator", false).unwrap_err();
    assert!(refused.contains(".spec.template.spec.containers[name=\"etcd\"]"), "{refused}");
}

#[test]
fn an_apply_removes_what_it_stopped_applying_unless_someone_else_owns_it() {
    let v1 = json!({"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}, "spec": {"conditions": [{"type": "X", "status": "True"}, {"type": "Y", "status": "True"}]}});
    let object = apply(None, &v1, "op", false).unwrap();
    let other = json!({"spec": {"conditions": [{"type": "Z", "status": "False"}]}});
    let object = apply(Some(&object), &other, "other", false).unwrap();
    // Label c changed by an update: the updater owns it now.
    let object = update(&object, &json!({"metadata": {"labels": {"c": "4"}}}), "editor");
    let v2 = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"conditions": [{"type": "X", "status": "False"}]}});
    let object = apply(Some(&object), &v2, "op", false).unwrap();
    assert_eq!(object["metadata"]["labels"], json!({"a": "1", "c": "4"}), "b dropped, c kept for its owner");
    let types: Vec<_> =
        object["spec"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].clone()).collect();
    assert_eq!(types, [json!("X"), json!("Z")], "Y dropped by its manager, Z kept for the other manager");
    assert_eq!(object["spec"]["conditions"][0]["status"], "False");
}

#[test]
fn a_struct_emptied_by_removal_goes_with_its_fields() {
    // The operator's status.operation: one writer records it, then stops applying it.
    let recorded =
        json!({"spec": {"operation": {"type": "Create", "step": "Bootstrapping"}, "phase": "Creating"}});
    let object = apply(None, &recorded, "lifecycle", false).unwrap();
    let done = json!({"spec": {"phase": "Running"}});
    let object = apply(Some(&object), &done, "lifecycle", false).unwrap();
    assert_eq!(object["spec"], json!({"phase": "Running"}), "no `operation: {{}}` is left behind");
    // Someone else's field in the struct keeps it, with that field alone.
    let object = apply(Some(&object), &recorded, "lifecycle", false).unwrap();
    let object = update(&object, &json!({"spec": {"operation": {"note": "x"}}}), "editor");
    let object = apply(Some(&object), &done, "lifecycle", false).unwrap();
    assert_eq!(object["spec"]["operation"], json!({"note": "x"}));
    // A struct another manager applied empty is owned whole by it, and stays when emptied.
    let object = apply(Some(&object), &json!({"spec": {"paused": {"by": "x"}}}), "lifecycle", false).unwrap();
    let object = apply(Some(&object), &json!({"spec": {"paused": {}}}), "other", false).unwrap();
    let object = apply(Some(&object), &done, "lifecycle", false).unwrap();
    assert_eq!(object["spec"]["paused"], json!({}));
}

#[test]
fn the_same_apply_again_changes_nothing() {
    let applied = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 3}});
    let once = apply(None, &applied, "op", false).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let twice = apply(Some(&once), &applied, "op", false).unwrap();
    assert_eq!(once, twice, "managed fields and their times stay: a no-op write stays a no-op");
}
