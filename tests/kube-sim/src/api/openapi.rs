//! `/openapi/v2` and `/openapi/v3[/<group version>]`, negotiated and cached as kube-apiserver
//! serves them.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{
    ApiState,
    request::{Document, Query},
};
use crate::{error::ApiError, openapi};

/// gnostic's protobuf form of the v2 document, which kubectl asks for (and only for) by its
/// old name; answered under the name Go's media-type parser reads, as kube-apiserver does.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const V2_PROTOBUF_SERVED: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The media types a request accepts.
fn accepts(headers: &HeaderMap) -> Vec<&str> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    accept.split(',').map(|t| t.split(';').next().unwrap_or_default().trim()).collect()
}

fn takes_json(accepted: &[&str]) -> bool {
    accepted.iter().any(|t| matches!(*t, "application/json" | "application/*" | "*/*" | ""))
}

/// Answers a request for an OpenAPI document.
pub fn answer(
    state: &ApiState,
    document: &Document,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let accepted = accepts(headers);
    match document {
        Document::V2 if accepted.iter().any(|t| [V2_PROTOBUF, V2_PROTOBUF_SERVED].contains(t)) => {
            let encoded = openapi::gnostic::encode(&openapi::v2(&state.registry));
            Ok(([(header::CONTENT_TYPE, V2_PROTOBUF_SERVED)], encoded).into_response())
        }
        _ if !takes_json(&accepted) => Err(ApiError::not_acceptable(
            "OpenAPI documents are served as application/json (and v2 as protobuf)",
        )),
        Document::V2 => Ok(Json(openapi::v2(&state.registry)).into_response()),
        Document::V3Index => Ok(Json(openapi::v3_index(&state.registry)).into_response()),
        Document::V3(gv) => {
            let kept = openapi::v3(&state.registry, gv).ok_or_else(|| {
                ApiError::not_found(format!(
                    "the server could not find the requested resource (openapi/v3/{gv})"
                ))
            })?;
            let (doc, hash) = &*kept;
            match q.get("hash") {
                // An outdated link is sent on to the current document, as kube-apiserver does.
                Some(asked) if asked != hash.as_str() => {
                    let location = format!("/openapi/v3/{gv}?hash={hash}");
                    Ok((StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]).into_response())
                }
                Some(_) => {
                    let mut response = Json(doc.clone()).into_response();
                    response
                        .headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, immutable"));
                    response
                        .headers_mut()
                        .insert(header::ETAG, HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex"));
                    Ok(response)
                }
                None => Ok(Json(doc.clone()).into_response()),
            }
        }
    }
}
