//! The Kubernetes client and how components identify themselves to it.

use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioExecutor};
use kube::{Client, Config, client::ConfigExt};
use tower::ServiceBuilder;

use crate::ClientError;

/// Field manager prefix; each component appends its name (`etcd-operator/lifecycle`).
pub const FIELD_MANAGER_PREFIX: &str = "etcd-operator";

/// Field manager name of a component, used for every server-side apply it makes.
pub fn field_manager(component: &str) -> String {
    format!("{FIELD_MANAGER_PREFIX}/{component}")
}

/// Builds a client from the in-cluster environment or `$KUBECONFIG`.
pub async fn connect() -> Result<Client, ClientError> {
    let config = Config::infer().await.map_err(|e| ClientError::Unavailable {
        target: "kubernetes".into(),
        message: format!("no usable kubeconfig or in-cluster config: {e}"),
    })?;
    over_http2(config)
}

/// A client for `config` that speaks HTTP/2 to an API server offering it over TLS, as client-go
/// does: every request and watch multiplexed on one connection. kube's default client speaks
/// HTTP/1.1, one connection (its TLS session and buffers) per request in flight: a cluster-service
/// answering a thousand new clusters held over 200. Through a proxy, or in plaintext, kube's
/// default client is used.
pub fn over_http2(config: Config) -> Result<Client, ClientError> {
    let plain = config.cluster_url.scheme_str() != Some("https");
    if config.proxy_url.is_some() || plain {
        return Ok(Client::try_from(config)?);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    http.set_nodelay(true);
    // kube's TLS configuration: the kubeconfig's identity, and the in-cluster CA file re-read as
    // it rotates.
    let tls = config.rustls_client_config()?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let mut hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
    // A connection whose peer went away is found by pings, not by the next request hanging.
    hyper
        .http2_keep_alive_interval(std::time::Duration::from_secs(30))
        .http2_keep_alive_while_idle(true)
        .timer(hyper_util::rt::TokioTimer::new());
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(hyper.build(https));
    Ok(Client::new(service, config.default_namespace))
}
