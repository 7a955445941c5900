//! Pure decisions about the API's serving certificate: the names it carries and when it is
//! renewed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};

/// Shortest serving certificate lifetime taken: renewal runs at two thirds of it, and a
/// certificate must outlive the slowest handshake.
pub const MIN_VALIDITY: chrono::Duration = chrono::Duration::seconds(3);

/// Who the serving certificate names: the Service in front of the cluster-service, and
/// whatever else callers dial (flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingNames {
    /// The Service's name.
    pub service: String,
    /// The cluster-service's namespace.
    pub namespace: String,
    /// The cluster DNS domain.
    pub cluster_domain: String,
    /// Further DNS names or IP addresses.
    pub extra: Vec<String>,
}

impl ServingNames {
    /// DNS names and IP addresses of the certificate: every way a pod names the Service, the
    /// extras, and loopback (for a port-forward or a sidecar).
    pub fn sans(&self) -> (Vec<String>, Vec<IpAddr>) {
        let (svc, ns, domain) = (&self.service, &self.namespace, &self.cluster_domain);
        let mut dns = vec![
            svc.clone(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.{domain}"),
        ];
        dns.push("localhost".into());
        let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
        for extra in &self.extra {
            match extra.parse::<IpAddr>() {
                Ok(ip) if !ips.contains(&ip) => ips.push(ip),
                Ok(_) => {}
                Err(_) if !dns.contains(extra) => dns.push(extra.clone()),
                Err(_) => {}
            }
        }
        (dns, ips)
    }
}

/// When a certificate valid from `not_before` to `not_after` is replaced: at two thirds of its
/// life, so a failing renewal has a third of it to succeed.
pub fn renew_at(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> DateTime<Utc> {
    not_before + (not_after - not_before) * 2 / 3
}

/// Refuses a lifetime too short to serve, naming the flag.
pub fn check_validity(validity: chrono::Duration) -> Result<(), String> {
    if validity < MIN_VALIDITY {
        return Err(format!("--tls-serving-validity must be at least {}s", MIN_VALIDITY.num_seconds()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(extra: &[&str]) -> ServingNames {
        ServingNames {
            service: "etcd-operator-cluster-service".into(),
            namespace: "ops".into(),
            cluster_domain: "cluster.local".into(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_certificate_names_every_form_of_the_service_loopback_and_the_extras_once() {
        let (dns, ips) = names(&["10.0.0.7", "grpc.example.com", "127.0.0.1", "localhost"]).sans();
        for want in [
            "etcd-operator-cluster-service",
            "etcd-operator-cluster-service.ops",
            "etcd-operator-cluster-service.ops.svc",
            "etcd-operator-cluster-service.ops.svc.cluster.local",
            "localhost",
            "grpc.example.com",
        ] {
            assert_eq!(dns.iter().filter(|d| *d == want).count(), 1, "{want} in {dns:?}");
        }
        let want: Vec<IpAddr> = ["127.0.0.1", "::1", "10.0.0.7"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(ips, want);
    }

    #[test]
    fn renewal_comes_at_two_thirds_of_the_lifetime() {
        let start = DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z").unwrap().to_utc();
        assert_eq!(renew_at(start, start + chrono::Duration::days(30)), start + chrono::Duration::days(20));
        assert_eq!(
            renew_at(start, start + chrono::Duration::seconds(6)),
            start + chrono::Duration::seconds(4)
        );
        assert!(check_validity(chrono::Duration::seconds(2)).unwrap_err().contains("--tls-serving-validity"));
        assert!(check_validity(chrono::Duration::days(30)).is_ok());
    }
}
