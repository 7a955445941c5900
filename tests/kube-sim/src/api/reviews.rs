//! The create-only APIs that answer a question instead of storing an object:
//! TokenReview (who is this token, for these audiences), SubjectAccessReview
//! and SelfSubjectAccessReview (may this user do this), and TokenRequest
//! (`serviceaccounts/<name>/token`: a signed token for an account).

use std::time::Duration;

use axum::{
    body::Bytes,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde_json::{Value, json};

use super::{
    ApiState,
    authz::{self, Attributes},
    request::Target,
};
use crate::{
    auth::{self, UserInfo, tokens},
    error::ApiError,
};

/// Shortest token lifetime a TokenRequest may ask for, as kube-apiserver enforces it.
const MIN_EXPIRATION: u64 = 600;
/// Lifetime of a requested token when the request names none.
const DEFAULT_EXPIRATION: u64 = 3600;

/// Whether `target` is one of these APIs.
pub fn handles(target: &Target) -> bool {
    matches!(
        (target.rt.group.as_str(), target.rt.plural.as_str(), target.sub.as_deref()),
        ("authentication.k8s.io", "tokenreviews", None)
            | ("authorization.k8s.io", "subjectaccessreviews" | "selfsubjectaccessreviews", None)
            | ("", "serviceaccounts", Some("token"))
    )
}

/// Answers a POST to one of these APIs on behalf of `user`.
pub fn answer(
    state: &ApiState,
    user: &UserInfo,
    target: &Target,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let request: Value = if super::protobuf::is_protobuf(headers) {
        super::protobuf::object(body)?
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let spec = &request["spec"];
    let status = match target.rt.plural.as_str() {
        "tokenreviews" => token_review(state, spec),
        "subjectaccessreviews" => {
            let subject = UserInfo {
                username: spec["user"].as_str().unwrap_or_default().into(),
                uid: spec["uid"].as_str().unwrap_or_default().into(),
                groups: strings(&spec["groups"]),
            };
            access_review(state, &subject, spec)?
        }
        "selfsubjectaccessreviews" => access_review(state, user, spec)?,
        _ => return token_request(state, (target, headers), spec),
    };
    let kind = request["kind"].clone();
    let api_version = format!("{}/{}", target.rt.group, target.rt.version);
    let out =
        json!({"kind": kind, "apiVersion": api_version, "metadata": {}, "spec": spec, "status": status});
    Ok(super::protobuf::respond(headers, &target.rt, StatusCode::CREATED, out))
}

fn strings(v: &Value) -> Vec<String> {
    authz::strings(v).into_iter().map(String::from).collect()
}

/// `spec.audiences`, or the API server's own when empty (as kube-apiserver defaults them).
fn audiences(spec: &Value) -> Vec<String> {
    let listed = strings(&spec["audiences"]);
    if listed.is_empty() { vec![auth::API_AUDIENCE.into()] } else { listed }
}

fn token_review(state: &ApiState, spec: &Value) -> Value {
    let token = spec["token"].as_str().unwrap_or_default();
    let audiences = audiences(spec);
    match state.store.read(|txn| auth::review(&state.tokens, txn, token, &audiences)) {
        Ok(user) => {
            // The audiences of the request the token is valid for.
            let of_token =
                tokens::peek(token).map(|c| c.aud).unwrap_or_else(|| vec![auth::API_AUDIENCE.into()]);
            let matched: Vec<&String> = audiences.iter().filter(|a| of_token.contains(a)).collect();
            json!({"authenticated": true, "user": user, "audiences": matched})
        }
        Err(error) => json!({"authenticated": false, "error": error}),
    }
}

fn access_review(state: &ApiState, user: &UserInfo, spec: &Value) -> Result<Value, ApiError> {
    let r = &spec["resourceAttributes"];
    if !r.is_object() {
        return Ok(json!({"allowed": false, "reason": "kube-sim authorizes resource attributes only"}));
    }
    let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let resource = match text("subresource") {
        sub if sub.is_empty() => text("resource"),
        sub => format!("{}/{sub}", text("resource")),
    };
    let a = Attributes {
        verb: text("verb"),
        group: text("group"),
        resource,
        namespace: text("namespace"),
        name: Some(text("name")).filter(|n| !n.is_empty()),
    };
    if a.verb.is_empty() || a.resource.is_empty() {
        return Err(ApiError::invalid("spec.resourceAttributes: verb and resource are required"));
    }
    let allowed = state.store.read(|txn| authz::allowed(txn, user, &a));
    match allowed {
        true => state.audit.record(&user.username, &a.group, &a.resource, &a.verb),
        false => state.audit.deny(&user.username, &a.group, &a.resource, &a.verb),
    }
    Ok(match allowed {
        true => json!({"allowed": true, "reason": "RBAC: allowed by a binding of the subject"}),
        false => json!({"allowed": false, "reason": authz::refusal(user, &a)}),
    })
}

fn token_request(
    state: &ApiState,
    (target, headers): (&Target, &HeaderMap),
    spec: &Value,
) -> Result<Response, ApiError> {
    let name = target.name.clone().unwrap_or_default();
    let audiences = audiences(spec);
    let namespace = target.namespace.clone();
    let get = |kind: &str, name: &str| {
        state.store.read(|txn| txn.get(&(format!("/{kind}"), namespace.clone(), name.to_owned())).cloned())
    };
    // The account first, then the request, as kube-apiserver's token REST storage checks them.
    let account = get("serviceaccounts", &name)
        .ok_or_else(|| ApiError::not_found(format!("serviceaccounts \"{name}\"")))?;
    let seconds = spec["expirationSeconds"].as_u64().unwrap_or(DEFAULT_EXPIRATION);
    if seconds < MIN_EXPIRATION {
        return Err(ApiError::invalid(format!(
            "spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"
        )));
    }
    let bound = &spec["boundObjectRef"];
    let pod = match bound["kind"].as_str() {
        Some("Pod") => Some(
            get("pods", bound["name"].as_str().unwrap_or_default())
                .ok_or_else(|| ApiError::not_found("the pod spec.boundObjectRef names"))?,
        ),
        _ => None,
    };
    let claim = tokens::KubernetesClaim {
        namespace: namespace.clone(),
        serviceaccount: tokens::Bound::of(&account),
        pod: pod.as_ref().map(tokens::Bound::of),
    };
    let (token, exp) = state
        .tokens
        .issue(claim, audiences.clone(), Duration::from_secs(seconds))
        .map_err(ApiError::internal)?;
    let expires =
        chrono::DateTime::from_timestamp(exp, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut spec = spec.clone();
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(seconds);
    let out = json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {},
        "spec": spec, "status": {"token": token, "expirationTimestamp": expires},
    });
    Ok(super::protobuf::respond(headers, &target.rt, StatusCode::CREATED, out))
}
