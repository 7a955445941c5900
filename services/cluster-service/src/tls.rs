//! The gRPC server's TLS. Each replica holds a serving certificate issued from the API's CA
//! (`etcd_operator_service::api_tls`) in memory only, hands it to every handshake through a
//! resolver, and swaps in a new one at two thirds of its life: nothing restarts, and a key never
//! touches a disk or the Kubernetes API.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use etcd_operator_service::{
    api_tls::{self, decide::ServingNames},
    security::certs::{self, Pair},
};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon a failed renewal is tried again.
const RETRY: Duration = Duration::from_secs(10);

/// The serving certificate of this replica and what it is renewed from.
pub struct Serving {
    ca: Pair,
    names: ServingNames,
    validity: chrono::Duration,
    current: Arc<Current>,
}

/// The certificate every handshake is given, and its renewal time.
#[derive(Debug)]
struct Current(RwLock<(Arc<CertifiedKey>, DateTime<Utc>)>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).0.clone())
    }
}

impl Serving {
    /// Issues the first serving certificate for `names` from `ca`.
    pub fn new(ca: Pair, names: ServingNames, validity: chrono::Duration) -> Result<Self, String> {
        api_tls::decide::check_validity(validity)?;
        let first = issue(&ca, &names, validity)?;
        Ok(Self { ca, names, validity, current: Arc::new(Current(RwLock::new(first))) })
    }

    /// The rustls configuration of the server: HTTP/2 only (gRPC), this replica's certificate,
    /// no client certificates (callers prove who they are with a token).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// When the current certificate is due for renewal.
    pub fn renew_at(&self) -> DateTime<Utc> {
        self.current.0.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// The certificate handshakes get now (DER).
    pub fn certificate_der(&self) -> Vec<u8> {
        let current = self.current.0.read().unwrap_or_else(|e| e.into_inner());
        current.0.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// Issues a new certificate and hands it to the handshakes that follow.
    pub fn renew(&self) -> Result<(), String> {
        let next = issue(&self.ca, &self.names, self.validity)?;
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// Renews the certificate whenever it is due, until `shutdown` resolves.
    pub async fn keep_renewed(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = (self.renew_at() - etcd_operator_common::time::now()).to_std().unwrap_or_default();
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
            match self.renew() {
                Ok(()) => tracing::info!(next = %self.renew_at(), "renewed the API's serving certificate"),
                Err(e) => {
                    tracing::error!("renewing the API's serving certificate: {e}; trying again in {RETRY:?}");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

fn issue(
    ca: &Pair,
    names: &ServingNames,
    validity: chrono::Duration,
) -> Result<(Arc<CertifiedKey>, DateTime<Utc>), String> {
    let now = etcd_operator_common::time::now();
    let pair = api_tls::serving(ca, names, now, validity).map_err(|e| e.to_string())?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pair.crt.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the issued certificate: {e}"))?;
    let key =
        PrivateKeyDer::from_pem_slice(pair.key.as_bytes()).map_err(|e| format!("the issued key: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified =
        CertifiedKey::from_der(chain, key, &provider).map_err(|e| format!("the issued certificate: {e}"))?;
    let (not_before, not_after) = (now, certs::not_after(pair.crt.as_bytes()).unwrap_or(now + validity));
    Ok((Arc::new(certified), api_tls::decide::renew_at(not_before, not_after)))
}

/// TLS connections accepted on `listener`. Handshakes run apart from the accept loop, so a
/// client that stalls in one holds up nobody; one that fails is logged and dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            // Without TCP_NODELAY, the last frames of an answer (its trailers) wait for the
            // client's delayed ACK of the first: ~1.5 ms per call at low load, and a few hundred
            // calls a second per connection at most. gRPC servers set it for this reason.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(%peer, "setting TCP_NODELAY: {e}");
            }
            let (tx, acceptor) = (tx.clone(), acceptor.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => drop(tx.send(Ok(tls)).await),
                    Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => tracing::info!(%peer, "TLS handshake not finished in {HANDSHAKE_TIMEOUT:?}"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
