//! Authorization, as kube-apiserver's RBAC authorizer decides it: a request
//! is allowed only when a Role or ClusterRole bound to its user, one of its
//! groups or its service account grants the verb on the resource
//! (`resource/subresource` for subresources, `resourceNames` honoured, a
//! RoleBinding only in its namespace); otherwise 403 Forbidden with
//! Kubernetes' message. Members of `system:masters` (the kubeconfig's admin)
//! may do anything, as the API server's superuser group.

use axum::http::{HeaderMap, Method};
use serde_json::Value;

use super::request::{Query, Target};
use crate::{auth::UserInfo, objects, store::Txn};

/// What a request (or a SubjectAccessReview) asks to do.
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    /// RBAC verb.
    pub verb: String,
    /// API group (empty: core).
    pub group: String,
    /// Resource, `resource/subresource` for subresources.
    pub resource: String,
    /// Namespace (empty: cluster scope).
    pub namespace: String,
    /// Object name, when the request names one.
    pub name: Option<String>,
}

impl Attributes {
    /// The attributes of an API request.
    pub fn of(method: &Method, target: &Target, query: &Query) -> Self {
        Self {
            verb: verb(method, target, query).into(),
            group: target.rt.group.clone(),
            resource: match &target.sub {
                Some(sub) => format!("{}/{sub}", target.rt.plural),
                None => target.rt.plural.clone(),
            },
            namespace: target.namespace.clone(),
            name: target.name.clone(),
        }
    }
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

/// The strings of a JSON array (none when it is not one).
pub(super) fn strings(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

fn grants(rule: &Value, a: &Attributes) -> bool {
    let any = |list: Vec<&str>, want: &str| list.iter().any(|x| *x == "*" || *x == want);
    let names = strings(&rule["resourceNames"]);
    any(strings(&rule["apiGroups"]), &a.group)
        && any(strings(&rule["resources"]), &a.resource)
        && any(strings(&rule["verbs"]), &a.verb)
        && (names.is_empty() || a.name.as_deref().is_some_and(|n| names.contains(&n)))
}

fn binds(binding: &Value, user: &UserInfo) -> bool {
    binding["subjects"].as_array().into_iter().flatten().any(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str() {
            Some("ServiceAccount") => {
                let ns = s["namespace"].as_str().unwrap_or_default();
                // `system:serviceaccount:<ns>:<name>`, compared without building it per binding.
                let account = user.username.strip_prefix("system:serviceaccount:");
                account.and_then(|a| a.split_once(':')).is_some_and(|(n, a)| n == ns && a == name)
            }
            Some("User") => user.username == name,
            Some("Group") => user.groups.iter().any(|g| g == name),
            _ => false,
        }
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

/// Whether RBAC allows `user` to do `a`.
pub fn allowed(txn: &Txn<'_>, user: &UserInfo, a: &Attributes) -> bool {
    if user.is_master() {
        return true;
    }
    // Bindings are visited where they are stored, not copied: every request is authorized, and
    // copying each binding per request was an eighth of the API server's CPU at 1 000 clusters.
    let cluster_wide = txn
        .scan("rbac.authorization.k8s.io/clusterrolebindings", None)
        .any(|b| binds(b, user) && rules_of(txn, &b["roleRef"], "").iter().any(|r| grants(r, a)));
    cluster_wide
        || (!a.namespace.is_empty()
            && txn.scan("rbac.authorization.k8s.io/rolebindings", Some(&a.namespace)).any(|b| {
                binds(b, user) && rules_of(txn, &b["roleRef"], &a.namespace).iter().any(|r| grants(r, a))
            }))
}

/// Kubernetes' message when RBAC refuses `user` `a`.
pub fn refusal(user: &UserInfo, a: &Attributes) -> String {
    let what = match &a.name {
        Some(n) => format!("{} \"{n}\" is forbidden", a.resource),
        None => format!("{} is forbidden", a.resource),
    };
    let group = if a.group.is_empty() { "\"\"".to_owned() } else { format!("\"{}\"", a.group) };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    format!(
        "{what}: User \"{}\" cannot {} resource \"{}\" in API group {group} {scope}",
        user.username, a.verb, a.resource
    )
}

/// What a request asks RBAC for: its verb on its resource, and for a server-side apply of an
/// object that does not exist yet `create` too, as kube-apiserver's patch handler authorizes it.
fn asks(
    txn: &Txn<'_>,
    method: &Method,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Vec<Attributes> {
    let a = Attributes::of(method, target, query);
    let apply = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/apply-patch"));
    let creates = *method == Method::PATCH
        && apply
        && target.sub.is_none()
        && target
            .name
            .as_deref()
            .is_some_and(|n| txn.get(&objects::key(&target.rt, &target.namespace, n)).is_none());
    let create = creates.then(|| Attributes { verb: "create".into(), ..a.clone() });
    std::iter::once(a).chain(create).collect()
}

/// Allows a request of `user` (returning what it was allowed) or names what it was refused.
pub fn authorize(
    txn: &Txn<'_>,
    user: &UserInfo,
    method: &Method,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Vec<Attributes>, Attributes> {
    let asked = asks(txn, method, target, query, headers);
    match asked.iter().find(|a| !allowed(txn, user, a)) {
        Some(refused) => Err(refused.clone()),
        None => Ok(asked),
    }
}
