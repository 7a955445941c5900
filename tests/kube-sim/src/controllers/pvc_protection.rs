//! Storage object in-use protection, as Kubernetes does it: every claim is created with the
//! `kubernetes.io/pvc-protection` finalizer (an admission plugin adds it), and a claim being
//! deleted keeps it while a scheduled pod that has not terminated uses the claim. The
//! scheduler binds no pod whose claim is missing or being deleted (`node`), and the StatefulSet
//! controller recreates the claims of its pending pods, so deleting a member's claim and then
//! its pod gives the new pod a new, empty claim, in that order.

use serde_json::Value;

use crate::{objects, store::Txn};

use objects::PVC_PROTECTION as FINALIZER;

/// Whether `pod` uses claim `name`: scheduled, not terminated, and naming it in a volume.
pub fn uses(pod: &Value, name: &str) -> bool {
    let scheduled = pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let terminated = matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    scheduled
        && !terminated
        && pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == name)
}

/// Lets go of every claim being deleted that no pod uses any more.
pub fn reconcile_all(txn: &mut Txn<'_>) {
    // Only claims being deleted are copied (a fleet's thousands of claims are only looked at).
    let deleting: Vec<Value> = txn
        .scan("/persistentvolumeclaims", None)
        .filter(|c| {
            let m = &c["metadata"];
            m.get("deletionTimestamp").is_some()
                && m["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == FINALIZER))
        })
        .cloned()
        .collect();
    for claim in deleting {
        let m = &claim["metadata"];
        let namespace = m["namespace"].as_str().unwrap_or_default().to_owned();
        let name = m["name"].as_str().unwrap_or_default().to_owned();
        if txn.scan("/pods", Some(&namespace)).any(|p| uses(p, &name)) {
            continue;
        }
        let mut released = claim.clone();
        if let Some(finalizers) = released["metadata"]["finalizers"].as_array_mut() {
            finalizers.retain(|f| f != FINALIZER);
        }
        let key = ("/persistentvolumeclaims".to_owned(), namespace, name);
        let stored = txn.put(key.clone(), released);
        objects::finish_deletion(txn, &key, stored);
    }
}
