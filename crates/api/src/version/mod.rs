//! etcd versions: parsing, the safety rules about which may run, and every
//! fact the operator needs about what a version offers (one table: probes,
//! tools and listeners ask here), with the upgrade steps in [`upgrade`].

use std::fmt;

pub mod upgrade;

/// The oldest etcd minor supported: learners (safe scale up) need 3.4.
pub const MIN_SUPPORTED: (u64, u64) = (3, 4);

/// The newest etcd minor this operator knows (its flags, probes, tools and upgrade step).
pub const NEWEST_KNOWN: (u64, u64) = (3, 6);

/// Patterns of the CRD `version` field: `3.<minor>.<patch>`.
pub const VERSION_PATTERN: &str = r"^3\.(4|5|6)\.(0|[1-9][0-9]*)$";

/// A parsed etcd server version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EtcdVersion {
    /// Major version (always 3).
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
}

/// Why a version string cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    /// Not of the form `3.<minor>.<patch>`.
    #[error("must be of the form 3.<minor>.<patch> (for example 3.5.17), got {0:?}")]
    Malformed(String),
    /// Older than the oldest supported minor.
    #[error("etcd {0} is not supported: the minimum is 3.4 (learner members are required)")]
    TooOld(EtcdVersion),
    /// Newer than any minor this operator knows.
    #[error("etcd {0} is not known to this operator: it runs 3.4 to 3.6")]
    Unknown(EtcdVersion),
    /// A release known to lose committed writes after a crash.
    #[error("etcd {0} can lose committed writes after a crash (fixed in 3.5.3); use 3.5.6 or later")]
    DataLoss(EtcdVersion),
}

impl EtcdVersion {
    /// Parses `3.5.17` (a leading `v` is accepted).
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let trimmed = s.strip_prefix('v').unwrap_or(s);
        let v = semver::Version::parse(trimmed).map_err(|_| VersionError::Malformed(s.to_owned()))?;
        if !v.pre.is_empty() || !v.build.is_empty() {
            return Err(VersionError::Malformed(s.to_owned()));
        }
        Ok(Self { major: v.major, minor: v.minor, patch: v.patch })
    }

    /// Parses and applies the safety rules: 3.4 or newer, never 3.5.0–3.5.2.
    pub fn parse_runnable(s: &str) -> Result<Self, VersionError> {
        let v = Self::parse(s)?;
        if v.major != 3 || (v.major, v.minor) < MIN_SUPPORTED {
            return Err(VersionError::TooOld(v));
        }
        if (v.major, v.minor) > NEWEST_KNOWN {
            return Err(VersionError::Unknown(v));
        }
        if v.is_data_loss_release() {
            return Err(VersionError::DataLoss(v));
        }
        Ok(v)
    }

    /// etcd 3.5.0–3.5.2 can lose committed writes after a crash.
    pub fn is_data_loss_release(&self) -> bool {
        self.major == 3 && self.minor == 5 && self.patch <= 2
    }

    /// Whether one port serves plaintext and TLS side by side. Older releases accept both schemes
    /// on one port but may hand plain gRPC to the TLS server, a race at start (etcd-io/etcd#15495,
    /// fixed in 3.4.25 and 3.5.8): 3.4.23 always loses it here, 3.5.1 now and then.
    pub fn serves_both_schemes_on_one_port(&self) -> bool {
        match (self.major, self.minor) {
            (3, 4) => self.patch >= 25,
            (3, 5) => self.patch >= 8,
            (major, minor) => (major, minor) > (3, 5),
        }
    }

    /// `/livez` and `/readyz` on the metrics port (3.5.11+).
    pub fn has_livez_and_readyz(&self) -> bool {
        *self >= Self { major: 3, minor: 5, patch: 11 }
    }

    /// `/health?serializable=true`, the local member alone (3.5.3+); 3.4 has no local health check.
    pub fn has_serializable_health(&self) -> bool {
        *self >= Self { major: 3, minor: 5, patch: 3 }
    }

    /// Snapshots are restored with `etcdutl` (3.5+; 3.6 dropped `etcdctl snapshot restore`), not
    /// `etcdctl` (3.4).
    pub fn restores_with_etcdutl(&self) -> bool {
        (self.major, self.minor) >= (3, 5)
    }

    /// etcd 3.6 refuses to start on a v2 store with content other than the membership (written
    /// through the v2 API under `--enable-v2`); etcd's upgrade guide checks for it with
    /// `etcdutl check v2store` before a member leaves 3.5.
    pub fn refuses_v2_custom_content(&self) -> bool {
        (self.major, self.minor) >= (3, 6)
    }

    /// Below the production minimums (3.4.22+ / 3.5.6+), runnable but warned about.
    pub fn below_production_minimum(&self) -> bool {
        match (self.major, self.minor) {
            (3, 4) => self.patch < 22,
            (3, 5) => self.patch < 6,
            _ => false,
        }
    }
}

impl fmt::Display for EtcdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let a = EtcdVersion::parse("3.5.17").unwrap();
        let b = EtcdVersion::parse("v3.4.23").unwrap();
        assert!(b < a);
        assert_eq!(a.to_string(), "3.5.17");
    }

    #[test]
    fn refuses_data_loss_releases() {
        for v in ["3.5.0", "3.5.1", "3.5.2"] {
            assert!(matches!(EtcdVersion::parse_runnable(v), Err(VersionError::DataLoss(_))), "{v}");
        }
        assert!(EtcdVersion::parse_runnable("3.5.3").is_ok());
    }

    #[test]
    fn refuses_versions_newer_than_it_knows() {
        assert!(EtcdVersion::parse_runnable("3.6.5").is_ok());
        let unknown = EtcdVersion::parse_runnable("3.7.0").unwrap_err();
        assert_eq!(unknown.to_string(), "etcd 3.7.0 is not known to this operator: it runs 3.4 to 3.6");
    }

    #[test]
    fn refuses_old_and_malformed() {
        assert!(matches!(EtcdVersion::parse_runnable("3.3.27"), Err(VersionError::TooOld(_))));
        assert!(matches!(EtcdVersion::parse_runnable("latest"), Err(VersionError::Malformed(_))));
        assert!(matches!(EtcdVersion::parse_runnable("3.5.17-rc.0"), Err(VersionError::Malformed(_))));
    }

    #[test]
    fn production_minimums() {
        assert!(EtcdVersion::parse("3.4.21").unwrap().below_production_minimum());
        assert!(!EtcdVersion::parse("3.4.22").unwrap().below_production_minimum());
        assert!(EtcdVersion::parse("3.5.5").unwrap().below_production_minimum());
        assert!(!EtcdVersion::parse("3.6.0").unwrap().below_production_minimum());
    }

    #[test]
    fn both_schemes_share_a_port_from_the_releases_that_fixed_the_race() {
        let both = |v: &str| EtcdVersion::parse(v).unwrap().serves_both_schemes_on_one_port();
        assert!(!both("3.4.23") && both("3.4.25"));
        assert!(!both("3.5.7") && both("3.5.8") && both("3.5.17"));
        assert!(both("3.6.0"));
    }
}
