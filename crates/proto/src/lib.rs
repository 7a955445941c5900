//! Generated gRPC code of the cluster-service API, package `etcd_operator.v1alpha1`.

/// Version 1alpha1 of the API.
pub mod v1alpha1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("etcd_operator.v1alpha1");

    /// Encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("etcd_operator_descriptor");
}

/// How a client reaches the API.
pub mod endpoint {
    use std::path::Path;

    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

    /// An endpoint of the cluster-service at `url`. An `https://` URL is verified against the
    /// CA certificate in `ca_file` (the `ca.crt` of the ConfigMap the cluster-service publishes)
    /// and the URL's host; an `http://` URL is plaintext and taken only when `plaintext_allowed`
    /// (`--insecure`). Each refusal names the flag to fix.
    pub fn api(url: &str, ca_file: Option<&Path>, plaintext_allowed: bool) -> Result<Endpoint, String> {
        let ca = match (https(url), ca_file) {
            (true, Some(file)) => {
                let pem = std::fs::read(file).map_err(|e| format!("--ca-file {}: {e}", file.display()))?;
                Some(Ca { pem, from: format!("--ca-file {}", file.display()) })
            }
            _ => None,
        };
        api_with(url, ca, plaintext_allowed)
    }

    /// A CA certificate (PEM) and where it came from, for errors.
    pub struct Ca {
        /// The PEM text.
        pub pem: Vec<u8>,
        /// Where it was read from (a flag and file, a ConfigMap).
        pub from: String,
    }

    fn https(url: &str) -> bool {
        url.starts_with("https://")
    }

    /// [`api`] with the CA certificate already read.
    pub fn api_with(url: &str, ca: Option<Ca>, plaintext_allowed: bool) -> Result<Endpoint, String> {
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| format!("endpoint {url:?}: {e}"))?;
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("https") => {
                let ca = ca.ok_or_else(|| {
                    format!(
                        "endpoint {url:?} is https: --ca-file must name the CA certificate to verify it with"
                    )
                })?;
                if !String::from_utf8_lossy(&ca.pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(format!("{}: no PEM certificate in it", ca.from));
                }
                let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem));
                endpoint.tls_config(tls).map_err(|e| format!("endpoint {url:?}: {e}"))
            }
            Some("http") if plaintext_allowed => Ok(endpoint),
            Some("http") => Err(format!(
                "endpoint {url:?} is plaintext: the API serves TLS (use https://), or pass --insecure for a local run"
            )),
            _ => Err(format!("endpoint {url:?} must start with https:// (or http:// with --insecure)")),
        }
    }
}
