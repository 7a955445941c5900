//! Whether the operator may call an S3 endpoint a tenant wrote into an
//! EtcdBackup. Without a check, `storage.s3.endpoint` makes the operator send
//! requests (with the tenant's credentials, and the snapshot) wherever the
//! tenant points it: cloud metadata services, in-cluster admin endpoints.
//! Only origins an operator admin listed are called; AWS's own endpoints
//! (no endpoint set) always are.

/// An origin an operator admin allowed: `scheme://host` (any port) or `scheme://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedEndpoint {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// Scheme, host (lowercase) and port of a URL; `None` unless it is http(s) with a host.
fn origin(url: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p.parse().ok()?)),
        _ => (authority, None),
    };
    (!host.is_empty()).then(|| (scheme, host.to_ascii_lowercase(), port))
}

impl AllowedEndpoint {
    /// Parses an allow-list entry.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let bad = || format!("{entry:?} is not scheme://host or scheme://host:port (http or https)");
        let (scheme, host, port) = origin(entry).ok_or_else(bad)?;
        if entry.split_once("://").is_some_and(|(_, r)| r.trim_end_matches('/').contains('/')) {
            return Err(bad());
        }
        Ok(Self { scheme, host, port })
    }

    fn admits(&self, url: &str) -> bool {
        origin(url).is_some_and(|(scheme, host, port)| {
            let default = if scheme == "https" { 443 } else { 80 };
            scheme == self.scheme
                && host == self.host
                && self.port.is_none_or(|p| p == port.unwrap_or(default))
        })
    }
}

/// Why `endpoint` (field `field`) may not be called, or nothing when one of `allowed` admits it.
pub fn refusal(field: &str, endpoint: Option<&str>, allowed: &[AllowedEndpoint]) -> Option<String> {
    let endpoint = endpoint?;
    if allowed.iter().any(|a| a.admits(endpoint)) {
        return None;
    }
    Some(format!(
        "{field}: {endpoint} is not an S3 endpoint this operator may call; an operator admin allows its origin with the cluster-service's --s3-endpoint"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> Vec<AllowedEndpoint> {
        entries.iter().map(|e| AllowedEndpoint::parse(e).unwrap()).collect()
    }

    #[test]
    fn only_listed_origins_are_called() {
        let allowed = allow(&["https://minio.storage.svc:9000", "http://127.0.0.1"]);
        let field = "spec.storage.s3.endpoint";
        assert_eq!(refusal(field, None, &[]), None, "AWS itself");
        assert_eq!(refusal(field, Some("https://minio.storage.svc:9000"), &allowed), None);
        assert_eq!(refusal(field, Some("https://MINIO.storage.svc:9000/bucket"), &allowed), None);
        assert_eq!(
            refusal(field, Some("http://127.0.0.1:39211"), &allowed),
            None,
            "any port when none listed"
        );
        for denied in [
            "http://minio.storage.svc:9000",
            "https://minio.storage.svc:9001",
            "https://minio.storage.svc",
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1.evil.example",
            "http://user@127.0.0.1",
            "ftp://127.0.0.1",
        ] {
            let why = refusal(field, Some(denied), &allowed).expect(denied);
            assert!(why.starts_with(&format!("{field}: {denied} is not")), "{why}");
        }
        assert!(AllowedEndpoint::parse("minio:9000").is_err());
        assert!(AllowedEndpoint::parse("https://minio/path").is_err());
        assert!(AllowedEndpoint::parse("https://minio:port").is_err());
    }
}
