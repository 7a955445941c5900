//! Service account tokens as kube-apiserver issues them: JWTs signed with the
//! server's key (ES256 here, an EC key as `--service-account-signing-key-file`
//! may hold), naming the account (`sub`), the audiences that may accept them
//! (`aud`) and an expiry, and optionally bound to a pod. A token is valid only
//! while its account (and pod) still exist with the UIDs it names, as the
//! bound-token checks of the API server require.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The audience of tokens meant for the API server itself (its `--api-audiences`).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// Tokens whose signature was checked, kept at most this many (then forgotten all at once).
const SIGNED_KEPT: usize = 10_000;

/// Signs and verifies tokens with one key, made when kube-sim starts.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Tokens whose signature this key verified, with their claims: kube-apiserver caches
    /// authenticated tokens too (its token cache), and an ECDSA check per request was a tenth
    /// of kube-sim's CPU with a thousand clusters. Expiry and audience are still checked on
    /// every request, and the bound objects by the caller.
    signed: Mutex<HashMap<String, Claims>>,
}

/// An object a token names, with the UID it must still have.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bound {
    /// Object name.
    pub name: String,
    /// Its UID when the token was issued.
    pub uid: String,
}

impl Bound {
    /// The name and UID of a stored object.
    pub fn of(object: &serde_json::Value) -> Self {
        let text = |k: &str| object["metadata"][k].as_str().unwrap_or_default().to_owned();
        Self { name: text("name"), uid: text("uid") }
    }
}

/// The `kubernetes.io` claim.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KubernetesClaim {
    /// Namespace of the account.
    pub namespace: String,
    /// The account.
    pub serviceaccount: Bound,
    /// The pod the token is bound to (projected volumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Bound>,
}

/// A token's claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub sub: String,
    /// Audiences that may accept the token.
    pub aud: Vec<String>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// What the token is bound to.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Tokens {
    /// A new signing key.
    pub fn generate() -> Result<Self, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| format!("token signing key: {e}"))?;
        let encoding = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
            .map_err(|e| format!("token signing key: {e}"))?;
        let decoding = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes())
            .map_err(|e| format!("token verifying key: {e}"))?;
        Ok(Self { encoding, decoding, signed: Mutex::default() })
    }

    /// A token for `kubernetes`'s account, valid for `audiences` during `ttl`; with its expiry.
    pub fn issue(
        &self,
        kubernetes: KubernetesClaim,
        audiences: Vec<String>,
        ttl: Duration,
    ) -> Result<(String, i64), String> {
        let iat = now();
        let exp = iat + ttl.as_secs() as i64;
        let sub =
            format!("system:serviceaccount:{}:{}", kubernetes.namespace, kubernetes.serviceaccount.name);
        let claims = Claims { iss: API_AUDIENCE.into(), sub, aud: audiences, iat, nbf: iat, exp, kubernetes };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.encoding)
            .map_err(|e| format!("signing a token: {e}"))?;
        Ok((token, exp))
    }

    /// The claims of a token signed with this key, not expired, and meant for one of `audiences`.
    pub fn verify(&self, token: &str, audiences: &[String]) -> Result<Claims, String> {
        let known = self.signed.lock().unwrap().get(token).cloned();
        if let Some(claims) = known {
            return if claims.exp < now() {
                Err("token has expired".to_owned())
            } else if !claims.aud.iter().any(|a| audiences.contains(a)) {
                Err(audiences_invalid(audiences))
            } else {
                Ok(claims)
            };
        }
        let claims = self.check_signature(token, audiences)?;
        let mut signed = self.signed.lock().unwrap();
        if signed.len() >= SIGNED_KEPT {
            signed.clear();
        }
        signed.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// [`Tokens::verify`] by the signature, expiry, issuer and audience checks.
    fn check_signature(&self, token: &str, audiences: &[String]) -> Result<Claims, String> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(audiences);
        validation.set_issuer(&[API_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub", "iss"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|d| d.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token has expired".to_owned(),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => audiences_invalid(audiences),
                _ => format!("invalid bearer token: {e}"),
            }
        })
    }
}

fn audiences_invalid(audiences: &[String]) -> String {
    format!("token audiences are invalid for the target audiences {audiences:?}")
}

/// The claims of a token, unverified: when the node decides whether a mounted token is due for
/// renewal (it issued the token itself).
pub fn peek(token: &str) -> Option<Claims> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> KubernetesClaim {
        KubernetesClaim {
            namespace: "ns".into(),
            serviceaccount: Bound { name: "sa".into(), uid: "u1".into() },
            pod: None,
        }
    }

    #[test]
    fn a_token_is_accepted_only_by_its_audiences_and_only_with_this_key() {
        let tokens = Tokens::generate().unwrap();
        let (token, exp) =
            tokens.issue(account(), vec!["etcd-operator".into()], Duration::from_secs(600)).unwrap();
        assert!(exp > now());
        let claims = tokens.verify(&token, &["etcd-operator".into()]).unwrap();
        assert_eq!(claims.sub, "system:serviceaccount:ns:sa");
        assert_eq!(peek(&token).unwrap().kubernetes, account());
        let wrong = tokens.verify(&token, &[API_AUDIENCE.into()]).unwrap_err();
        assert!(wrong.contains("audiences"), "{wrong}");
        assert_eq!(tokens.signed.lock().unwrap().len(), 1, "its signature is checked once");
        assert_eq!(tokens.verify(&token, &["etcd-operator".into()]).unwrap().sub, claims.sub);
        let other = Tokens::generate().unwrap();
        assert!(other.verify(&token, &["etcd-operator".into()]).is_err(), "another key's token");
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(tokens.verify(&forged, &["etcd-operator".into()]).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let tokens = Tokens::generate().unwrap();
        let mut claims = account();
        claims.pod = Some(Bound { name: "p".into(), uid: "u2".into() });
        let (token, _) = tokens.issue(claims.clone(), vec![API_AUDIENCE.into()], Duration::ZERO).unwrap();
        let (known, _) = tokens.issue(claims, vec![API_AUDIENCE.into()], Duration::from_secs(1)).unwrap();
        tokens.verify(&known, &[API_AUDIENCE.into()]).expect("valid for a second");
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(tokens.verify(&token, &[API_AUDIENCE.into()]).unwrap_err(), "token has expired");
        assert_eq!(
            tokens.verify(&known, &[API_AUDIENCE.into()]).unwrap_err(),
            "token has expired",
            "a token whose signature was checked still expires"
        );
    }
}
