//! Who a caller of the gRPC API is and what Kubernetes RBAC lets it do, asked
//! of the API server as every aggregated API server and webhook does:
//! TokenReview for the bearer token (for this API's audiences), then
//! SubjectAccessReview for each call. The caller needs `create` on
//! `tokenreviews` and `subjectaccessreviews` (the `system:auth-delegator`
//! ClusterRole).

use std::collections::BTreeMap;

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};

use crate::ClientError;

/// An authenticated caller, as the API server named it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    /// User name (`system:serviceaccount:<ns>:<name>` for service accounts).
    pub username: String,
    /// UID.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes (passed back on access reviews, as RBAC's webhooks expect).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a call asks to do, in RBAC's terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    /// RBAC verb (`get`, `list`, `update`, `delete`...).
    pub verb: &'static str,
    /// API group.
    pub group: &'static str,
    /// Resource (`etcdclusters`).
    pub resource: &'static str,
    /// Subresource (`scale`, `members`...), empty for none.
    pub subresource: &'static str,
    /// Namespace; empty for every namespace.
    pub namespace: String,
    /// Object name; empty for a collection.
    pub name: String,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resource = match self.subresource {
            "" => format!("{}.{}", self.resource, self.group),
            sub => format!("{}.{}/{sub}", self.resource, self.group),
        };
        write!(f, "{} {resource}", self.verb)?;
        if !self.name.is_empty() {
            write!(f, " {:?}", self.name)?;
        }
        match self.namespace.as_str() {
            "" => write!(f, " in every namespace"),
            ns => write!(f, " in namespace {ns:?}"),
        }
    }
}

/// The answer of an access review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether RBAC allows it.
    pub allowed: bool,
    /// The authorizer's reason, when it gave one.
    pub reason: String,
}

/// Asks the API server about callers.
#[derive(Clone)]
pub struct AccessReviews {
    client: Client,
    audiences: Vec<String>,
}

impl AccessReviews {
    /// Reviews tokens meant for `audiences`.
    pub fn new(client: Client, audiences: Vec<String>) -> Self {
        Self { client, audiences }
    }

    /// The audiences tokens must be meant for.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Who `token` is, or why the API server did not accept it (`Err(Ok(reason))`).
    pub async fn authenticate(&self, token: &str) -> Result<Result<Caller, String>, ClientError> {
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_owned()), audiences: Some(self.audiences.clone()) },
            ..TokenReview::default()
        };
        let answer =
            Api::<TokenReview>::all(self.client.clone()).create(&PostParams::default(), &review).await?;
        let status = answer.status.unwrap_or_default();
        let user = status.user.filter(|_| status.authenticated == Some(true));
        Ok(match user {
            Some(u) => Ok(Caller {
                username: u.username.unwrap_or_default(),
                uid: u.uid.unwrap_or_default(),
                groups: u.groups.unwrap_or_default(),
                extra: u.extra.unwrap_or_default(),
            }),
            None => Err(status.error.unwrap_or_else(|| "the token was not accepted".into())),
        })
    }

    /// Whether RBAC lets `caller` have `permission`.
    pub async fn authorize(&self, caller: &Caller, permission: &Permission) -> Result<Decision, ClientError> {
        let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(caller.username.clone()),
                uid: text(&caller.uid),
                groups: Some(caller.groups.clone()),
                extra: Some(caller.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(permission.verb.to_owned()),
                    group: Some(permission.group.to_owned()),
                    resource: Some(permission.resource.to_owned()),
                    subresource: text(permission.subresource),
                    namespace: text(&permission.namespace),
                    name: text(&permission.name),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let status = answer.status.unwrap_or_default();
        Ok(Decision {
            allowed: status.allowed && status.denied != Some(true),
            reason: status.reason.unwrap_or_default(),
        })
    }
}
