//! One member on its own TLS connection, outside the gRPC client: the
//! certificate it serves now, and its `/version`.
//!
//! A CA rotation waits on the served certificate before the old CA stops
//! being trusted: the kubelet updates mounted Secrets only on its next sync
//! (up to about a minute), so a member can still serve the old CA's
//! certificate well after the Secret changed.

use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

use super::EtcdOptions;
use crate::ClientError;

/// The DER of the leaf certificate the member at `endpoint` (`https://host:port`, rewritten as
/// every endpoint is) serves, verified against the options' CAs and server name.
pub async fn served_certificate(endpoint: &str, options: &EtcdOptions) -> Result<Vec<u8>, ClientError> {
    let (address, unavailable) = dial(endpoint, options);
    let handshake = async {
        let stream = connect_tls(&address, options, &unavailable).await?;
        let served = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        served.ok_or_else(|| unavailable("served no certificate".into()))
    };
    tokio::time::timeout(options.connect_timeout, handshake)
        .await
        .map_err(|_| ClientError::Timeout { operation: "TLS handshake", timeout: options.connect_timeout })?
}

/// What a member's `/version` says.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Versions {
    /// The member's server version (`3.5.17`).
    #[serde(rename = "etcdserver")]
    pub server: String,
    /// The cluster version (`3.5.0`): the lowest minor every member runs, set by the leader.
    #[serde(rename = "etcdcluster")]
    pub cluster: String,
}

/// The member's `/version` on its client port (TLS as the options say; the cluster version
/// appears nowhere in etcd's gRPC API).
pub async fn versions(endpoint: &str, options: &EtcdOptions) -> Result<Versions, ClientError> {
    let (address, unavailable) = dial(endpoint, options);
    let call = async {
        let body = if endpoint.starts_with("https://") {
            get_version(connect_tls(&address, options, &unavailable).await?).await
        } else {
            let tcp =
                tokio::net::TcpStream::connect(&address).await.map_err(|e| unavailable(e.to_string()))?;
            get_version(tcp).await
        };
        let body = body.map_err(&unavailable)?;
        serde_json::from_slice::<Versions>(&body)
            .map_err(|e| unavailable(format!("/version: {e}: {}", String::from_utf8_lossy(&body))))
    };
    tokio::time::timeout(options.request_timeout, call)
        .await
        .map_err(|_| ClientError::Timeout { operation: "version", timeout: options.request_timeout })?
}

/// The rewritten `host:port` to dial, and how to report that it did not answer.
fn dial(endpoint: &str, options: &EtcdOptions) -> (String, impl Fn(String) -> ClientError) {
    let endpoint = options.rewrite.apply(endpoint);
    let address = endpoint.split("://").nth(1).unwrap_or(&endpoint).trim_end_matches('/').to_owned();
    (address, move |message: String| ClientError::Unavailable { target: endpoint.clone(), message })
}

/// `GET /version` over one HTTP/1.1 connection.
async fn get_version<S>(stream: S) -> Result<bytes::Bytes, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get("/version")
        .header(hyper::header::HOST, "etcd")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    driver.abort();
    if !status.is_success() {
        return Err(format!("/version answered {status}"));
    }
    Ok(body)
}

/// A TLS connection to `address`, verified against the options' CAs and server name, with the
/// operator's client certificate when it has one.
async fn connect_tls(
    address: &str,
    options: &EtcdOptions,
    unavailable: impl Fn(String) -> ClientError,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ClientError> {
    let tls = options.tls.as_ref().ok_or_else(|| ClientError::InvalidArgument("no TLS settings".into()))?;
    let config = client_config(tls)?;
    let name = ServerName::try_from(tls.server_name.clone())
        .map_err(|e| ClientError::InvalidArgument(format!("server name {}: {e}", tls.server_name)))?;
    let tcp = tokio::net::TcpStream::connect(address).await.map_err(|e| unavailable(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(name, tcp).await.map_err(|e| unavailable(e.to_string()))
}

fn client_config(tls: &super::EtcdTls) -> Result<rustls::ClientConfig, ClientError> {
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
    match &tls.identity {
        Some((crt, key)) => {
            let chain = CertificateDer::pem_slice_iter(crt).collect::<Result<Vec<_>, _>>();
            let chain = chain.map_err(|e| ClientError::InvalidArgument(format!("tls.crt: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| ClientError::InvalidArgument(format!("tls.key: {e}")))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| ClientError::InvalidArgument(e.to_string()))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}
