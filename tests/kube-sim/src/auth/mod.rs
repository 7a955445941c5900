//! Authentication, as kube-apiserver's authenticators decide it: the
//! kubeconfig's static token is the cluster admin (group `system:masters`),
//! a service account token (a JWT kube-sim signed, [`tokens`]) is its account
//! while the account exists, no token is `system:anonymous`, and any other
//! token is refused with 401.

pub mod audit;
pub mod tokens;

use axum::http::HeaderMap;
use serde::Serialize;

pub use tokens::{API_AUDIENCE, Tokens};

use crate::store::Txn;

/// The static token of the kubeconfig kube-sim writes (its `--token-auth-file` of one line).
pub const ADMIN_TOKEN: &str = "kube-sim";

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// The user name RBAC subjects of kind User match.
    pub username: String,
    /// The account's UID (empty for users).
    pub uid: String,
    /// Groups RBAC subjects of kind Group match.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The kubeconfig's user.
    pub fn admin() -> Self {
        Self {
            username: "kubernetes-admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// A request without credentials.
    pub fn anonymous() -> Self {
        Self {
            username: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    /// Whether RBAC lets this user do anything (the `system:masters` group).
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// The bearer token of a request.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

/// Who `token` is when presented to one of `audiences`: the admin's static token only to the API
/// server's own audience (static tokens are audience-agnostic), a service account token when
/// it is meant for one of them and its account (and pod, when bound to one) still exist with
/// the UIDs it names.
pub fn review(tokens: &Tokens, txn: &Txn<'_>, token: &str, audiences: &[String]) -> Result<UserInfo, String> {
    if token == ADMIN_TOKEN {
        return match audiences.iter().any(|a| a == API_AUDIENCE) {
            true => Ok(UserInfo::admin()),
            false => Err(format!("token audiences are invalid for the target audiences {audiences:?}")),
        };
    }
    let claims = tokens.verify(token, audiences)?;
    let k = &claims.kubernetes;
    let exists = |kind: &str, bound: &tokens::Bound| {
        let key = (format!("/{kind}"), k.namespace.clone(), bound.name.clone());
        match txn.get(&key) {
            Some(o) if o["metadata"]["uid"] == bound.uid.as_str() => Ok(()),
            Some(_) => Err(format!("the {kind} {:?} the token names was recreated", bound.name)),
            None => Err(format!("the {kind} {:?} the token names no longer exists", bound.name)),
        }
    };
    exists("serviceaccounts", &k.serviceaccount)?;
    if let Some(pod) = &k.pod {
        exists("pods", pod)?;
    }
    Ok(UserInfo {
        username: claims.sub.clone(),
        uid: k.serviceaccount.uid.clone(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", k.namespace),
            "system:authenticated".into(),
        ],
    })
}

/// Who a request to the API server is; 401 for a token that is not valid for it.
pub fn authenticate(tokens: &Tokens, txn: &Txn<'_>, headers: &HeaderMap) -> Result<UserInfo, String> {
    match bearer(headers) {
        None => Ok(UserInfo::anonymous()),
        Some(token) => review(tokens, txn, token, &[API_AUDIENCE.to_owned()]),
    }
}
