//! The REST surface: routing of Kubernetes API paths to handlers.

mod authz;
mod delete;
mod discovery;
mod dry_run;
mod impersonate;
mod metrics;
mod openapi;
mod printers;
mod protobuf;
mod read;
mod request;
mod resources;
mod reviews;
mod scale;
mod table;
mod watch;

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, Uri},
    response::{IntoResponse, Response},
};

use crate::{auth::Tokens, error::ApiError, registry::Registry, store::Store};

pub use request::Target;
pub use resources::create_object;

/// Shared state of the server.
pub struct ApiState {
    /// Served resources.
    pub registry: Registry,
    /// Objects.
    pub store: Store,
    /// Address clients use (for discovery answers).
    pub address: String,
    /// PEM of the CA that signed the server's certificate (pods' service account `ca.crt`).
    pub ca_pem: String,
    /// Signs and verifies service account tokens.
    pub tokens: Tokens,
    /// What each user was allowed.
    pub audit: crate::auth::audit::Audit,
    /// Requests served, for `/metrics`.
    pub requests: metrics::RequestCounts,
}

/// Every request enters here.
pub async fn handle(
    State(state): State<Arc<ApiState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = request::Query::parse(uri.query().unwrap_or_default());
    let result = match request::route(&state.registry, uri.path()) {
        Err(e) => Err(e),
        Ok(request::Route::Metrics) if method == Method::GET => {
            Ok(state.requests.exposition().into_response())
        }
        Ok(request::Route::Discovery(d)) if method == Method::GET => {
            Ok(discovery::answer(&state, d, &headers))
        }
        Ok(request::Route::OpenApi(document)) if method == Method::GET => {
            openapi::answer(&state, &document, &query, &headers)
        }
        Ok(request::Route::Discovery(_) | request::Route::Metrics | request::Route::OpenApi(_)) => {
            Err(ApiError::method_not_allowed("discovery is read-only"))
        }
        Ok(request::Route::Resource(target)) => {
            let answer = resource(&state, &method, &target, &query, &headers, &body).await;
            let code = answer.as_ref().map_or_else(|e| e.code, |r| r.status().as_u16());
            state.requests.count(&method, &target, &query, &headers, code);
            answer
        }
    };
    match result {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(%method, %uri, code = e.code, "{}", e.message);
            e.into_response()
        }
    }
}

/// Authenticates, authorizes, then serves a resource request.
async fn resource(
    state: &ApiState,
    method: &Method,
    target: &Target,
    query: &request::Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let user = state.store.read(|txn| {
        let user = crate::auth::authenticate(&state.tokens, txn, headers).map_err(|why| {
            tracing::info!(%method, "unauthenticated request: {why}");
            ApiError::unauthorized()
        })?;
        let user = impersonate::effective(txn, user, headers)?;
        let asked = authz::authorize(txn, &user, method, target, query, headers).map_err(|a| {
            state.audit.deny(&user.username, &a.group, &a.resource, &a.verb);
            ApiError::forbidden(authz::refusal(&user, &a))
        })?;
        for a in asked {
            state.audit.record(&user.username, &a.group, &a.resource, &a.verb);
        }
        Ok::<_, ApiError>(user)
    })?;
    if reviews::handles(target) {
        return match *method {
            Method::POST => reviews::answer(state, &user, target, headers, body),
            _ => Err(ApiError::method_not_allowed(format!("{} only takes POST", target.rt.plural))),
        };
    }
    resources::dispatch(state, method, target, query, headers, body).await
}
