//! The scheduler's one check besides the node: a pod whose claim is missing or being deleted
//! is not bound (Kubernetes' volume binding refuses it), and says why in its PodScheduled
//! condition, as kube-scheduler does.

use serde_json::{Value, json};

use crate::store::Txn;

/// Why `pod` cannot be bound now, if it cannot.
pub fn unschedulable(txn: &Txn<'_>, pod: &Value) -> Option<String> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let claims = pod["spec"]["volumes"].as_array().into_iter().flatten();
    claims.filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str()).find_map(|claim| {
        let key = ("/persistentvolumeclaims".to_owned(), namespace.to_owned(), claim.to_owned());
        match txn.get(&key) {
            None => Some(format!("0/1 nodes are available: persistentvolumeclaim \"{claim}\" not found.")),
            Some(c) if c["metadata"].get("deletionTimestamp").is_some() => {
                Some(format!("0/1 nodes are available: persistentvolumeclaim \"{claim}\" is being deleted."))
            }
            Some(_) => None,
        }
    })
}

/// Records why `pod` waits in its PodScheduled condition; false when it already says so.
pub fn mark_unschedulable(pod: &mut Value, why: &str) -> bool {
    let condition = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why,
        "lastTransitionTime": crate::objects::now()});
    let conditions = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    if conditions.iter().any(|c| c["type"] == "PodScheduled" && c["message"] == why) {
        return false;
    }
    let mut kept: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
    kept.push(condition);
    pod["status"]["conditions"] = Value::Array(kept);
    pod["status"]["phase"] = json!("Pending");
    true
}
