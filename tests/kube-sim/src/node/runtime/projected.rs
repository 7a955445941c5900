//! Projected volumes, as the kubelet writes them: service account tokens for
//! the audiences and lifetimes the pod asks for (renewed once 80% of their
//! lifetime has passed, as the kubelet's token manager does), ConfigMap and
//! Secret keys, and the pod's own metadata (the downward API's `metadata.*`).

use std::{path::Path, time::Duration};

use serde_json::Value;

use super::volumes::Files;
use crate::{
    auth::{API_AUDIENCE, Tokens, tokens::peek},
    store::Txn,
};

/// The kubelet's default token lifetime, and the shortest the API server allows.
const DEFAULT_EXPIRATION: u64 = 3600;
const MIN_EXPIRATION: u64 = 600;

/// The files of a `projected` volume source list and their mode; `existing` is the volume's
/// directory when it is being refreshed (tokens not yet due are kept).
pub fn files(
    txn: &Txn<'_>,
    tokens: &Tokens,
    pod: &Value,
    projected: &Value,
    existing: Option<&Path>,
) -> Result<(Files, u32), String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut files = Files::new();
    for source in projected["sources"].as_array().into_iter().flatten() {
        if let Some(t) = source.get("serviceAccountToken") {
            let path = t["path"].as_str().ok_or("serviceAccountToken.path is required")?;
            let reuse =
                existing.and_then(|dir| std::fs::read_to_string(dir.join(path)).ok()).filter(|t| !due(t));
            let token = match reuse {
                Some(token) => token,
                None => issue(txn, tokens, pod, t)?,
            };
            files.push((path.to_owned(), token.into_bytes()));
        } else if let Some(c) = source.get("configMap") {
            files.extend(super::volumes::object_files(txn, ns, "configmaps", c)?.unwrap_or_default());
        } else if let Some(s) = source.get("secret") {
            files.extend(super::volumes::object_files(txn, ns, "secrets", s)?.unwrap_or_default());
        } else if let Some(d) = source.get("downwardAPI") {
            for item in d["items"].as_array().into_iter().flatten() {
                let field = item["fieldRef"]["fieldPath"].as_str().unwrap_or_default();
                let value = super::env::metadata_field(pod, field)
                    .ok_or_else(|| format!("downwardAPI field {field:?} is not supported by kube-sim"))?;
                files.push((item["path"].as_str().unwrap_or_default().to_owned(), value.into_bytes()));
            }
        } else {
            return Err(format!("projected source {source} is not supported by kube-sim"));
        }
    }
    files.sort();
    Ok((files, projected["defaultMode"].as_u64().unwrap_or(0o644) as u32))
}

fn issue(txn: &Txn<'_>, tokens: &Tokens, pod: &Value, source: &Value) -> Result<String, String> {
    let seconds = source["expirationSeconds"].as_u64().unwrap_or(DEFAULT_EXPIRATION);
    if seconds < MIN_EXPIRATION {
        return Err(format!(
            "serviceAccountToken.expirationSeconds {seconds}: may not be less than 10 minutes"
        ));
    }
    let audience = source["audience"].as_str().filter(|a| !a.is_empty()).unwrap_or(API_AUDIENCE);
    super::service_account::token(txn, tokens, pod, vec![audience.to_owned()], Duration::from_secs(seconds))
}

/// Whether a token has lived 80% of its lifetime (or cannot be read).
fn due(token: &str) -> bool {
    let Some(c) = peek(token) else { return true };
    let now = chrono::Utc::now().timestamp();
    now >= c.iat + (c.exp - c.iat) * 4 / 5
}
