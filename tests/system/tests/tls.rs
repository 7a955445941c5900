//! Clusters with spec.tls on real etcd pods: who may talk to the members,
//! certificates renewed under load, and provided Secrets whose problems are
//! named without anything being deleted.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use cluster_service::auth::Rpc;
use etcd_operator_api::{ConditionStatus, EtcdCluster, cluster::CONDITION_CERTIFICATES_READY};
use etcd_operator_common::ClusterRef;
use etcd_operator_proto::v1alpha1::{
    GetCertificatesRequest, RotateCertificateAuthorityRequest, security_service_client::SecurityServiceClient,
};
use etcd_operator_resource::{names::ClusterNames, templates::tls::Purpose};
use etcd_operator_service::security::certs::{issue, issue_ca};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use system_tests::{
    real::{RealCluster, tls_spec},
    secure::{etcdctl, key, operator_certs, provided, secret},
};

async fn cluster(c: &RealCluster, name: &str) -> EtcdCluster {
    Api::<EtcdCluster>::namespaced(c.client.clone(), "default").get(name).await.unwrap()
}

#[tokio::test]
async fn operator_managed_tls_admits_only_clients_with_the_clusters_certificates() {
    let c = RealCluster::start_with(
        tls_spec(3, serde_json::json!({"operatorManaged": {}})),
        Duration::from_secs(10),
    )
    .await;
    let ca = secret(&c.client, "demo-ca").await.expect("the CA Secret");
    assert_eq!(ca.type_.as_deref(), Some("Opaque"));
    assert!(!key(&ca, "ca.key").is_empty());
    for purpose in ["client", "peer", "operator"] {
        let s = secret(&c.client, &format!("demo-{purpose}-tls")).await.expect("certificate Secret");
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(key(&s, "ca.crt"), key(&ca, "ca.crt"), "{purpose} carries the cluster's CA");
    }
    let status = cluster(&c, "demo").await.status.unwrap();
    let ready = status.conditions.iter().find(|x| x.type_ == CONDITION_CERTIFICATES_READY).unwrap();
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::True, "CertificatesValid"));
    assert_eq!(status.certificates.len(), 3);
    assert!(status.members.iter().all(|m| m.client_urls.iter().all(|u| u.starts_with("https://"))));

    // etcdctl with the operator's certificate, as a tool would be given it.
    let dir = tempfile::tempdir().unwrap();
    operator_certs(&c.client, "demo", dir.path()).await;
    let put = etcdctl(&c.sim, "demo-1", "demo", dir.path(), None, &["put", "tls-key", "over-tls"]);
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let get = etcdctl(&c.sim, "demo-2", "demo", dir.path(), None, &["get", "tls-key", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "over-tls");
    // Without a client certificate the member refuses, as it does to plain HTTP.
    std::fs::remove_file(dir.path().join("tls.crt")).unwrap();
    std::fs::remove_file(dir.path().join("tls.key")).unwrap();
    let anonymous = etcdctl(&c.sim, "demo-1", "demo", dir.path(), None, &["get", "tls-key"]);
    assert!(!anonymous.status.success(), "a client without a certificate was served");
    let ip = c.sim.node().unwrap().pod_ip("default", "demo-0").unwrap();
    assert!(
        http_get(&format!("{ip}:2379"), "/health").await.is_err_or_not_ok(),
        "plain HTTP on the client port"
    );
    // The metrics port stays plain HTTP: probes carry no certificate.
    let health = http_get(&format!("{ip}:2381"), "/health").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // grpcurl (a client nobody here wrote; it asks reflection v1alpha) finds the SecurityService.
    let address = c.grpc_endpoint.trim_start_matches("http://");
    // Asynchronously: the service answering it runs on this test's runtime.
    let token = system_tests::identity::token(&c.client, "tooling", &[Rpc::GetCertificates]).await;
    let header = format!("authorization: Bearer {token}");
    let listed = tokio::process::Command::new("grpcurl")
        .args(["-plaintext", "-H", &header, address, "list"])
        .output()
        .await
        .expect("grpcurl runs");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("etcd_operator.v1alpha1.SecurityService"),
        "{listed:?}"
    );
    // The SecurityService reports the same, over gRPC.
    let mut grpc = SecurityServiceClient::connect(c.grpc_endpoint.clone()).await.unwrap();
    let cluster_ref =
        etcd_operator_proto::v1alpha1::ClusterRef { namespace: "default".into(), name: "demo".into() };
    let mut request = tonic::Request::new(GetCertificatesRequest { cluster: Some(cluster_ref) });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let answer = grpc.get_certificates(request).await.unwrap().into_inner();
    assert!(answer.tls);
    assert_eq!(answer.mode, "OperatorManaged");
    let purposes: Vec<_> = answer.certificates.iter().map(|x| x.purpose.as_str()).collect();
    assert_eq!(purposes, ["client", "peer", "operator"]);
    assert!(answer.certificates.iter().all(|x| x.problem.is_empty() && !x.not_after.is_empty()));
}

/// A raw HTTP/1.1 GET (the response's first bytes), as a probe sends it.
async fn http_get(address: &str, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s =
        tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(address)).await??;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut buf = vec![0; 256];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

trait NotOk {
    fn is_err_or_not_ok(&self) -> bool;
}

impl NotOk for std::io::Result<String> {
    fn is_err_or_not_ok(&self) -> bool {
        self.as_ref().map_or(true, |r| !r.starts_with("HTTP/1.1 200"))
    }
}

/// The leaf certificate `pod` serves on its client port to a new connection (DER).
async fn served_certificate(c: &RealCluster, pod: &str) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
    let (client, operator) = (
        secret(&c.client, "demo-client-tls").await.unwrap(),
        secret(&c.client, "demo-operator-tls").await.unwrap(),
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(&key(&client, "ca.crt")).unwrap()).unwrap();
    let chain = vec![CertificateDer::from_pem_slice(&key(&operator, "tls.crt")).unwrap()];
    let private = PrivateKeyDer::from_pem_slice(&key(&operator, "tls.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, private)
        .unwrap();
    let ip = c.sim.node().unwrap().pod_ip("default", pod).unwrap();
    let tcp = tokio::net::TcpStream::connect((ip, 2379)).await.unwrap();
    let name = ServerName::try_from("demo-client.default.svc.cluster.local").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem: &[u8]) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem).unwrap().1.contents
}

#[tokio::test]
async fn certificates_are_renewed_before_expiry_and_served_without_a_failed_write() {
    // Renewed ten seconds after issue: the window is most of a ten-minute lifetime.
    let tls = serde_json::json!({"operatorManaged": {"validity": "10m", "renewBefore": "9m50s"}});
    let c = RealCluster::start_with(tls_spec(3, tls), Duration::from_secs(10)).await;
    let first = key(&secret(&c.client, "demo-client-tls").await.unwrap(), "tls.crt");
    assert_eq!(served_certificate(&c, "demo-0").await, der(&first));

    // A workload that opens a new connection (a new handshake) for every write, on every member.
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let c = Arc::new(c);
    let writer = {
        let (c, ok, failed, stop) = (c.clone(), ok.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let member = format!("demo-{}", i % 3);
                let endpoint = c.member_endpoint("demo", &member).await;
                let put = async {
                    let mut etcd = c.connect("demo", vec![endpoint]).await?;
                    etcd.put(format!("renewal/{i:05}"), member.clone(), None).await
                };
                match put.await {
                    Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        eprintln!("write {i} through {member} failed: {e}");
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
                i += 1;
            }
        })
    };
    let mut renewals = 0;
    let mut last = first;
    let deadline = Instant::now() + Duration::from_secs(90);
    while renewals < 2 {
        assert!(Instant::now() < deadline, "only {renewals} renewals in 90 s");
        c.services.security.reconcile(&c.r).await.unwrap();
        let now = key(&secret(&c.client, "demo-client-tls").await.unwrap(), "tls.crt");
        if now != last {
            renewals += 1;
            // The node refreshes the mounted Secret; etcd reads the key pair on each new connection.
            let until = Instant::now() + Duration::from_secs(10);
            while served_certificate(&c, "demo-2").await != der(&now) {
                assert!(Instant::now() < until, "demo-2 still serves the old certificate");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            last = now;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert_eq!(failed.load(Ordering::SeqCst), 0, "writes failed during renewal");
    assert!(ok.load(Ordering::SeqCst) > 20, "the workload ran: {} writes", ok.load(Ordering::SeqCst));
    let peer = key(&secret(&c.client, "demo-peer-tls").await.unwrap(), "tls.crt");
    let facts = x509_parser::pem::parse_x509_pem(&peer).unwrap().1;
    let not_after = facts.parse_x509().unwrap().validity().not_after.timestamp();
    assert!(not_after > chrono_now() + 9 * 60, "the peer certificate was renewed too");
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The CertificatesReady condition of `name` after a status call: (status, reason, message).
async fn certificates_ready(c: &RealCluster, r: &ClusterRef) -> (ConditionStatus, String, String) {
    let out = c.services.lifecycle.get_cluster_status(r).await.unwrap();
    let ready =
        out.status.conditions.iter().find(|x| x.type_ == CONDITION_CERTIFICATES_READY).cloned().unwrap();
    (ready.status, ready.reason, ready.message)
}

/// Every object of cluster `mine` that holds or runs data, by UID: equal before and after means
/// nothing was deleted or recreated.
async fn objects_of_mine(c: &RealCluster) -> Vec<String> {
    use k8s_openapi::api::{
        apps::v1::StatefulSet,
        core::v1::{PersistentVolumeClaim, Pod},
    };
    let ns = |c: &RealCluster| c.client.clone();
    let mut out = vec![
        Api::<StatefulSet>::namespaced(ns(c), "default").get("mine").await.unwrap().metadata.uid.unwrap(),
        Api::<Pod>::namespaced(ns(c), "default").get("mine-0").await.unwrap().metadata.uid.unwrap(),
        Api::<PersistentVolumeClaim>::namespaced(ns(c), "default")
            .get("data-mine-0")
            .await
            .unwrap()
            .metadata
            .uid
            .unwrap(),
    ];
    for s in ["mine-client", "mine-peer", "mine-operator"] {
        out.push(secret(&c.client, s).await.unwrap().metadata.uid.unwrap());
    }
    out
}

#[tokio::test]
async fn problems_of_provided_secrets_are_named_and_nothing_is_deleted() {
    let c = RealCluster::start(1, Duration::from_secs(10)).await;
    let mine = ClusterRef { namespace: "default".into(), name: "mine".into() };
    let spec = tls_spec(
        1,
        serde_json::json!({"provided": {"clientSecretName": "mine-client", "peerSecretName": "mine-peer",
                                        "operatorSecretName": "mine-operator"}}),
    );
    Box::pin(c.services.lifecycle.create_cluster(&mine, Some(spec))).await.unwrap();
    let _ = Box::pin(c.services.lifecycle.update_cluster(&mine, None)).await;
    let (status, reason, message) = certificates_ready(&c, &mine).await;
    assert_eq!((status, reason.as_str()), (ConditionStatus::False, "SecretMissing"));
    assert_eq!(message, "Secret mine-client (client certificate) does not exist");

    // cert-manager's part: a CA and three certificates from it.
    let names = ClusterNames::new("default", "mine", "cluster.local").with_tls(true);
    let now = chrono::Utc::now();
    let ca = issue_ca(&names, now).unwrap();
    let secrets = Api::<Secret>::namespaced(c.client.clone(), "default");
    let leaf = |p| issue(&names, p, &ca, now, chrono::Duration::days(90)).unwrap();
    for (name, purpose) in
        [("mine-client", Purpose::Client), ("mine-peer", Purpose::Peer), ("mine-operator", Purpose::Operator)]
    {
        secrets.create(&PostParams::default(), &provided(name, &ca.crt, &leaf(purpose))).await.unwrap();
    }
    c.converge("mine running", Duration::from_secs(60), || c.services.lifecycle.update_cluster(&mine, None))
        .await;
    assert_eq!(certificates_ready(&c, &mine).await.0, ConditionStatus::True);
    let mut etcd = c.etcd_of("mine", 1).await;
    etcd.put("kept", "yes", None).await.unwrap();
    let before = objects_of_mine(&c).await;

    let patch = |name: &'static str, data: serde_json::Value| {
        let secrets = secrets.clone();
        async move {
            let body = serde_json::json!({"data": data});
            secrets.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await.unwrap();
        }
    };
    let b64 = |bytes: &[u8]| {
        use k8s_openapi::ByteString;
        serde_json::to_value(ByteString(bytes.to_vec())).unwrap()
    };
    patch("mine-peer", serde_json::json!({"ca.crt": null})).await;
    let (status, reason, message) = certificates_ready(&c, &mine).await;
    assert_eq!((status, reason.as_str()), (ConditionStatus::False, "SecretKeyMissing"));
    assert!(message.contains("Secret mine-peer (peer certificate) has no key ca.crt"), "{message}");
    patch("mine-peer", serde_json::json!({"ca.crt": b64(ca.crt.as_bytes())})).await;

    let other = issue_ca(&names, now).unwrap();
    patch("mine-client", serde_json::json!({"ca.crt": b64(other.crt.as_bytes())})).await;
    let (status, reason, message) = certificates_ready(&c, &mine).await;
    assert_eq!((status, reason.as_str()), (ConditionStatus::False, "WrongCA"));
    assert!(
        message.contains("Secret mine-client (client certificate): tls.crt is not signed by the CA"),
        "{message}"
    );
    patch("mine-client", serde_json::json!({"ca.crt": b64(ca.crt.as_bytes())})).await;

    let expired =
        issue(&names, Purpose::Operator, &ca, now - chrono::Duration::days(2), chrono::Duration::days(1))
            .unwrap();
    patch(
        "mine-operator",
        serde_json::json!({"tls.crt": b64(expired.crt.as_bytes()), "tls.key": b64(expired.key.as_bytes())}),
    )
    .await;
    let (status, reason, message) = certificates_ready(&c, &mine).await;
    assert_eq!((status, reason.as_str()), (ConditionStatus::False, "CertificateExpired"));
    assert!(message.starts_with("Secret mine-operator (operator certificate) expired at"), "{message}");

    assert_eq!(objects_of_mine(&c).await, before, "nothing was deleted or recreated");
    let kept = etcd.get("kept", None).await.unwrap();
    assert_eq!(kept.kvs()[0].value_str().unwrap(), "yes");

    // The operator rotates only a CA it keeps; the refusal says so over gRPC.
    let mut grpc = SecurityServiceClient::connect(c.grpc_endpoint.clone()).await.unwrap();
    let cluster =
        etcd_operator_proto::v1alpha1::ClusterRef { namespace: "default".into(), name: "mine".into() };
    let token =
        system_tests::identity::token(&c.client, "security-tooling", &[Rpc::ManageCertificates]).await;
    let mut request = tonic::Request::new(RotateCertificateAuthorityRequest { cluster: Some(cluster) });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let refused = grpc.rotate_certificate_authority(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("spec.tls.operatorManaged"), "{}", refused.message());
}
