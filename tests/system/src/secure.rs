//! The TLS variant of the system tests: with `SYSTEM_TESTS_TLS=1` every
//! cluster a test creates through [`crate::real`] has operator-managed TLS and
//! etcd's authentication on, and the tests' own etcd connections present the
//! operator's client certificate (the root user `etcd-operator`), as the
//! cluster-service does. The membership, replacement, backup, restore and
//! quorum-recovery tests are built twice (`<test>_tls_variant` in Cargo.toml),
//! so every test run runs them both ways.

use etcd_operator_api::{EtcdCluster, EtcdClusterSpec, cluster::TlsSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

/// Whether this run is the TLS variant: `SYSTEM_TESTS_TLS=1`, or a test binary built as the
/// variant (a `[[test]]` named `<test>_tls_variant` in Cargo.toml), so that CI runs both
/// variants side by side in one run instead of building and running a second one after it.
pub fn enabled() -> bool {
    asked_by_env() || is_variant_binary()
}

/// `SYSTEM_TESTS_TLS=1`: any system test as its TLS variant.
fn asked_by_env() -> bool {
    std::env::var("SYSTEM_TESTS_TLS").is_ok_and(|v| v == "1")
}

/// Whether the running test binary is a `*_tls_variant` target (cargo names it `<name>-<hash>`).
fn is_variant_binary() -> bool {
    let exe = std::env::current_exe().ok();
    let name = exe.as_deref().and_then(std::path::Path::file_name).and_then(|n| n.to_str());
    name.and_then(|n| n.rsplit_once('-')).is_some_and(|(target, _)| target.ends_with("_tls_variant"))
}

/// Checks that a test binary runs the variant its target's name says (`env!("CARGO_CRATE_NAME")`
/// of the test file): a target misnamed in Cargo.toml would otherwise run plaintext unnoticed.
pub fn assert_runs_the_variant_of(crate_name: &str) {
    assert_eq!(enabled(), asked_by_env() || crate_name.ends_with("_tls_variant"), "{crate_name}");
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

/// `http` or `https`, as cluster `name` in `default` serves its client port (as the operator
/// recorded it: a spec.tls just added or removed changes it only once the members moved).
pub async fn scheme(client: &Client, name: &str) -> &'static str {
    if tls_of(client, name).await.is_some() { "https" } else { "http" }
}

/// The TLS settings of the members' client port, if they speak TLS.
async fn tls_of(client: &Client, name: &str) -> Option<TlsSpec> {
    let clusters = Api::<EtcdCluster>::namespaced(client.clone(), "default");
    let cluster = clusters.get_opt(name).await.ok().flatten()?;
    let transport = cluster.member_transport();
    transport.certificates.filter(|_| transport.listen_tls).cloned()
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

/// Secret `name` in `default`, if it exists.
pub async fn secret(client: &Client, name: &str) -> Option<Secret> {
    Api::<Secret>::namespaced(client.clone(), "default").get_opt(name).await.expect("get Secret")
}

/// One key of a Secret (empty when missing).
pub fn key(s: &Secret, k: &str) -> Vec<u8> {
    s.data.as_ref().and_then(|d| d.get(k)).map(|b| b.0.clone()).unwrap_or_default()
}

/// Writes cluster `name`'s operator certificate (`ca.crt`, `tls.crt`, `tls.key`) into `dir`, as a
/// tool would be given it.
pub async fn operator_certs(client: &Client, name: &str, dir: &std::path::Path) {
    let operator = secret(client, &format!("{name}-operator-tls")).await.expect("operator Secret");
    for k in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::write(dir.join(k), key(&operator, k)).expect("certificate written");
    }
}

/// Real etcdctl in `pod`'s network namespace (its cluster DNS), against member 0 of cluster
/// `name` by its DNS name, trusting `certs/ca.crt` and presenting `certs/tls.crt` when it is there,
/// as `user` (`name:password`) when given.
pub fn etcdctl(
    sim: &kube_sim::KubeSim,
    pod: &str,
    name: &str,
    certs: &std::path::Path,
    user: Option<&str>,
    args: &[&str],
) -> std::process::Output {
    let netns = sim.node().expect("node").netns("default", pod).expect("pod netns");
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &netns, "etcdctl", "--dial-timeout=3s", "--command-timeout=5s"])
        .arg(format!("--endpoints=https://{name}-0.{name}.default.svc.cluster.local:2379"))
        .arg(format!("--cacert={}", certs.join("ca.crt").display()))
        .env("ETCDCTL_API", "3");
    if certs.join("tls.crt").exists() {
        cmd.arg(format!("--cert={}", certs.join("tls.crt").display()));
        cmd.arg(format!("--key={}", certs.join("tls.key").display()));
    }
    if let Some(user) = user {
        cmd.arg(format!("--user={user}"));
    }
    cmd.args(args).output().expect("etcdctl runs")
}

/// A Secret as cert-manager writes it: the leaf, its key, and the CA that issued it.
pub fn provided(secret: &str, ca: &str, leaf: &etcd_operator_service::security::certs::Pair) -> Secret {
    let data = [("tls.crt", &leaf.crt), ("tls.key", &leaf.key), ("ca.crt", &ca.to_owned())]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), k8s_openapi::ByteString(v.as_bytes().to_vec())))
        .collect();
    Secret {
        metadata: kube::api::ObjectMeta { name: Some(secret.into()), ..Default::default() },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    }
}
