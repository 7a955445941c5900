//! Turning TLS on and off on a running 3-member cluster of real etcd under
//! load. Each direction restarts every member twice, one at a time: towards
//! TLS the certificates are mounted first (every member can then dial TLS
//! peers), then each member's peer URL becomes https just before it restarts
//! listening with TLS; towards plaintext the same in reverse. A client that
//! opens a new connection for every write, in whichever scheme the member
//! answers, loses no write, and every acknowledged write is kept.
//! On etcd 3.4.23, where a member speaks one scheme at a time, and on a current
//! 3.5 release (Debian's, which kube-sim runs for its own tag), where a member
//! with certificates serves both on one port: there a client that uses one
//! scheme, plaintext until the certificates are mounted everywhere and TLS
//! from then on (the reverse on the way back), never finds a member refusing it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use etcd_operator_api::cluster::{TransportPhase, TransportStatus};
use k8s_openapi::api::events::v1::Event;
use kube::{Api, api::ListParams};
use system_tests::{pods, real::RealCluster, secure::secret};

/// Counts of the workload's writes.
#[derive(Default)]
struct Counts {
    ok: AtomicUsize,
    /// Writes no member took in either scheme.
    lost: AtomicUsize,
}

/// TLS options with the operator's certificate, once the cluster has its certificates.
async fn tls_options(c: &RealCluster) -> Option<etcd_client::ConnectOptions> {
    let (ca, operator) =
        (secret(&c.client, "demo-client-tls").await?, secret(&c.client, "demo-operator-tls").await?);
    let key = |s: &k8s_openapi::api::core::v1::Secret, k: &str| system_tests::secure::key(s, k);
    let options = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(key(&ca, "ca.crt")))
        .identity(etcd_client::Identity::from_pem(key(&operator, "tls.crt"), key(&operator, "tls.key")))
        .domain_name("demo-client.default.svc.cluster.local");
    Some(etcd_client::ConnectOptions::new().with_tls(options))
}

/// One write through `member` over a new connection in `scheme`.
async fn put(c: &RealCluster, member: &str, scheme: &str, key: &str) -> Result<(), String> {
    let endpoint = c.rewrite.apply(&format!("{scheme}://{member}.demo.default.svc.cluster.local:2379"));
    let options =
        if scheme == "https" { Some(tls_options(c).await.ok_or("no certificates yet")?) } else { None };
    let write = async {
        let mut etcd = etcd_client::Client::connect([endpoint], options).await?;
        etcd.put(key, member, None).await
    };
    match tokio::time::timeout(Duration::from_secs(4), write).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("timed out".into()),
    }
}

/// The schemes a client tries: both, or the one the move allows at the moment (side by side).
#[derive(Default)]
struct Client {
    /// `Some`: one scheme, TLS when true; `None`: TLS, then plaintext.
    one: Option<AtomicBool>,
}

impl Client {
    fn schemes(&self) -> &'static [&'static str] {
        match &self.one {
            None => &["https", "http"],
            Some(tls) if tls.load(Ordering::SeqCst) => &["https"],
            Some(_) => &["http"],
        }
    }

    /// At the phase where the one-scheme client changes scheme, every member must already
    /// advertise the new one: towards TLS once the certificates are mounted everywhere
    /// (EnablingTls), towards plaintext once no member listens with TLS only (Unmounting).
    async fn at_phase(&self, c: &RealCluster, phase: TransportPhase) {
        let Some(tls) = &self.one else { return };
        let scheme = match phase {
            TransportPhase::EnablingTls => "https",
            TransportPhase::UnmountingCertificates => "http",
            _ => return,
        };
        for m in c.members().await {
            let advertised = m.client_urls.iter().any(|u| u.starts_with(&format!("{scheme}://")));
            assert!(advertised, "at {phase:?}, {} advertises {:?}, not {scheme}", m.name, m.client_urls);
        }
        tls.store(scheme == "https", Ordering::SeqCst);
    }
}

/// Writes until `stop`, each through the members in turn, in the client's schemes, until one
/// takes it (or 3 s pass: lost).
fn workload(
    c: Arc<RealCluster>,
    client: Arc<Client>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut i = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let key = format!("switch/{i:05}");
            // Rounds over the members for up to 3 s, as a client retries through a leader
            // change (a restart moves leadership first; writes fail until the new leader
            // takes them): a member refusing the scheme refuses for a whole phase, far longer.
            let (mut done, deadline) = (false, Instant::now() + Duration::from_secs(3));
            while !done && Instant::now() < deadline {
                'members: for attempt in 0..3 {
                    let member = format!("demo-{}", (i + attempt) % 3);
                    for scheme in client.schemes() {
                        if put(&c, &member, scheme, &key).await.is_ok() {
                            done = true;
                            break 'members;
                        }
                    }
                }
                if !done {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            let counter = if done { &counts.ok } else { &counts.lost };
            counter.fetch_add(1, Ordering::SeqCst);
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Reconciles and rolls (what the lifecycle and scaling controllers do) until `done` holds of the
/// recorded transport; the phases it went through.
async fn move_until(
    c: &RealCluster,
    client: &Client,
    done: impl Fn(&TransportStatus) -> bool,
) -> Vec<TransportPhase> {
    let mut phases = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let clusters = Api::<etcd_operator_api::EtcdCluster>::namespaced(c.client.clone(), "default");
    loop {
        let applied = Box::pin(c.services.lifecycle.update_cluster(&c.r, None)).await;
        // The phase as recorded before this round's roll restarts anyone: a client follows the
        // record (members restart only after it), not the end of a roll that may take a while.
        let recorded = clusters.get("demo").await.unwrap().status.and_then(|s| s.transport);
        if let Some(phase) = recorded.and_then(|t| t.moving).map(|m| m.phase)
            && phases.last() != Some(&phase)
        {
            phases.push(phase);
            client.at_phase(c, phase).await;
        }
        let converged = c.services.scaling.converge(&c.r).await.map(|c| c.reason);
        let status = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status;
        assert!(
            Instant::now() < deadline,
            "the move did not finish; phases {phases:?}; last update {:?}; converge {converged:?}; status {status:?}",
            applied.map(|o| o.status.conditions)
        );
        let transport = status.transport.unwrap_or_default();
        if let Some(phase) = transport.moving.as_ref().map(|m| m.phase)
            && phases.last() != Some(&phase)
        {
            phases.push(phase);
            client.at_phase(c, phase).await;
        }
        if done(&transport) {
            return phases;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Peer and client URLs of every member, as etcd lists them.
async fn urls(c: &RealCluster) -> Vec<String> {
    c.members().await.into_iter().flat_map(|m| m.peer_urls.into_iter().chain(m.client_urls)).collect()
}

async fn switch(
    c: &Arc<RealCluster>,
    on: bool,
    client: &Client,
    counts: &Arc<Counts>,
) -> (Vec<TransportPhase>, pods::Seen) {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = pods::watch(&c.client, "demo", 3, stop.clone());
    let clusters = Api::<etcd_operator_api::EtcdCluster>::namespaced(c.client.clone(), "default");
    let mut spec = clusters.get("demo").await.unwrap().spec;
    spec.tls = on.then(|| serde_json::from_value(serde_json::json!({"operatorManaged": {}})).unwrap());
    Box::pin(
        c.services
            .lifecycle
            .update_cluster(&c.r, Some(etcd_operator_service::SpecUpdate::Replace(Box::new(spec)))),
    )
    .await
    .expect("UpdateCluster");
    let phases = move_until(c, client, |t| t.moving.is_none() && t.tls.is_some() == on).await;
    stop.store(true, Ordering::SeqCst);
    let seen = watcher.await.unwrap();
    eprintln!(
        "TLS {}: phases {phases:?}, restarts {:?}, {} writes so far, {} lost",
        if on { "on" } else { "off" },
        seen.restarted,
        counts.ok.load(Ordering::SeqCst),
        counts.lost.load(Ordering::SeqCst)
    );
    (phases, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_turned_on_and_off_one_member_at_a_time_under_load_and_no_write_is_lost() {
    on_and_off("3.4.23", Client::default()).await;
}

/// On a 3.5 release that serves both schemes on one port (3.5.8+; kube-sim runs Debian's current
/// 3.5 for its tag), a client that keeps to one scheme, switching when the move says, is never
/// refused by every member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_etcd_3_5_a_client_of_one_scheme_is_always_served() {
    let (_, version) =
        kube_sim::node::images::etcd_3_5_debian().expect("Debian's etcd 3.5 (scripts/setup.sh)");
    on_and_off(&version, Client { one: Some(AtomicBool::new(false)) }).await;
}

async fn on_and_off(version: &str, client: Client) {
    let mut spec = serde_json::to_value(system_tests::real::spec(3)).unwrap();
    spec["version"] = serde_json::json!(version);
    let c = RealCluster::start_with(serde_json::from_value(spec).unwrap(), Duration::from_secs(10)).await;
    let c = Arc::new(c);
    pods::all_ready(&c.client, "demo", 3).await;
    let running = c.services.lifecycle.get_cluster_status(&c.r).await.unwrap().status.current_version;
    assert_eq!(running.as_deref(), Some(version), "the members run etcd {version}");
    let client = Arc::new(client);
    let (counts, stop) = (Arc::new(Counts::default()), Arc::new(AtomicBool::new(false)));
    let writer = workload(c.clone(), client.clone(), counts.clone(), stop.clone());

    use TransportPhase::*;
    let (phases, seen) = switch(&c, true, &client, &counts).await;
    assert_eq!(phases, [MountingCertificates, EnablingTls]);
    assert_eq!(seen.restarted.len(), 6, "two rolls, each member once in each: {:?}", seen.restarted);
    assert!(seen.most_down <= 1, "{} members down at once: {:?}", seen.most_down, seen.worst);
    let all = urls(&c).await;
    assert!(all.iter().all(|u| u.starts_with("https://")), "every peer and client URL is https: {all:?}");
    assert!(put(&c, "demo-0", "http", "plain").await.is_err(), "plaintext is refused once TLS is on");
    put(&c, "demo-0", "https", "secure").await.expect("TLS with the operator's certificate is taken");

    let (phases, seen) = switch(&c, false, &client, &counts).await;
    assert_eq!(phases, [DisablingTls, UnmountingCertificates]);
    assert_eq!(seen.restarted.len(), 6, "two rolls, each member once in each: {:?}", seen.restarted);
    assert!(seen.most_down <= 1, "{} members down at once: {:?}", seen.most_down, seen.worst);
    let all = urls(&c).await;
    assert!(all.iter().all(|u| u.starts_with("http://")), "every peer and client URL is http: {all:?}");
    put(&c, "demo-0", "http", "plain").await.expect("plaintext is taken again");

    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let (ok, lost) = (counts.ok.load(Ordering::SeqCst), counts.lost.load(Ordering::SeqCst));
    assert!(ok > 100, "the workload ran: {ok} writes");
    assert_eq!(lost, 0, "a write found no member to take it in either scheme");
    assert_eq!(c.count("switch").await, ok, "every acknowledged write kept");
    let events =
        Api::<Event>::namespaced(c.client.clone(), "default").list(&ListParams::default()).await.unwrap();
    let reasons: Vec<String> = events.items.iter().filter_map(|e| e.reason.clone()).collect();
    for reason in ["MountingCertificates", "EnablingTls", "TlsEnabled", "DisablingTls", "TlsDisabled"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} event in {reasons:?}");
    }
}
