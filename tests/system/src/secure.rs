//! The TLS variant of the system tests: with `SYSTEM_TESTS_TLS=1` every
//! cluster a test creates through [`crate::real`] has operator-managed TLS and
//! etcd's authentication on, and the tests' own etcd connections present the
//! operator's client certificate (the root user `etcd-operator`), as the
//! cluster-service does. CI runs the membership,
//! replacement, backup, restore and quorum-recovery tests both ways.

use etcd_operator_api::{EtcdCluster, EtcdClusterSpec, cluster::TlsSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

/// Whether this run is the TLS variant.
pub fn enabled() -> bool {
    std::env::var("SYSTEM_TESTS_TLS").is_ok_and(|v| v == "1")
}

/// `spec` as this variant runs it: with operator-managed TLS and auth when [`enabled`].
pub fn variant(mut spec: EtcdClusterSpec) -> EtcdClusterSpec {
    if enabled() && spec.tls.is_none() {
        spec.tls =
            Some(serde_json::from_value::<TlsSpec>(serde_json::json!({"operatorManaged": {}})).expect("tls"));
        spec.auth = Some(etcd_operator_api::cluster::AuthSpec { enabled: true });
    }
    spec
}

/// `http` or `https`, as cluster `name` in `default` serves its client port.
pub async fn scheme(client: &Client, name: &str) -> &'static str {
    if tls_of(client, name).await.is_some() { "https" } else { "http" }
}

async fn tls_of(client: &Client, name: &str) -> Option<TlsSpec> {
    let clusters = Api::<EtcdCluster>::namespaced(client.clone(), "default");
    clusters.get_opt(name).await.ok().flatten().and_then(|c| c.spec.tls)
}

/// Connection options for cluster `name`: its CA and the operator's client certificate, checked
/// against the client Service's name (endpoints are pod IPs).
pub async fn connect_options(client: &Client, name: &str) -> Option<etcd_client::ConnectOptions> {
    let tls = tls_of(client, name).await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), "default");
    let names = etcd_operator_resource::names::ClusterNames::new("default", name, "cluster.local");
    let read = |purpose| {
        let secret = etcd_operator_resource::templates::tls::secret_name(&names, &tls, purpose);
        let secrets = secrets.clone();
        async move {
            let s = secrets.get(&secret).await.unwrap_or_else(|e| panic!("Secret {secret}: {e}"));
            let data = s.data.unwrap_or_default();
            move |key: &str| data.get(key).map(|b| b.0.clone()).unwrap_or_else(|| panic!("{key} missing"))
        }
    };
    use etcd_operator_resource::templates::tls::Purpose;
    let (client_secret, operator) = (read(Purpose::Client).await, read(Purpose::Operator).await);
    let options = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(client_secret("ca.crt")))
        .identity(etcd_client::Identity::from_pem(operator("tls.crt"), operator("tls.key")))
        .domain_name(names.client_service_host());
    Some(etcd_client::ConnectOptions::new().with_tls(options))
}
