//! `EtcdCluster.status.transport`: whether the members' client and peer ports
//! speak TLS, and a move between plaintext and TLS in progress.
//!
//! A live cluster cannot switch at once: a member's peer URL (in etcd's
//! membership) and its listener must agree, and etcd 3.4 cannot serve plain
//! gRPC and TLS on one port. So the members move one at a time, and every
//! member can dial both kinds of peer while they do:
//!
//! - to TLS: `MountingCertificates` (every member gets the certificates, still
//!   plaintext), then `EnablingTls` (each member's peer URL becomes `https`,
//!   then it restarts listening with TLS);
//! - to plaintext: `DisablingTls` (each member's peer URL becomes `http`, then
//!   it restarts listening in plaintext, still able to dial TLS peers), then
//!   `UnmountingCertificates`.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::{EtcdCluster, TlsSpec};

/// How the members' ports speak, as the security service recorded it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransportStatus {
    /// The TLS settings the members run with (absent: plaintext); during a move, those of the move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// A move between plaintext and TLS in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving: Option<TransportMove>,
}

/// A move between plaintext and TLS.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransportMove {
    /// The phase it is in.
    pub phase: TransportPhase,
    /// When it started (RFC 3339).
    pub started_at: String,
}

/// The phases of a move; each restarts every member once, one at a time.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum TransportPhase {
    /// Towards TLS: every member gets the certificates and can dial TLS peers; all still plaintext.
    #[default]
    MountingCertificates,
    /// Towards TLS: one member at a time, its peer URL becomes `https` and it restarts with TLS.
    EnablingTls,
    /// Towards plaintext: one member at a time, its peer URL becomes `http` and it restarts in
    /// plaintext (still able to dial members that speak TLS).
    DisablingTls,
    /// Towards plaintext: every member restarts without the certificates.
    UnmountingCertificates,
}

impl TransportPhase {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MountingCertificates => "MountingCertificates",
            Self::EnablingTls => "EnablingTls",
            Self::DisablingTls => "DisablingTls",
            Self::UnmountingCertificates => "UnmountingCertificates",
        }
    }

    /// Whether the move goes to TLS.
    pub fn to_tls(self) -> bool {
        matches!(self, Self::MountingCertificates | Self::EnablingTls)
    }
}

/// What the members' pod template runs: whether the client and peer ports listen with TLS, and
/// the TLS settings whose certificates are mounted (also when they do not listen with TLS, so
/// they can dial members that do).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemberTransport<'a> {
    /// The client and peer ports speak TLS.
    pub listen_tls: bool,
    /// The certificates mounted, and whose settings they follow.
    pub certificates: Option<&'a TlsSpec>,
}

impl MemberTransport<'_> {
    /// The pod template's record of it, so a finished phase can be told from one whose pods still
    /// run the previous template.
    pub fn as_str(&self) -> &'static str {
        match (self.listen_tls, self.certificates.is_some()) {
            (true, _) => "tls",
            (false, true) => "plaintext-with-certificates",
            (false, false) => "plaintext",
        }
    }
}

impl EtcdCluster {
    /// How the members run now, from the record in status: a spec.tls added or removed changes
    /// nothing until the security service starts the move. Unrecorded (a cluster not yet seen
    /// by this version), spec.tls is what the members run: it could not change before.
    pub fn member_transport(&self) -> MemberTransport<'_> {
        let spec = self.spec.tls.as_ref();
        let Some(recorded) = self.status.as_ref().and_then(|s| s.transport.as_ref()) else {
            return MemberTransport { listen_tls: spec.is_some(), certificates: spec };
        };
        let moving = recorded.tls.as_ref();
        match recorded.moving.as_ref().map(|m| m.phase) {
            // Settings that may change in place (clientCertAuth, lifetimes) come from the spec.
            None => match (spec, moving) {
                (Some(spec), Some(_)) => MemberTransport { listen_tls: true, certificates: Some(spec) },
                (None, Some(recorded)) => MemberTransport { listen_tls: true, certificates: Some(recorded) },
                (_, None) => MemberTransport { listen_tls: false, certificates: None },
            },
            Some(TransportPhase::MountingCertificates | TransportPhase::DisablingTls) => {
                MemberTransport { listen_tls: false, certificates: moving }
            }
            Some(TransportPhase::EnablingTls) => MemberTransport { listen_tls: true, certificates: moving },
            Some(TransportPhase::UnmountingCertificates) => {
                MemberTransport { listen_tls: false, certificates: None }
            }
        }
    }

    /// The TLS settings whose certificates must exist now: those the members mount, or spec.tls
    /// about to be turned on (its certificates are issued before any member mounts them).
    pub fn tls_in_use(&self) -> Option<&TlsSpec> {
        self.member_transport().certificates.or(self.spec.tls.as_ref())
    }

    /// Whether every member speaks TLS and no move is under way (what etcd auth and a CA
    /// rotation need to start).
    pub fn members_speak_tls(&self) -> bool {
        self.transport_move().is_none() && self.member_transport().listen_tls
    }

    /// The move between plaintext and TLS in progress, if any.
    pub fn transport_move(&self) -> Option<&TransportMove> {
        self.status.as_ref().and_then(|s| s.transport.as_ref()).and_then(|t| t.moving.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{EtcdClusterSpec, EtcdClusterStatus, tls::OperatorManagedTls};

    fn tls() -> TlsSpec {
        TlsSpec {
            operator_managed: Some(OperatorManagedTls::default()),
            provided: None,
            client_cert_auth: true,
        }
    }

    fn cluster(spec_tls: bool, recorded: Option<(bool, Option<TransportPhase>)>) -> EtcdCluster {
        let mut spec: EtcdClusterSpec = serde_json::from_str(r#"{"size":3,"version":"3.5.17"}"#).unwrap();
        spec.tls = spec_tls.then(tls);
        let mut c = EtcdCluster::new("demo", spec);
        c.status = recorded.map(|(tls_recorded, phase)| EtcdClusterStatus {
            transport: Some(TransportStatus {
                tls: tls_recorded.then(tls),
                moving: phase.map(|phase| TransportMove { phase, started_at: "t".into() }),
            }),
            ..Default::default()
        });
        c
    }

    #[test]
    fn unrecorded_clusters_run_their_spec() {
        assert_eq!(cluster(true, None).member_transport().as_str(), "tls");
        assert_eq!(cluster(false, None).member_transport().as_str(), "plaintext");
    }

    #[test]
    fn a_spec_change_waits_for_the_move_and_each_phase_has_its_template() {
        // Added but not started: still plaintext, and its certificates are issued already.
        let pending = cluster(true, Some((false, None)));
        assert_eq!(pending.member_transport().as_str(), "plaintext");
        assert!(pending.tls_in_use().is_some());
        // Removed but not started: still TLS, with the recorded settings.
        assert_eq!(cluster(false, Some((true, None))).member_transport().as_str(), "tls");
        let phase = |spec, p| cluster(spec, Some((true, Some(p)))).member_transport().as_str();
        assert_eq!(phase(true, TransportPhase::MountingCertificates), "plaintext-with-certificates");
        assert_eq!(phase(true, TransportPhase::EnablingTls), "tls");
        assert_eq!(phase(false, TransportPhase::DisablingTls), "plaintext-with-certificates");
        assert_eq!(phase(false, TransportPhase::UnmountingCertificates), "plaintext");
        let done = cluster(false, Some((false, None)));
        assert_eq!(done.member_transport().as_str(), "plaintext");
        assert!(done.tls_in_use().is_none());
    }
}
