//! Least privilege, proven rather than listed: what the chart's roles grant
//! each of its service accounts, against what kube-sim saw each one use (its
//! own requests, and the permissions the cluster-service asked RBAC about on
//! its callers' behalf).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// (API group, resource or `resource/subresource`, verb).
pub type Grant = (String, String, String);

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

/// What the roles among `objects` grant each service account (by user name) they are bound to.
pub fn granted(objects: &[Value]) -> BTreeMap<String, BTreeSet<Grant>> {
    let role = |kind: &str, name: &str, namespace: &str| {
        objects.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && (kind == "ClusterRole" || o["metadata"]["namespace"] == namespace)
        })
    };
    let mut out: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    for binding in objects.iter().filter(|o| o["kind"] == "RoleBinding" || o["kind"] == "ClusterRoleBinding")
    {
        let namespace = binding["metadata"]["namespace"].as_str().unwrap_or_default();
        let role_ref = &binding["roleRef"];
        let Some(role) = role(
            role_ref["kind"].as_str().unwrap_or_default(),
            role_ref["name"].as_str().unwrap_or_default(),
            namespace,
        ) else {
            continue;
        };
        for subject in
            binding["subjects"].as_array().into_iter().flatten().filter(|s| s["kind"] == "ServiceAccount")
        {
            let user = format!(
                "system:serviceaccount:{}:{}",
                subject["namespace"].as_str().unwrap_or_default(),
                subject["name"].as_str().unwrap_or_default()
            );
            let grants = out.entry(user).or_default();
            for rule in role["rules"].as_array().into_iter().flatten() {
                for group in strings(&rule["apiGroups"]) {
                    for resource in strings(&rule["resources"]) {
                        for verb in strings(&rule["verbs"]) {
                            grants.insert((group.clone(), resource.clone(), verb));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Grants nobody used, by user, leaving out `allowed` (user suffix, group, resource, verb: rare
/// paths a test run does not take).
pub fn unused(
    granted: &BTreeMap<String, BTreeSet<Grant>>,
    used: &BTreeMap<String, BTreeSet<Grant>>,
    allowed: &[(&str, &str, &str, &str)],
) -> BTreeMap<String, Vec<Grant>> {
    let mut out = BTreeMap::new();
    for (user, grants) in granted {
        let seen = used.get(user);
        let idle: Vec<Grant> = grants
            .iter()
            .filter(|g| !seen.is_some_and(|s| s.contains(*g)))
            .filter(|(group, resource, verb)| {
                !allowed
                    .iter()
                    .any(|(u, ag, ar, av)| user.ends_with(u) && ag == group && ar == resource && av == verb)
            })
            .cloned()
            .collect();
        if !idle.is_empty() {
            out.insert(user.clone(), idle);
        }
    }
    out
}
