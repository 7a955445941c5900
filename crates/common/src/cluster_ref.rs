//! A reference to one EtcdCluster, checked to be a valid Kubernetes name.

use std::fmt;

use crate::Violations;

/// Namespace and name of an EtcdCluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Whether `s` is an RFC 1123 DNS label (lowercase alphanumerics and '-', 1–63 characters).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl ClusterRef {
    /// Checks both parts; `prefix` is the field path of the reference (`cluster`).
    ///
    /// Cluster names are limited to 52 characters so that member pod names
    /// and their StatefulSet revision labels stay within Kubernetes limits.
    pub fn parse(namespace: &str, name: &str, prefix: &str) -> Result<Self, Violations> {
        let mut v = Violations::default();
        v.check(
            is_dns_label(namespace),
            format!("{prefix}.namespace"),
            "must be a DNS label: 1-63 lowercase letters, digits or '-', starting and ending alphanumeric",
        );
        v.check(
            is_dns_label(name) && name.len() <= 52,
            format!("{prefix}.name"),
            "must be a DNS label of at most 52 characters: lowercase letters, digits or '-', starting and ending alphanumeric",
        );
        v.into_result().map(|()| Self { namespace: namespace.into(), name: name.into() })
    }
}

impl fmt::Display for ClusterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels_and_names_every_bad_field() {
        assert!(ClusterRef::parse("prod", "main-1", "cluster").is_ok());
        let err = ClusterRef::parse("", "Main_1", "cluster").unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["cluster.namespace", "cluster.name"]);
        assert!(ClusterRef::parse("prod", &"a".repeat(53), "cluster").is_err());
        assert!(!is_dns_label("-a") && !is_dns_label("a-") && is_dns_label("a-b"));
    }
}
