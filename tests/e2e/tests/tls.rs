//! A cluster with operator-managed TLS and etcd's authentication, created
//! with kubectl from the local example and run by the operator's binaries:
//! its certificates and root Secret appear, authentication turns on through
//! the health controller's probes, a scale to five members goes through the
//! scaling controller over TLS, real etcdctl reaches it only with the
//! cluster's certificates, and `etcdopctl certs` shows them.

use std::time::Duration;

use e2e_tests::cli::{Cli, TOOLING};
use e2e_tests::{Stack, eventually};
use etcd_operator_api::{EtcdCluster, condition::ConditionStatus};
use kube::Api;
use system_tests::secure::etcdctl;

const CLUSTER: &str = include_str!("../../../examples/local-etcdcluster-tls.yaml");

async fn condition(stack: &Stack, type_: &str) -> Option<(ConditionStatus, String)> {
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    let status = clusters.get("secure").await.ok()?.status?;
    status.conditions.iter().find(|c| c.type_ == type_).map(|c| (c.status, c.reason.clone()))
}

/// A Secret's key as kubectl prints it (base64-decoded here).
fn secret_key(stack: &Stack, secret: &str, key: &str) -> Vec<u8> {
    let escaped = key.replace('.', "\\.");
    let b64 = stack.kubectl_ok(&["get", "secret", secret, "-o", &format!("jsonpath={{.data.{escaped}}}")]);
    let out = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b64.trim().as_bytes())?;
            child.wait_with_output()
        });
    out.expect("base64 runs").stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_with_auth_runs_from_kubectl_and_admits_only_holders_of_its_certificates() {
    let mut stack =
        Stack::start("a_tls_cluster_with_auth_runs_from_kubectl_and_admits_only_holders_of_its_certificates")
            .await;
    let endpoint = stack.start_cluster_service("cluster-service-0", &[]).await;
    stack.start_controller("lifecycle", "lifecycle-a", &endpoint, &[]).await;
    stack.start_controller("health", "health-a", &endpoint, &["--probe-interval=2s".to_owned()]).await;
    stack.start_controller("scaling", "scaling-a", &endpoint, &[]).await;
    stack.start_controller("recovery", "recovery-a", &endpoint, &[]).await;

    assert!(stack.kubectl_apply(CLUSTER).contains("etcdcluster.etcd.operator.dev/secure created"));
    eventually("secure Running with authentication on", Duration::from_secs(120), || async {
        condition(&stack, "AuthReady").await.is_some_and(|(s, _)| s == ConditionStatus::True)
    })
    .await;
    let ready = condition(&stack, "CertificatesReady").await.expect("CertificatesReady");
    assert_eq!(ready, (ConditionStatus::True, "CertificatesValid".to_owned()));
    let secrets = stack.kubectl_ok(&["get", "secrets", "-o", "name"]);
    for s in ["secure-ca", "secure-client-tls", "secure-peer-tls", "secure-operator-tls", "secure-etcd-root"]
    {
        assert!(secrets.contains(&format!("secret/{s}")), "{s} missing from {secrets}");
    }
    certificates_from_the_cli(&stack, &endpoint);

    // A tool given the operator's certificate and root's password, as an administrator would be.
    let certs = tempfile::tempdir().unwrap();
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::write(certs.path().join(key), secret_key(&stack, "secure-operator-tls", key)).unwrap();
    }
    let password = String::from_utf8(secret_key(&stack, "secure-etcd-root", "password")).unwrap();
    let root = format!("root:{password}");
    let put = etcdctl(
        &stack.sim,
        "secure-1",
        "secure",
        certs.path(),
        Some(&root),
        &["put", "greeting", "hello over tls"],
    );
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let wrong =
        etcdctl(&stack.sim, "secure-1", "secure", certs.path(), Some("root:guess"), &["get", "greeting"]);
    assert!(!wrong.status.success(), "a wrong root password was accepted");

    // Scaled with kubectl: the scaling controller adds learners over TLS, with auth on.
    stack.kubectl_ok(&["scale", "etcd", "secure", "--replicas=5"]);
    eventually("five members Running", Duration::from_secs(120), || async {
        let table = stack.kubectl_ok(&["get", "etcd", "secure", "--no-headers"]);
        table.split_whitespace().nth(1) == Some("5")
            && table.split_whitespace().nth(2) == Some("5")
            && table.contains("Running")
    })
    .await;
    let members = etcdctl(&stack.sim, "secure-1", "secure", certs.path(), Some(&root), &["member", "list"]);
    let listed = String::from_utf8_lossy(&members.stdout).into_owned();
    assert_eq!(listed.lines().filter(|l| l.contains("started")).count(), 5, "{listed}");
    assert!(listed.lines().all(|l| !l.contains("http://")), "every URL is https: {listed}");
    let get = etcdctl(
        &stack.sim,
        "secure-1",
        "secure",
        certs.path(),
        Some(&root),
        &["get", "greeting", "--print-value-only"],
    );
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "hello over tls");

    // Without a client certificate the members refuse, whatever the password.
    std::fs::remove_file(certs.path().join("tls.crt")).unwrap();
    std::fs::remove_file(certs.path().join("tls.key")).unwrap();
    let anonymous =
        etcdctl(&stack.sim, "secure-1", "secure", certs.path(), Some(&root), &["get", "greeting"]);
    assert!(!anonymous.status.success(), "served without a client certificate");
}

/// `etcdopctl certs`, as the README's tooling account: the certificates the cluster's members
/// serve and present, each with its Secret and expiry, and the verdict on them.
fn certificates_from_the_cli(stack: &Stack, server: &str) {
    stack.kubectl_apply(TOOLING);
    let cli = Cli { stack, server: server.to_owned() };
    let table = cli.ok(&["certs", "secure"]);
    assert!(table.contains("CertificatesReady: CertificatesValid"), "{table}");
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["certs", "secure", "-o", "json"])).unwrap();
    assert_eq!(shown["tls"], true, "{shown}");
    let certificates = shown["certificates"].as_array().expect("certificates");
    for secret in ["secure-client-tls", "secure-peer-tls", "secure-operator-tls"] {
        let c = certificates.iter().find(|c| c["secret"] == secret);
        let c = c.unwrap_or_else(|| panic!("{secret} not shown: {shown}"));
        assert!(c["notAfter"].as_str().is_some_and(|t| t.len() >= 20), "{c}");
        assert!(c.get("problem").is_none(), "{c}");
        assert!(table.contains(secret), "{table}");
    }
}
