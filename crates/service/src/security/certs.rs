//! Certificates: issuing them (rcgen) and reading them (x509-parser). Pure:
//! the inputs are PEM text and a time, never a server.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use etcd_operator_api::cluster::MAX_SIZE;
use etcd_operator_resource::{names::ClusterNames, templates::tls::Purpose};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

/// Lifetime of an operator-managed CA. Rotating a CA takes a restart of every member (etcd
/// reads its trusted CAs only at start), so it is long.
pub const CA_VALIDITY: chrono::Duration = chrono::Duration::days(10 * 365);

/// The common name of the operator's client certificate (its etcd user once auth is on).
pub const OPERATOR_COMMON_NAME: &str = "etcd-operator";

/// A certificate and its key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Pair {
    /// The certificate.
    pub crt: String,
    /// Its private key.
    pub key: String,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair").field("crt_bytes", &self.crt.len()).field("key", &"<redacted>").finish()
    }
}

/// Issuing failed (rcgen refused the parameters or could not read the CA).
#[derive(Debug, thiserror::Error)]
#[error("issuing a certificate: {0}")]
pub struct IssueError(String);

fn issue_err(e: impl std::fmt::Display) -> IssueError {
    IssueError(e.to_string())
}

fn params(cn: &str, now: DateTime<Utc>, validity: chrono::Duration) -> Result<CertificateParams, IssueError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "etcd-operator");
    p.distinguished_name = dn;
    // A minute of slack for clocks that lag the operator's.
    let at = |t: DateTime<Utc>| time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(issue_err);
    p.not_before = at(now - chrono::Duration::minutes(1))?;
    p.not_after = at(now + validity)?;
    Ok(p)
}

/// A new CA for one cluster.
pub fn issue_ca(names: &ClusterNames, now: DateTime<Utc>) -> Result<Pair, IssueError> {
    issue_named_ca(&format!("etcd-operator CA {}/{}", names.namespace, names.name), now)
}

/// A new CA called `name`, with a fingerprint of its key appended.
pub fn issue_named_ca(name: &str, now: DateTime<Utc>) -> Result<Pair, IssueError> {
    let key = KeyPair::generate().map_err(issue_err)?;
    // Each CA its own name: during a rotation clients trust two CAs of one cluster, and TLS
    // libraries that pick a trust anchor by the issuer's name (rustls) try only one of the same.
    let id = hex::encode(&Sha256::digest(rcgen::PublicKeyData::der_bytes(&key))[..4]);
    let mut p = params(&format!("{name} {id}"), now, CA_VALIDITY)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let crt = p.self_signed(&key).map_err(issue_err)?;
    Ok(Pair { crt: crt.pem(), key: key.serialize_pem() })
}

/// A certificate for `purpose`, signed by the CA.
pub fn issue(
    names: &ClusterNames,
    purpose: Purpose,
    ca: &Pair,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Pair, IssueError> {
    let cn = match purpose {
        Purpose::Operator => OPERATOR_COMMON_NAME.to_owned(),
        Purpose::Client | Purpose::Peer => format!("{}.{}", names.peer_service(), names.namespace),
    };
    let mut p = params(&cn, now, validity)?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = match purpose {
        Purpose::Operator => vec![ExtendedKeyUsagePurpose::ClientAuth],
        // Members dial each other with the peer certificate, and etcd's gRPC gateway dials its own
        // client port with the serving certificate: both need client auth too.
        Purpose::Client | Purpose::Peer => {
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
        }
    };
    if purpose != Purpose::Operator {
        p.subject_alt_names = member_sans(names)?;
    }
    sign(p, ca)
}

/// A serving certificate (server auth only) for `dns` names and `ips`, signed by the CA.
pub fn issue_server(
    cn: &str,
    dns: &[String],
    ips: &[IpAddr],
    ca: &Pair,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Pair, IssueError> {
    let mut p = params(cn, now, validity)?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.subject_alt_names = dns
        .iter()
        .map(|n| n.clone().try_into().map(SanType::DnsName).map_err(issue_err))
        .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<Result<_, _>>()?;
    sign(p, ca)
}

fn sign(p: CertificateParams, ca: &Pair) -> Result<Pair, IssueError> {
    let ca_key = KeyPair::from_pem(&ca.key).map_err(issue_err)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.crt, ca_key).map_err(issue_err)?;
    let key = KeyPair::generate().map_err(issue_err)?;
    let crt = p.signed_by(&key, &issuer).map_err(issue_err)?;
    Ok(Pair { crt: crt.pem(), key: key.serialize_pem() })
}

/// Whether a CA certificate and key can issue certificates.
pub fn ca_usable(ca: &Pair) -> Result<(), IssueError> {
    let key = KeyPair::from_pem(&ca.key).map_err(issue_err)?;
    Issuer::from_ca_cert_pem(&ca.crt, key).map(drop).map_err(issue_err)
}

/// DNS names of every member a cluster can have (so forward lookups of the peer's source IP
/// match, as etcd checks on the peer port), the headless Service's wildcard, the client Service,
/// and loopback.
pub fn member_dns_names(names: &ClusterNames) -> Vec<String> {
    let (svc, ns, domain) = (names.peer_service(), &names.namespace, &names.cluster_domain);
    let client = names.client_service();
    let mut out: Vec<String> = (0..MAX_SIZE).map(|i| names.member_host(&names.member(i))).collect();
    out.extend([
        format!("*.{svc}.{ns}.svc.{domain}"),
        format!("*.{svc}.{ns}.svc"),
        format!("{client}.{ns}.svc.{domain}"),
        format!("{client}.{ns}.svc"),
        format!("{client}.{ns}"),
        client,
        "localhost".to_owned(),
    ]);
    out
}

fn member_sans(names: &ClusterNames) -> Result<Vec<SanType>, IssueError> {
    let mut out = member_dns_names(names)
        .into_iter()
        .map(|n| n.try_into().map(SanType::DnsName).map_err(issue_err))
        .collect::<Result<Vec<_>, _>>()?;
    out.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    Ok(out)
}

/// What a certificate Secret's contents say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Not valid after.
    pub not_after: DateTime<Utc>,
    /// Not valid before.
    pub not_before: DateTime<Utc>,
}

/// Why a certificate cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// `tls.crt` (or `ca.crt`) is not a PEM certificate.
    #[error("{key} is not a PEM X.509 certificate: {reason}")]
    Malformed { key: &'static str, reason: String },
    /// `tls.key` is not a private key, or not the certificate's.
    #[error("tls.key is not the private key of tls.crt")]
    KeyMismatch,
    /// `tls.crt` is not signed by any certificate in `ca.crt`.
    #[error("tls.crt is not signed by the CA in ca.crt (issuer {issuer})")]
    WrongCa { issuer: String },
}

/// Reads and cross-checks a certificate, its key and its CA bundle.
pub fn inspect(crt: &[u8], key: &[u8], ca: &[u8]) -> Result<Facts, Unusable> {
    let malformed = |key: &'static str| move |e: String| Unusable::Malformed { key, reason: e };
    let (_, pem) = x509_parser::pem::parse_x509_pem(crt).map_err(|e| malformed("tls.crt")(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| malformed("tls.crt")(e.to_string()))?;
    let key = std::str::from_utf8(key).ok().and_then(|k| KeyPair::from_pem(k).ok());
    let spki = cert.public_key().subject_public_key.data.as_ref();
    if key.is_none_or(|k| rcgen::PublicKeyData::der_bytes(&k) != spki) {
        return Err(Unusable::KeyMismatch);
    }
    let cas: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(ca).filter_map(Result::ok).collect();
    if cas.is_empty() {
        return Err(malformed("ca.crt")("no certificate found".into()));
    }
    let signed = cas
        .iter()
        .any(|ca| ca.parse_x509().is_ok_and(|ca| cert.verify_signature(Some(ca.public_key())).is_ok()));
    if !signed {
        return Err(Unusable::WrongCa { issuer: cert.issuer().to_string() });
    }
    let at = |t: x509_parser::time::ASN1Time| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default();
    Ok(Facts { not_after: at(cert.validity().not_after), not_before: at(cert.validity().not_before) })
}

/// SHA-256 fingerprints (first 16 hex digits) of the certificates in a PEM bundle, in order.
pub fn fingerprints(bundle: &[u8]) -> Vec<String> {
    x509_parser::pem::Pem::iter_from_buffer(bundle)
        .filter_map(Result::ok)
        .map(|pem| hex::encode(&Sha256::digest(&pem.contents)[..8]))
        .collect()
}

/// The fingerprint of whichever of `cas` (PEM) signed `crt`, if one did.
pub fn signer(crt: &[u8], cas: &[&str]) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(crt).ok()?;
    let cert = pem.parse_x509().ok()?;
    cas.iter().find_map(|ca| {
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.as_bytes()).ok()?;
        let ca_cert = ca_pem.parse_x509().ok()?;
        cert.verify_signature(Some(ca_cert.public_key())).ok()?;
        fingerprints(ca.as_bytes()).into_iter().next()
    })
}

/// Whether the certificate `der` is signed by the CA `ca` (PEM).
pub fn signed_der(der: &[u8], ca: &str) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return false };
    let Ok((_, ca_pem)) = x509_parser::pem::parse_x509_pem(ca.as_bytes()) else { return false };
    ca_pem.parse_x509().is_ok_and(|ca| cert.verify_signature(Some(ca.public_key())).is_ok())
}

/// When the first certificate of a PEM stops being valid.
pub fn not_after(crt: &[u8]) -> Option<DateTime<Utc>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(crt).ok()?;
    let cert = pem.parse_x509().ok()?;
    DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ClusterNames {
        ClusterNames::new("prod", "demo", "cluster.local").with_tls(true)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z").unwrap().to_utc()
    }

    #[test]
    fn issued_certificates_chain_to_their_ca_and_carry_their_dates() {
        let ca = issue_ca(&names(), now()).unwrap();
        let leaf = issue(&names(), Purpose::Peer, &ca, now(), chrono::Duration::hours(2)).unwrap();
        let facts = inspect(leaf.crt.as_bytes(), leaf.key.as_bytes(), ca.crt.as_bytes()).unwrap();
        assert_eq!(facts.not_after, now() + chrono::Duration::hours(2));
        assert_eq!(facts.not_before, now() - chrono::Duration::minutes(1));
        // A bundle with another CA first still verifies (the middle phase of a CA rotation).
        let other = issue_ca(&names(), now()).unwrap();
        let bundle = format!("{}{}", other.crt, ca.crt);
        assert!(inspect(leaf.crt.as_bytes(), leaf.key.as_bytes(), bundle.as_bytes()).is_ok());
    }

    #[test]
    fn fingerprints_name_each_ca_of_a_bundle_and_the_one_that_signed() {
        let (old, new) = (issue_ca(&names(), now()).unwrap(), issue_ca(&names(), now()).unwrap());
        let leaf = issue(&names(), Purpose::Client, &new, now(), chrono::Duration::hours(2)).unwrap();
        let (fo, fnew) = (fingerprints(old.crt.as_bytes()), fingerprints(new.crt.as_bytes()));
        assert_eq!((fo.len(), fnew.len(), fo[0].len()), (1, 1, 16));
        assert_ne!(fo, fnew);
        let both = fingerprints(format!("{}{}", old.crt, new.crt).as_bytes());
        assert_eq!(both, vec![fo[0].clone(), fnew[0].clone()]);
        assert_eq!(signer(leaf.crt.as_bytes(), &[&old.crt, &new.crt]), Some(fnew[0].clone()));
        assert_eq!(signer(leaf.crt.as_bytes(), &[&old.crt]), None);
        assert!(not_after(old.crt.as_bytes()).unwrap() > now() + chrono::Duration::days(3000));
        let der = x509_parser::pem::parse_x509_pem(leaf.crt.as_bytes()).unwrap().1.contents;
        assert!(signed_der(&der, &new.crt) && !signed_der(&der, &old.crt));
    }

    #[test]
    fn a_wrong_ca_a_foreign_key_and_garbage_are_named() {
        let ca = issue_ca(&names(), now()).unwrap();
        let other = issue_ca(&names(), now()).unwrap();
        let leaf = issue(&names(), Purpose::Client, &ca, now(), chrono::Duration::hours(2)).unwrap();
        let wrong = inspect(leaf.crt.as_bytes(), leaf.key.as_bytes(), other.crt.as_bytes()).unwrap_err();
        assert!(matches!(wrong, Unusable::WrongCa { .. }), "{wrong}");
        let foreign = inspect(leaf.crt.as_bytes(), other.key.as_bytes(), ca.crt.as_bytes()).unwrap_err();
        assert_eq!(foreign, Unusable::KeyMismatch);
        let garbage = inspect(b"nope", leaf.key.as_bytes(), ca.crt.as_bytes()).unwrap_err();
        assert!(garbage.to_string().starts_with("tls.crt is not a PEM X.509 certificate"), "{garbage}");
    }

    #[test]
    fn member_certificates_name_every_member_the_services_and_loopback() {
        let dns = member_dns_names(&names());
        for want in [
            "demo-0.demo.prod.svc.cluster.local",
            "demo-8.demo.prod.svc.cluster.local",
            "*.demo.prod.svc.cluster.local",
            "demo-client.prod.svc.cluster.local",
            "demo-client",
            "localhost",
        ] {
            assert!(dns.iter().any(|d| d == want), "{want} missing from {dns:?}");
        }
    }

    #[test]
    fn the_key_is_never_shown() {
        let ca = issue_ca(&names(), now()).unwrap();
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    }
}
