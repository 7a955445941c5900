//! Authorization of pods' service accounts, as kube-apiserver's RBAC
//! authorizer decides it: a request carrying a service account token (the
//! files the node mounts into pods) is allowed only when a Role or
//! ClusterRole bound to that account grants the verb on the resource
//! (`resource/subresource` for subresources, `resourceNames` honoured, a
//! RoleBinding only in its namespace); otherwise 403 Forbidden with
//! Kubernetes' message. Requests with other credentials (the kubeconfig's)
//! are allowed, as for a cluster admin.

use axum::http::{HeaderMap, Method};
use serde_json::Value;

use super::request::{Query, Target};
use crate::{error::ApiError, store::Txn};

/// Prefix of the tokens the node writes for service accounts.
pub const TOKEN_PREFIX: &str = "kube-sim:serviceaccount:";

/// The service account a request acts as, from its bearer token.
fn service_account(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    let (ns, name) = token.strip_prefix(TOKEN_PREFIX)?.split_once(':')?;
    Some((ns.to_owned(), name.to_owned()))
}

/// The RBAC verb of a request.
pub fn verb(method: &Method, target: &Target, query: &Query) -> &'static str {
    match *method {
        Method::GET if target.name.is_some() => "get",
        Method::GET if query.flag("watch") => "watch",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if target.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

fn grants(rule: &Value, group: &str, resource: &str, verb: &str, name: Option<&str>) -> bool {
    let any = |list: Vec<&str>, want: &str| list.iter().any(|x| *x == "*" || *x == want);
    let names = strings(&rule["resourceNames"]);
    any(strings(&rule["apiGroups"]), group)
        && any(strings(&rule["resources"]), resource)
        && any(strings(&rule["verbs"]), verb)
        && (names.is_empty() || name.is_some_and(|n| names.contains(&n)))
}

fn binds(binding: &Value, ns: &str, account: &str) -> bool {
    binding["subjects"].as_array().into_iter().flatten().any(|s| {
        s["kind"] == "ServiceAccount"
            && s["name"] == account
            && s["namespace"].as_str().unwrap_or_default() == ns
    })
}

/// Rules of the role a binding refers to (a Role in `namespace`, or a ClusterRole).
fn rules_of<'a>(txn: &'a Txn<'_>, role_ref: &Value, namespace: &str) -> Vec<&'a Value> {
    let name = role_ref["name"].as_str().unwrap_or_default().to_owned();
    let key = match role_ref["kind"].as_str() {
        Some("Role") => ("rbac.authorization.k8s.io/roles".to_owned(), namespace.to_owned(), name),
        _ => ("rbac.authorization.k8s.io/clusterroles".to_owned(), String::new(), name),
    };
    txn.get(&key).map(|r| r["rules"].as_array().into_iter().flatten().collect()).unwrap_or_default()
}

/// Allows or forbids a request.
pub fn authorize(
    txn: &Txn<'_>,
    headers: &HeaderMap,
    method: &Method,
    target: &Target,
    query: &Query,
) -> Result<(), ApiError> {
    let Some((sa_ns, sa)) = service_account(headers) else { return Ok(()) };
    let verb = verb(method, target, query);
    let group = target.rt.group.as_str();
    let resource = match &target.sub {
        Some(sub) => format!("{}/{sub}", target.rt.plural),
        None => target.rt.plural.clone(),
    };
    let name = target.name.as_deref();
    let cluster_wide = txn.list("rbac.authorization.k8s.io/clusterrolebindings", None).into_iter().any(|b| {
        binds(&b, &sa_ns, &sa)
            && rules_of(txn, &b["roleRef"], "").iter().any(|r| grants(r, group, &resource, verb, name))
    });
    let in_namespace = !target.namespace.is_empty()
        && txn.list("rbac.authorization.k8s.io/rolebindings", Some(&target.namespace)).into_iter().any(|b| {
            binds(&b, &sa_ns, &sa)
                && rules_of(txn, &b["roleRef"], &target.namespace)
                    .iter()
                    .any(|r| grants(r, group, &resource, verb, name))
        });
    if cluster_wide || in_namespace {
        return Ok(());
    }
    let what = match name {
        Some(n) => format!("{resource} \"{n}\" is forbidden"),
        None => format!("{resource} is forbidden"),
    };
    let group_text = if group.is_empty() { "\"\"".to_owned() } else { format!("\"{group}\"") };
    let scope = if target.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{}\"", target.namespace)
    };
    Err(ApiError::forbidden(format!(
        "{what}: User \"system:serviceaccount:{sa_ns}:{sa}\" cannot {verb} resource \"{resource}\" in API group {group_text} {scope}"
    )))
}
