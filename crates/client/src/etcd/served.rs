//! The certificate a member serves to a new connection now. A CA rotation
//! waits on it before the old CA stops being trusted: the kubelet updates
//! mounted Secrets only on its next sync (up to about a minute), so a member
//! can still serve the old CA's certificate well after the Secret changed.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};

use super::EtcdOptions;
use crate::ClientError;

/// The DER of the leaf certificate the member at `endpoint` (`https://host:port`, rewritten as
/// every endpoint is) serves, verified against the options' CAs and server name.
pub async fn served_certificate(endpoint: &str, options: &EtcdOptions) -> Result<Vec<u8>, ClientError> {
    let endpoint = options.rewrite.apply(endpoint);
    let unavailable = |message: String| ClientError::Unavailable { target: endpoint.clone(), message };
    let tls = options.tls.as_ref().ok_or_else(|| ClientError::InvalidArgument("no TLS settings".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&tls.ca_pem) {
        let ca = ca.map_err(|e| ClientError::InvalidArgument(format!("ca.crt: {e}")))?;
        roots.add(ca).map_err(|e| ClientError::InvalidArgument(format!("ca.crt: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::InvalidArgument(e.to_string()))?
        .with_root_certificates(roots);
    let config = match &tls.identity {
        Some((crt, key)) => {
            let chain = CertificateDer::pem_slice_iter(crt).collect::<Result<Vec<_>, _>>();
            let chain = chain.map_err(|e| ClientError::InvalidArgument(format!("tls.crt: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| ClientError::InvalidArgument(format!("tls.key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::InvalidArgument(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    let address = endpoint.split("://").nth(1).unwrap_or(&endpoint).trim_end_matches('/').to_owned();
    let name = ServerName::try_from(tls.server_name.clone())
        .map_err(|e| ClientError::InvalidArgument(format!("server name {}: {e}", tls.server_name)))?;
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(&address).await.map_err(|e| unavailable(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let served = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        served.ok_or_else(|| unavailable("served no certificate".into()))
    };
    tokio::time::timeout(options.connect_timeout, handshake)
        .await
        .map_err(|_| ClientError::Timeout { operation: "TLS handshake", timeout: options.connect_timeout })?
}
