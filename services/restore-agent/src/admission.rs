//! Whether a member may start on an empty data directory.
//!
//! etcd starts an empty member in ways that lose data: with
//! `initial-cluster-state=new` it bootstraps the cluster's first state again
//! under the same member IDs, and a majority of such members elect a leader
//! and serve an empty cluster; and a member that voted and acknowledged writes
//! before losing them counts towards a quorum it can no longer back. So an
//! empty member starts only when etcd's own membership, asked of the other
//! members on their peer port (`GET /members`, served without a leader), says
//! it never ran: it was added and has not started yet, or the cluster is still
//! bootstrapping. A member that ran before is refused (it must be replaced:
//! removed and added again empty), and one that is not a member yet waits until
//! it is added.

use std::time::Duration;

use serde::Deserialize;

/// One entry of etcd's membership, as the peer API reports it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PeerMember {
    /// Member name; empty until the member has started once (members added at run time).
    #[serde(default)]
    pub name: String,
    /// Peer URLs.
    #[serde(default, rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    /// Client URLs; published by the member itself when it first starts.
    #[serde(default, rename = "clientURLs")]
    pub client_urls: Vec<String>,
    /// Whether the member is a learner.
    #[serde(default)]
    pub is_learner: bool,
}

/// What the member does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Start etcd on the empty data directory; says why that is safe.
    Start(String),
    /// Ask again shortly; says what is awaited.
    Wait(String),
    /// Never start this incarnation empty; says why and what must happen instead.
    Refuse(String),
}

/// Decides from the bootstrap state (`new` until the cluster formed, then
/// `existing`) and the membership the other members reported (`None` when none
/// answered).
pub fn decide(member: &str, peer_url: &str, state: &str, answers: Option<&[PeerMember]>) -> Verdict {
    let Some(members) = answers else {
        return if state == "new" {
            Verdict::Start(format!(
                "{member} starts empty with the cluster's other members: the cluster is bootstrapping"
            ))
        } else {
            Verdict::Wait(format!(
                "no other member answers, so whether {member} ran before cannot be known; a member of a formed \
                 cluster starts on an empty data directory only once etcd's membership shows it never ran"
            ))
        };
    };
    // Either scheme: while the cluster moves between plaintext and TLS a member's peer URL in the
    // membership may still be in the other one.
    let entries: Vec<&PeerMember> =
        members.iter().filter(|m| m.peer_urls.iter().any(|u| same_host(u, peer_url))).collect();
    if entries.iter().any(|m| !m.client_urls.is_empty()) {
        return Verdict::Refuse(format!(
            "{member} ran before (etcd's membership lists it with client URLs) but its data directory is empty: its \
             data is lost. Starting it empty could count it towards a quorum it cannot back, so it must be replaced \
             (removed and added again empty), which the recovery controller does once it has been down for the \
             replacement grace period"
        ));
    }
    if let Some(m) = entries.first() {
        let role = if m.is_learner { "a learner" } else { "a member" };
        return Verdict::Start(format!("{member} is {role} that has not run yet: it joins empty"));
    }
    Verdict::Wait(format!(
        "{member} is not a member of the cluster: waiting until it is added (a scale-up or a replacement adds it as a \
         learner before it starts)"
    ))
}

/// Whether two URLs name the same host and port, whatever their scheme.
fn same_host(a: &str, b: &str) -> bool {
    let rest = |u: &str| u.split_once("://").map_or(u, |(_, r)| r).trim_end_matches('/').to_owned();
    rest(a) == rest(b)
}

/// Both schemes of a peer URL when the member has certificates to dial TLS peers: while the
/// cluster moves between plaintext and TLS, each member listens in one or the other.
fn peer_urls_to_ask(url: &str, tls: bool) -> Vec<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r).trim_end_matches('/');
    if tls { vec![format!("https://{rest}"), format!("http://{rest}")] } else { vec![url.to_owned()] }
}

/// Asks every other member in `ETCD_INITIAL_CLUSTER` for the membership; every answer counts, so a
/// member that any of them saw run is refused.
pub async fn membership(
    initial_cluster: &str,
    member: &str,
    peer_tls: Option<&std::path::Path>,
) -> Result<Option<Vec<PeerMember>>, String> {
    // reqwest's TLS is built with the client (even for plain peer URLs) and needs a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut http =
        reqwest::Client::builder().connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(3));
    if let Some(dir) = peer_tls {
        // Only the cluster's peer CA is trusted, and this member's peer certificate is presented:
        // members require one on the peer port.
        let read =
            |key: &str| std::fs::read(dir.join(key)).map_err(|e| format!("{}: {e}", dir.join(key).display()));
        let ca = reqwest::Certificate::from_pem(&read("ca.crt")?).map_err(|e| format!("ca.crt: {e}"))?;
        let identity = reqwest::Identity::from_pem(&[read("tls.crt")?, read("tls.key")?].concat())
            .map_err(|e| format!("tls.crt/tls.key: {e}"))?;
        // HTTP/1.1: etcd 3.4 hands HTTP/2 connections on a TLS peer port to its gRPC server,
        // which then fails the (already finished) TLS handshake.
        http = http.tls_certs_only([ca]).identity(identity).http1_only();
    }
    let http = http.build().map_err(|e| format!("HTTP client: {e}"))?;
    let mut asks = tokio::task::JoinSet::new();
    for (name, url) in initial_cluster.split(',').filter_map(|e| e.split_once('=')) {
        if name == member {
            continue;
        }
        for url in peer_urls_to_ask(url, peer_tls.is_some()) {
            let (http, url) = (http.clone(), format!("{url}/members"));
            asks.spawn(async move {
                let body = http.get(&url).send().await.and_then(|r| r.error_for_status())?.bytes().await?;
                Ok::<_, reqwest::Error>(serde_json::from_slice::<Vec<PeerMember>>(&body).ok())
            });
        }
    }
    let mut answered: Option<Vec<PeerMember>> = None;
    while let Some(joined) = asks.join_next().await {
        match joined {
            Ok(Ok(Some(list))) => answered.get_or_insert_with(Vec::new).extend(list),
            // Why a member did not answer is what an operator needs when none does.
            Ok(Err(e)) => tracing::debug!(error = %e, "a member did not answer"),
            Ok(Ok(None)) | Err(_) => {}
        }
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://demo-1.demo.prod.svc.cluster.local:2380";

    fn member(name: &str, url: &str, client: bool) -> PeerMember {
        PeerMember {
            name: name.into(),
            peer_urls: vec![url.into()],
            client_urls: if client { vec![url.replace("2380", "2379")] } else { vec![] },
            is_learner: false,
        }
    }

    #[test]
    fn parses_what_etcd_serves() {
        let body = r#"[{"id":2343026294211479585,"peerURLs":["http://a:2380"],"name":"a","clientURLs":["http://a:2379"]},
                      {"id":1,"peerURLs":["http://b:2380"],"isLearner":true}]"#;
        let list: Vec<PeerMember> = serde_json::from_str(body).unwrap();
        assert_eq!(list[0], member("a", "http://a:2380", true));
        assert!(list[1].is_learner && list[1].name.is_empty() && list[1].client_urls.is_empty());
    }

    #[test]
    fn nobody_answering_starts_a_bootstrap_but_holds_back_a_formed_cluster() {
        assert!(matches!(decide("demo-1", URL, "new", None), Verdict::Start(_)));
        let Verdict::Wait(why) = decide("demo-1", URL, "existing", None) else { panic!() };
        assert!(why.contains("no other member answers"), "{why}");
    }

    #[test]
    fn a_member_that_ran_before_is_refused_even_if_one_answer_is_stale() {
        let ran = [member("demo-1", URL, true)];
        let Verdict::Refuse(why) = decide("demo-1", URL, "existing", Some(&ran)) else { panic!() };
        assert!(why.contains("its data is lost") && why.contains("replaced"), "{why}");
        // The bootstrap state does not matter once a member answered.
        assert!(matches!(decide("demo-1", URL, "new", Some(&ran)), Verdict::Refuse(_)));
        let mixed = [member("", URL, false), member("demo-1", URL, true)];
        assert!(matches!(decide("demo-1", URL, "existing", Some(&mixed)), Verdict::Refuse(_)));
    }

    #[test]
    fn an_added_member_or_a_late_bootstrap_member_starts() {
        let learner =
            [PeerMember { is_learner: true, ..member("", URL, false) }, member("demo-0", "http://x", true)];
        let Verdict::Start(why) = decide("demo-1", URL, "existing", Some(&learner)) else { panic!() };
        assert!(why.contains("a learner"), "{why}");
        // Bootstrap members are named from the start, and publish client URLs when they first run.
        let late = [member("demo-1", URL, false)];
        assert!(matches!(decide("demo-1", URL, "new", Some(&late)), Verdict::Start(_)));
    }

    #[test]
    fn a_member_not_yet_added_waits() {
        let others = [member("demo-0", "http://x", true)];
        let Verdict::Wait(why) = decide("demo-1", URL, "existing", Some(&others)) else { panic!() };
        assert!(why.contains("not a member"), "{why}");
    }

    #[test]
    fn a_member_is_found_in_the_membership_whatever_the_scheme_of_its_peer_url() {
        // Moving to TLS: its peer URL became https before it restarted and lost its data.
        let ran = [member("demo-1", &URL.replace("http:", "https:"), true)];
        assert!(matches!(decide("demo-1", URL, "existing", Some(&ran)), Verdict::Refuse(_)));
        assert_eq!(peer_urls_to_ask(URL, false), vec![URL.to_owned()]);
        assert_eq!(
            peer_urls_to_ask(URL, true),
            vec![URL.replace("http:", "https:"), URL.to_owned()],
            "a member with certificates asks both"
        );
    }
}
