//! TLS towards etcd members: the cluster's CA, the operator's client
//! certificate, and the DNS name the members' certificates are checked
//! against, which stays the same when an endpoint is rewritten to an IP.

use etcd_client::{Certificate, Identity, TlsOptions};

/// How to reach members whose client port speaks TLS.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// PEM of the CA(s) the members' serving certificates chain to.
    pub ca_pem: Vec<u8>,
    /// PEM certificate and key presented to members that require client certificates.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name every member's certificate carries (the client Service's DNS name): connections
    /// by IP or through a rewritten host are still checked against it.
    pub server_name: String,
}

impl EtcdTls {
    pub(super) fn options(&self) -> TlsOptions {
        let mut tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(self.server_name.clone());
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        tls
    }
}

// The key must never reach a log line.
impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("server_name", &self.server_name)
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_key() {
        let tls = EtcdTls {
            ca_pem: b"ca".to_vec(),
            identity: Some((b"cert".to_vec(), b"-----BEGIN PRIVATE KEY----- secret".to_vec())),
            server_name: "demo-client.prod.svc.cluster.local".into(),
        };
        let shown = format!("{tls:?}");
        assert!(!shown.contains("secret") && shown.contains("<redacted>"), "{shown}");
    }
}
