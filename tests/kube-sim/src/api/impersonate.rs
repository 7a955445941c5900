//! User impersonation (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` headers:
//! `kubectl --as`, `--as-group`), as kube-apiserver's filter does it: the authenticated user
//! needs `impersonate` on each identity it takes on (`users`, `groups`, `uids`, or the
//! `serviceaccounts` object for a service account's name), and the request then runs as that
//! identity, with RBAC and reviews judging it.

use axum::http::HeaderMap;

use super::authz::{Attributes, allowed, refusal};
use crate::{auth::UserInfo, error::ApiError, store::Txn};

fn values<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// What impersonating `name` as a user asks RBAC for.
fn user_attributes(name: &str) -> Attributes {
    let account = name.strip_prefix("system:serviceaccount:").and_then(|rest| rest.split_once(':'));
    match account {
        Some((namespace, account)) => Attributes {
            verb: "impersonate".into(),
            resource: "serviceaccounts".into(),
            namespace: namespace.into(),
            name: Some(account.into()),
            ..Attributes::default()
        },
        None => Attributes {
            verb: "impersonate".into(),
            resource: "users".into(),
            name: Some(name.into()),
            ..Attributes::default()
        },
    }
}

/// The identity a request runs as: `user`, or the one it impersonates when allowed to.
pub fn effective(txn: &Txn<'_>, user: UserInfo, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let (names, groups, uids) = (
        values(headers, "impersonate-user"),
        values(headers, "impersonate-group"),
        values(headers, "impersonate-uid"),
    );
    let Some(name) = names.first() else {
        if groups.is_empty() && uids.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::bad_request("impersonating groups or a uid requires impersonating a user"));
    };
    let mut asked = vec![user_attributes(name)];
    asked.extend(groups.iter().map(|g| Attributes {
        verb: "impersonate".into(),
        resource: "groups".into(),
        name: Some((*g).into()),
        ..Attributes::default()
    }));
    asked.extend(uids.iter().map(|u| Attributes {
        verb: "impersonate".into(),
        group: "authentication.k8s.io".into(),
        resource: "uids".into(),
        name: Some((*u).into()),
        ..Attributes::default()
    }));
    if let Some(refused) = asked.iter().find(|a| !allowed(txn, &user, a)) {
        return Err(ApiError::forbidden(refusal(&user, refused)));
    }
    let mut taken: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    if let Some(namespace) =
        name.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':')).map(|(ns, _)| ns)
    {
        taken.push("system:serviceaccounts".into());
        taken.push(format!("system:serviceaccounts:{namespace}"));
    }
    if *name != "system:anonymous" && !taken.iter().any(|g| g == "system:authenticated") {
        taken.push("system:authenticated".into());
    }
    Ok(UserInfo {
        username: (*name).into(),
        uid: uids.first().map(|u| (*u).to_owned()).unwrap_or_default(),
        groups: taken,
    })
}
