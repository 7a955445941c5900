//! Who calls, and whether Kubernetes RBAC lets them: every call but gRPC
//! health and the restore agent's fetch carries a Kubernetes bearer token,
//! which the API server reviews (TokenReview, for this API's audiences);
//! each RPC then asks for the permission [`rpc::Rpc`] names on the object
//! the call is about (SubjectAccessReview): first on every object of its
//! kind in the namespace, then, if refused, on the one object. Answers are
//! reused for a few seconds. Refusals name the caller and the permission, never the token.

mod cache;
mod layer;
pub mod rpc;

use std::{sync::Arc, time::Duration};

use etcd_operator_client::access::{AccessReviews, Caller, Decision, Permission};
use sha2::{Digest, Sha256};
use tonic::Status;

pub use layer::AuthenticateLayer;
pub use rpc::Rpc;

/// How long an answer about a token or a permission is reused.
const REUSE: Duration = Duration::from_secs(10);

/// Authentication and authorization of calls.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    reviews: AccessReviews,
    /// Namespace a namespace-scoped install serves; calls for others are refused.
    namespace: Option<String>,
    callers: cache::TtlCache<[u8; 32], Result<Caller, String>>,
    decisions: cache::TtlCache<(Caller, Permission), Decision>,
}

impl Auth {
    /// Reviews through `reviews`; `namespace` limits calls to one namespace.
    pub fn new(reviews: AccessReviews, namespace: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                reviews,
                namespace,
                callers: cache::TtlCache::new(REUSE),
                decisions: cache::TtlCache::new(REUSE),
            }),
        }
    }

    /// The refusal of a call that carries no token.
    pub fn no_token(&self) -> Status {
        Status::unauthenticated(format!(
            "no bearer token: send `authorization: Bearer <token>` with a Kubernetes token for audiences {:?}",
            self.inner.reviews.audiences()
        ))
    }

    /// Who presents `token`; UNAUTHENTICATED when the API server does not accept it.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, Status> {
        // Keyed by digest: the cache never holds a token.
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let review = || async {
            self.inner.reviews.authenticate(token).await.map_err(|e| {
                Status::unavailable(format!("cannot review the caller's token with the Kubernetes API: {e}"))
            })
        };
        let answer = self.inner.callers.get_or_fetch(&key, review).await?;
        answer.map_err(|why| {
            Status::unauthenticated(format!(
                "the bearer token was not accepted for audiences {:?}: {why}",
                self.inner.reviews.audiences()
            ))
        })
    }

    /// Allows `caller` `permission`, or says what was missing.
    pub async fn authorize(&self, caller: &Caller, permission: Permission) -> Result<(), Status> {
        if let Some(only) = &self.inner.namespace
            && &permission.namespace != only
        {
            return Err(Status::permission_denied(format!(
                "this operator serves namespace {only:?} only; {} asked to {permission}",
                caller.username
            )));
        }
        // Every object first: a grant without resourceNames covers each name, so one answer per
        // caller and verb serves every cluster (a thousand clusters made a review per call).
        // Only where that is refused is the one object asked about.
        if !permission.name.is_empty() {
            let every = Permission { name: String::new(), ..permission.clone() };
            if self.decide(caller, every).await?.allowed {
                return Ok(());
            }
        }
        let decision = self.decide(caller, permission.clone()).await?;
        if decision.allowed {
            return Ok(());
        }
        tracing::info!(caller = %caller.username, %permission, "call refused: {}", decision.reason);
        Err(Status::permission_denied(format!(
            "{} may not {permission}: {}",
            caller.username, decision.reason
        )))
    }

    /// The API server's answer about `caller` and `permission`, reused for a few seconds.
    async fn decide(&self, caller: &Caller, permission: Permission) -> Result<Decision, Status> {
        let key = (caller.clone(), permission);
        let review = || async {
            self.inner.reviews.authorize(&key.0, &key.1).await.map_err(|e| {
                Status::unavailable(format!("cannot review the caller's access with the Kubernetes API: {e}"))
            })
        };
        self.inner.decisions.get_or_fetch(&key, review).await
    }

    /// The caller the authentication layer found for `request`, allowed `permission`.
    pub async fn allow<T>(
        &self,
        request: &tonic::Request<T>,
        permission: Permission,
    ) -> Result<Caller, Status> {
        // The layer put it there, or refused the call.
        let caller = request.extensions().get::<Caller>().cloned().ok_or_else(|| self.no_token())?;
        self.authorize(&caller, permission).await?;
        Ok(caller)
    }
}
