use super::*;
use crate::security::certs::{issue, issue_ca};
use etcd_operator_resource::names::ClusterNames;

fn names() -> ClusterNames {
    ClusterNames::new("prod", "demo", "cluster.local").with_tls(true)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn lifetimes() -> Lifetimes {
    Lifetimes { validity: chrono::Duration::hours(10), renew_before: chrono::Duration::hours(4) }
}

/// A Secret holding a certificate issued at `issued` for ten hours.
fn secret(name: &str, purpose: Purpose, issued: &str) -> SecretView {
    let ca = issue_ca(&names(), at(issued)).unwrap();
    let leaf = issue(&names(), purpose, &ca, at(issued), lifetimes().validity).unwrap();
    let data = BTreeMap::from([
        ("tls.crt".to_owned(), leaf.crt.into_bytes()),
        ("tls.key".to_owned(), leaf.key.into_bytes()),
        ("ca.crt".to_owned(), ca.crt.into_bytes()),
    ]);
    SecretView { name: name.into(), data: Some(data) }
}

/// A CA that can sign (what the Secret's state is when it is usable).
fn ca() -> crate::security::certs::Pair {
    issue_ca(&names(), at("2026-11-30T00:00:00Z")).unwrap()
}

fn missing(name: &str) -> SecretView {
    SecretView { name: name.into(), data: None }
}

#[test]
fn a_new_cluster_gets_a_ca_and_every_certificate() {
    let leaves: Vec<Found> = [Purpose::Client, Purpose::Peer, Purpose::Operator]
        .map(|p| examine(p, &missing(&format!("demo-{}-tls", p.as_str()))))
        .into();
    let got =
        plan(&Err("does not exist".into()), "demo-ca", &leaves, at("2026-11-30T00:00:00Z"), lifetimes());
    assert_eq!(
        got.unwrap(),
        [Issue::Ca, Issue::Leaf(Purpose::Client), Issue::Leaf(Purpose::Peer), Issue::Leaf(Purpose::Operator)]
    );
}

#[test]
fn a_lost_ca_with_certificates_in_use_issues_nothing_and_says_how_to_recover() {
    let leaves =
        vec![examine(Purpose::Peer, &secret("demo-peer-tls", Purpose::Peer, "2026-11-30T00:00:00Z"))];
    let err =
        plan(&Err("does not exist".into()), "demo-ca", &leaves, at("2026-11-30T01:00:00Z"), lifetimes())
            .unwrap_err();
    let (ok, reason, message) = condition(&leaves, Some(lifetimes()), Some(&err), at("2026-11-30T01:00:00Z"));
    assert!(!ok);
    assert_eq!(reason, "CALost");
    assert!(message.contains("Restore demo-ca"), "{message}");
}

#[test]
fn certificates_renew_at_renew_before_and_not_earlier() {
    let leaves = vec![examine(Purpose::Client, &secret("c", Purpose::Client, "2026-11-30T00:00:00Z"))];
    let fresh = plan(&Ok(ca()), "demo-ca", &leaves, at("2026-11-30T05:59:00Z"), lifetimes()).unwrap();
    assert_eq!(fresh, []);
    let due = plan(&Ok(ca()), "demo-ca", &leaves, at("2026-11-30T06:00:00Z"), lifetimes()).unwrap();
    assert_eq!(due, [Issue::Leaf(Purpose::Client)]);
    assert_eq!(leaves[0].status(Some(lifetimes())).renews_at.as_deref(), Some("2026-11-30T06:00:00+00:00"));
}

#[test]
fn the_condition_names_the_secret_and_the_missing_key() {
    let mut s = secret("mine", Purpose::Client, "2026-11-30T00:00:00Z");
    s.data.as_mut().unwrap().remove("ca.crt");
    let found = vec![examine(Purpose::Client, &s)];
    let (ok, reason, message) = condition(&found, None, None, at("2026-11-30T01:00:00Z"));
    assert!(!ok);
    assert_eq!(reason, "SecretKeyMissing");
    assert_eq!(
        message,
        "Secret mine (client certificate) has no key ca.crt; it needs tls.crt, tls.key and ca.crt"
    );
    let (_, reason, message) =
        condition(&[examine(Purpose::Peer, &missing("p"))], None, None, at("2026-11-30T01:00:00Z"));
    assert_eq!((reason, message.as_str()), ("SecretMissing", "Secret p (peer certificate) does not exist"));
}

#[test]
fn a_certificate_from_another_ca_is_named_wrong_ca() {
    let mut s = secret("mine", Purpose::Peer, "2026-11-30T00:00:00Z");
    let other = issue_ca(&names(), at("2026-11-30T00:00:00Z")).unwrap();
    s.data.as_mut().unwrap().insert("ca.crt".into(), other.crt.into_bytes());
    let (ok, reason, message) =
        condition(&[examine(Purpose::Peer, &s)], None, None, at("2026-11-30T01:00:00Z"));
    assert!(!ok);
    assert_eq!(reason, "WrongCA");
    assert!(message.contains("is not signed by the CA in ca.crt"), "{message}");
}

#[test]
fn expiry_is_warned_before_and_reported_after() {
    let found = vec![examine(Purpose::Client, &secret("mine", Purpose::Client, "2026-11-30T00:00:00Z"))];
    // Provided: a third of the ten-hour lifetime.
    assert!(condition(&found, None, None, at("2026-11-30T06:00:00Z")).0);
    let (ok, reason, _) = condition(&found, None, None, at("2026-11-30T07:00:00Z"));
    assert_eq!((ok, reason), (false, "CertificateExpiring"));
    let (ok, reason, message) = condition(&found, None, None, at("2026-11-30T10:00:00Z"));
    assert_eq!((ok, reason), (false, "CertificateExpired"));
    assert!(message.contains("expired at 2026-11-30T10:00:00+00:00"), "{message}");
    // Operator-managed: renewed at four hours to go, so two to go means renewal failed.
    assert!(condition(&found, Some(lifetimes()), None, at("2026-11-30T07:59:00Z")).0);
    assert!(!condition(&found, Some(lifetimes()), None, at("2026-11-30T08:00:00Z")).0);
}

#[test]
fn the_service_repeats_the_admission_rules() {
    let tls: TlsSpec = serde_json::from_value(serde_json::json!({
        "operatorManaged": {"validity": "1h", "renewBefore": "2h"}
    }))
    .unwrap();
    let mut v = Violations::default();
    validate(&tls, &mut v);
    assert!(v.to_string().contains("spec.tls.operatorManaged.renewBefore: must be shorter than"), "{v}");
    let tls: TlsSpec = serde_json::from_value(serde_json::json!({
        "provided": {"clientSecretName": "Bad_Name", "peerSecretName": "p", "operatorSecretName": "o"}
    }))
    .unwrap();
    let mut v = Violations::default();
    validate(&tls, &mut v);
    assert!(v.to_string().contains("spec.tls.provided.clientSecretName: must be a Secret name"), "{v}");
}
