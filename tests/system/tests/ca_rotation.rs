//! Rotating an operator-managed CA on real etcd under load: the new CA is
//! trusted beside the old one (members restart one at a time), then issues
//! every certificate, then the old one is dropped (members restart again).
//! A client that opens a new TLS connection for every write never meets a
//! certificate it cannot verify, and after the rotation a certificate of the
//! old CA is refused. With provided Secrets, a new CA in `ca.crt` restarts the
//! members to trust it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use cluster_service::auth::Rpc;
use etcd_operator_api::cluster::CaRotationPhase;
use etcd_operator_common::ClusterRef as Ref;
use etcd_operator_proto::v1alpha1::{
    ClusterRef, GetCertificatesRequest, security_service_client::SecurityServiceClient,
};
use etcd_operator_resource::{names::ClusterNames, templates::tls::Purpose};
use etcd_operator_service::security::certs;
use k8s_openapi::api::{
    core::v1::{Pod, Secret},
    events::v1::Event,
};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use system_tests::{
    pods,
    real::{RealCluster, tls_spec},
    secure::{key, provided, secret},
};

/// Whether an error is the TLS layer refusing a certificate (what a broken rotation causes),
/// not a member that is restarting (which may end a handshake half way: `tls handshake eof`).
fn certificate_error(e: &str) -> bool {
    ["certificate", "Certificate", "UnknownIssuer", "UnknownCA", "unknown ca", "BadSignature"]
        .iter()
        .any(|s| e.contains(s))
}

/// Counts of the workload's writes.
#[derive(Default)]
struct Counts {
    ok: AtomicUsize,
    /// Writes no member took (each tried on every member in turn).
    lost: AtomicUsize,
    /// Attempts refused for a certificate.
    refused: AtomicUsize,
}

/// How long a write may look for a member to take it. A member restarting refuses at once, and
/// while leadership moves ahead of a leader's restart the others answer "leader changed" until
/// it has: a client retries those, as etcd's own does.
const WRITE_BOUND: Duration = Duration::from_secs(10);

/// Writes until `stop`, each over a new TLS connection (the Secrets read afresh), to the members
/// in turn; a member that does not answer (restarting) is skipped for the next, and a write is
/// tried again, round after round, until `WRITE_BOUND`.
fn workload(c: Arc<RealCluster>, counts: Arc<Counts>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut i = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let (deadline, mut done, mut failures) = (Instant::now() + WRITE_BOUND, false, Vec::new());
            let mut attempt = 0;
            while !done && Instant::now() < deadline {
                let member = format!("demo-{}", (i + attempt) % 3);
                let endpoint = c.member_endpoint("demo", &member).await;
                let put = async {
                    let mut etcd = c.connect("demo", vec![endpoint]).await?;
                    etcd.put(format!("rotation/{i:05}"), member.clone(), None).await
                };
                let bound = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(5));
                match tokio::time::timeout(bound, put).await {
                    Ok(Ok(_)) => done = true,
                    Ok(Err(e)) if certificate_error(&format!("{e:?}")) => {
                        eprintln!("write {i} through {member} refused a certificate: {e:?}");
                        counts.refused.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Err(e)) => failures.push(format!("{member}: {e}")),
                    Err(_) => failures.push(format!("{member}: no answer in {bound:?}")),
                }
                attempt += 1;
                if !done && attempt % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            if !done {
                eprintln!("write {i} lost: {failures:?}");
            } else if !failures.is_empty() {
                eprintln!("write {i} taken after {failures:?}");
            }
            let counter = if done { &counts.ok } else { &counts.lost };
            counter.fetch_add(1, Ordering::SeqCst);
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_rotates_in_three_phases_under_load_and_the_old_ca_is_refused_after() {
    let tls = serde_json::json!({"operatorManaged": {}});
    let c = Arc::new(RealCluster::start_with(tls_spec(3, tls), Duration::from_secs(10)).await);
    pods::all_ready(&c.client, "demo", 3).await;
    let old_ca = key(&secret(&c.client, "demo-ca").await.unwrap(), "ca.crt");
    let old_operator = secret(&c.client, "demo-operator-tls").await.unwrap();

    let (counts, stop) = (Arc::new(Counts::default()), Arc::new(AtomicBool::new(false)));
    let writer = workload(c.clone(), counts.clone(), stop.clone());
    let watcher = pods::watch(&c.client, "demo", 3, stop.clone());
    let rotating = Instant::now();
    let started = c.services.security.rotate_ca(&c.r).await.expect("RotateCertificateAuthority");
    assert_eq!(started.rotation.as_ref().map(|r| r.phase), Some(CaRotationPhase::TrustingNewCA));
    assert_eq!(started.trusted.len(), 2, "both CAs trusted: {started:?}");
    let again = c.services.security.rotate_ca(&c.r).await.unwrap_err();
    assert!(again.to_string().contains("in progress"), "{again}");

    // What the lifecycle and scaling controllers would do: apply the template, roll the members.
    let mut phases = vec![CaRotationPhase::TrustingNewCA];
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "the rotation did not finish; phases {phases:?}");
        let _ = Box::pin(c.services.lifecycle.update_cluster(&c.r, None)).await;
        let _ = Box::pin(c.services.roll.roll(&c.r)).await;
        let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
        let ca = status.certificate_authority.unwrap_or_default();
        match ca.rotation {
            Some(r) if phases.last() != Some(&r.phase) => phases.push(r.phase),
            Some(_) => {}
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rotation = rotating.elapsed();
    stop.store(true, Ordering::SeqCst);
    let seen = watcher.await.unwrap();
    writer.await.unwrap();
    use CaRotationPhase::*;
    // IssuingFromNewCA takes no restart, so a reconcile goes through it at once: its Event tells.
    assert_eq!(phases.first(), Some(&TrustingNewCA));
    assert_eq!(phases.last(), Some(&DroppingOldCA), "phases seen: {phases:?}");
    let events =
        Api::<Event>::namespaced(c.client.clone(), "default").list(&ListParams::default()).await.unwrap();
    let reasons: Vec<String> = events.items.iter().filter_map(|e| e.reason.clone()).collect();
    for reason in ["RotatingCA", "TrustingNewCA", "IssuingFromNewCA", "DroppingOldCA", "CARotated"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} event in {reasons:?}");
    }
    assert_eq!(seen.restarted.len(), 6, "two rolls, each member once in each: {:?}", seen.restarted);
    assert!(seen.most_down <= 1, "{} members down at once: {:?}", seen.most_down, seen.worst);
    let (ok, lost, refused) = (
        counts.ok.load(Ordering::SeqCst),
        counts.lost.load(Ordering::SeqCst),
        counts.refused.load(Ordering::SeqCst),
    );
    eprintln!(
        "rotation: {ok} writes, {lost} lost, {refused} refused for a certificate; restarts {:?}",
        seen.restarted
    );
    assert_eq!(refused, 0, "a certificate was refused during the rotation");
    assert_eq!(lost, 0, "a write found no member to take it within {WRITE_BOUND:?}");
    // Not a count fixed in advance: a faster rotation takes fewer writes. One every two seconds on
    // average says the workload went on throughout (a write waits for at most WRITE_BOUND).
    assert!(ok as f64 >= rotation.as_secs_f64() / 2.0, "the workload ran: {ok} writes in {rotation:?}");
    assert_eq!(c.count("rotation").await, ok, "every acknowledged write kept");

    // Only the new CA remains: in the CA Secret, in every ca.crt, and as the members' issuer.
    let ca = secret(&c.client, "demo-ca").await.unwrap();
    let new_ca = key(&ca, "ca.crt");
    assert_ne!(new_ca, old_ca);
    let keys: Vec<&String> = ca.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["ca.crt", "ca.key"], "the other CA is gone from the CA Secret");
    for s in ["demo-client-tls", "demo-peer-tls", "demo-operator-tls"] {
        let leaf = secret(&c.client, s).await.unwrap();
        assert_eq!(key(&leaf, "ca.crt"), new_ca, "{s} trusts the new CA only");
        let signer = certs::signer(&key(&leaf, "tls.crt"), &[std::str::from_utf8(&new_ca).unwrap()]);
        assert!(signer.is_some(), "{s} is issued by the new CA");
    }
    // A client certificate of the old CA is refused now; the new one is taken.
    let endpoint = c.member_endpoint("demo", "demo-0").await;
    let with = |crt: Vec<u8>, key_pem: Vec<u8>| {
        let options = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(new_ca.clone()))
            .identity(etcd_client::Identity::from_pem(crt, key_pem))
            .domain_name("demo-client.default.svc.cluster.local");
        etcd_client::ConnectOptions::new().with_tls(options)
    };
    let old = async {
        let options = with(key(&old_operator, "tls.crt"), key(&old_operator, "tls.key"));
        let mut etcd = etcd_client::Client::connect([endpoint.clone()], Some(options)).await?;
        etcd.get("rotation/00000", None).await
    };
    assert!(old.await.is_err(), "a certificate of the old CA still reaches etcd");
    let mut etcd = c.connect("demo", vec![endpoint]).await.expect("the new certificates connect");
    etcd.get("rotation/00000", None).await.expect("the new certificates are taken");
    // The gRPC API reports the one CA trusted now, and no rotation.
    let mut grpc = SecurityServiceClient::connect(c.grpc_endpoint.clone()).await.unwrap();
    let cluster = ClusterRef { namespace: "default".into(), name: "demo".into() };
    let token = system_tests::identity::token(&c.client, "tooling", &[Rpc::GetCertificates]).await;
    let mut request = tonic::Request::new(GetCertificatesRequest { cluster: Some(cluster) });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let answer = grpc.get_certificates(request).await.unwrap().into_inner();
    assert_eq!(answer.trusted_cas, certs::fingerprints(&new_ca));
    assert_eq!(answer.ca_rotation_phase, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ca_in_provided_secrets_restarts_the_members_to_trust_it() {
    let c = RealCluster::start(1, Duration::from_secs(10)).await;
    let mine = Ref { namespace: "default".into(), name: "mine".into() };
    let names = ClusterNames::new("default", "mine", "cluster.local").with_tls(true);
    let now = chrono::Utc::now();
    let (old, new) = (certs::issue_ca(&names, now).unwrap(), certs::issue_ca(&names, now).unwrap());
    let purposes = [
        ("mine-client", Purpose::Client),
        ("mine-peer", Purpose::Peer),
        ("mine-operator", Purpose::Operator),
    ];
    let leaves: Vec<_> = purposes
        .iter()
        .map(|(_, p)| certs::issue(&names, *p, &old, now, chrono::Duration::days(90)).unwrap())
        .collect();
    let secrets = Api::<Secret>::namespaced(c.client.clone(), "default");
    for ((name, _), leaf) in purposes.iter().zip(&leaves) {
        secrets.create(&PostParams::default(), &provided(name, &old.crt, leaf)).await.unwrap();
    }
    let tls = serde_json::json!({"provided": {"clientSecretName": "mine-client", "peerSecretName": "mine-peer",
                                              "operatorSecretName": "mine-operator"}});
    Box::pin(c.services.lifecycle.create_cluster(&mine, Some(tls_spec(1, tls)))).await.unwrap();
    c.converge("mine running", Duration::from_secs(60), || c.services.lifecycle.update_cluster(&mine, None))
        .await;
    pods::all_ready(&c.client, "mine", 1).await;
    c.etcd_of("mine", 1).await.put("kept", "yes", None).await.unwrap();
    let pods_api = Api::<Pod>::namespaced(c.client.clone(), "default");
    let before = pods_api.get("mine-0").await.unwrap().metadata.uid;

    // The user's CA changes (trust-manager's bundle: the old CA and the new one in ca.crt).
    let bundle = format!("{}{}", old.crt, new.crt);
    for ((name, _), leaf) in purposes.iter().zip(&leaves) {
        secrets.replace(name, &PostParams::default(), &provided(name, &bundle, leaf)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the member never restarted to trust the new CA");
        let _ = Box::pin(c.services.lifecycle.update_cluster(&mine, None)).await;
        let _ = c.services.scaling.converge(&mine).await;
        // Between the old pod's deletion and the StatefulSet controller's new one there is none.
        let pod = pods_api.get_opt("mine-0").await.unwrap();
        if pod.is_some_and(|p| p.metadata.uid != before && pods::is_ready(&p)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status = c.services.lifecycle.get_cluster_status(&mine).await.unwrap().status;
    let mut trusted = certs::fingerprints(bundle.as_bytes());
    trusted.sort();
    assert_eq!(status.certificate_authority.unwrap().trusted, trusted, "both CAs recorded");
    let events =
        Api::<Event>::namespaced(c.client.clone(), "default").list(&ListParams::default()).await.unwrap();
    assert!(events.items.iter().any(|e| e.reason.as_deref() == Some("TrustChanged")), "announced");
    let kept = c.etcd_of("mine", 1).await.get("kept", None).await.unwrap();
    assert_eq!(kept.kvs()[0].value_str().unwrap(), "yes");
}
