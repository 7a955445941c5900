//! Moving a live cluster between plaintext and TLS, pure (the phases are
//! described with `status.transport` in the API crate).
//!
//! The record in status is the whole state: the pod template follows the
//! phase recorded, the roll restarts the members one at a time onto it (and
//! sets each member's peer URL to the scheme it will listen with just before
//! it restarts), and a phase ends only when every pod runs its template and
//! every member's peer URL is in the scheme that template listens with. A
//! move is started only when nothing else changes the members (a scaling
//! step, a replacement, a CA rotation, a restore) and the cluster runs, and
//! a move towards TLS only once its certificates are usable. A spec that
//! turns back mid-way reverses the move where the members can (same
//! certificates), and otherwise finishes it first.

use etcd_operator_api::{
    EtcdCluster,
    cluster::{OperationType, RestorePhase, TlsSpec, TransportMove, TransportPhase, TransportStatus},
};

/// What the next move step decides from.
#[derive(Clone, Debug)]
pub struct MoveInputs<'a> {
    /// spec.tls.
    pub spec: Option<&'a TlsSpec>,
    /// `status.transport` (`None`: not recorded yet).
    pub recorded: Option<&'a TransportStatus>,
    /// Every member pod runs the template of the recorded phase and is ready.
    pub rolled: bool,
    /// Every member's peer URL is in the scheme the template of the recorded phase listens with.
    pub peers_match: bool,
    /// spec.tls's certificate Secrets are all usable (and, provided, their CAs recorded).
    pub certificates_usable: bool,
    /// What keeps a move from starting now (another operation, a stopped cluster...).
    pub blocked: Option<String>,
    /// Now, RFC 3339.
    pub now: &'a str,
}

/// The next step of a move.
#[derive(Clone, Debug, PartialEq)]
pub enum MoveStep {
    /// Nothing to do; why.
    Nothing(String),
    /// Record this (a start, a phase, the end, or settings changed in place); an event's reason
    /// and note say what it means.
    Record { transport: TransportStatus, reason: &'static str, note: String },
    /// Not now; why.
    Wait(String),
}

/// Decides the next step.
pub fn next_move_step(i: &MoveInputs<'_>) -> MoveStep {
    let Some(recorded) = i.recorded else {
        // First seen by this version: what the spec says is what the members run.
        let transport = TransportStatus { tls: i.spec.cloned(), moving: None };
        return MoveStep::Record { transport, reason: "", note: String::new() };
    };
    match recorded.moving.as_ref() {
        None => idle(i, recorded),
        Some(m) => moving(i, recorded, m),
    }
}

fn idle(i: &MoveInputs<'_>, recorded: &TransportStatus) -> MoveStep {
    match (i.spec, recorded.tls.as_ref()) {
        // Settings that change in place (clientCertAuth, lifetimes) are kept current, so a
        // later move towards plaintext mounts what the members run.
        (Some(spec), Some(was)) if spec != was => MoveStep::Record {
            transport: TransportStatus { tls: Some(spec.clone()), moving: None },
            reason: "",
            note: String::new(),
        },
        (Some(_), Some(_)) => MoveStep::Nothing("the members speak TLS, as spec.tls asks".into()),
        (None, None) => MoveStep::Nothing("the members speak plaintext, as the spec asks".into()),
        (Some(spec), None) => {
            if let Some(why) = &i.blocked {
                return MoveStep::Wait(format!("spec.tls was added; the move to TLS starts once {why}"));
            }
            if !i.certificates_usable {
                return MoveStep::Wait(
                    "spec.tls was added; the move to TLS starts once its certificates are usable (see the \
                     CertificatesReady condition)"
                        .into(),
                );
            }
            start(i, spec.clone(), TransportPhase::MountingCertificates)
        }
        (None, Some(was)) => match &i.blocked {
            Some(why) => {
                MoveStep::Wait(format!("spec.tls was removed; the move to plaintext starts once {why}"))
            }
            None => start(i, was.clone(), TransportPhase::DisablingTls),
        },
    }
}

fn start(i: &MoveInputs<'_>, tls: TlsSpec, phase: TransportPhase) -> MoveStep {
    let transport = TransportStatus {
        tls: Some(tls),
        moving: Some(TransportMove { phase, started_at: i.now.to_owned() }),
    };
    let note = if phase.to_tls() {
        "moving to TLS: every member restarts, one at a time, with the certificates mounted; then each one's \
         peer URL becomes https and it restarts speaking TLS"
    } else {
        "moving to plaintext: each member's peer URL becomes http and it restarts speaking plaintext, one at a \
         time; then every member restarts without the certificates"
    };
    MoveStep::Record { transport, reason: phase.as_str(), note: note.into() }
}

fn moving(i: &MoveInputs<'_>, recorded: &TransportStatus, m: &TransportMove) -> MoveStep {
    let phase = m.phase;
    let with = |tls: Option<TlsSpec>, phase: Option<TransportPhase>| TransportStatus {
        tls,
        moving: phase.map(|phase| TransportMove { phase, started_at: m.started_at.clone() }),
    };
    if phase.to_tls() != i.spec.is_some()
        && let Some((to, tls)) = reverse(phase, i.spec, recorded.tls.as_ref(), i.certificates_usable)
    {
        let note = format!("the spec turned back: {} instead of {}", to.as_str(), phase.as_str());
        return MoveStep::Record { transport: with(tls, Some(to)), reason: to.as_str(), note };
    }
    if !i.rolled {
        return MoveStep::Wait(format!(
            "{}: members restart one at a time onto the phase's pod template",
            phase.as_str()
        ));
    }
    if !i.peers_match {
        return MoveStep::Wait(format!("{}: members' peer URLs are being updated", phase.as_str()));
    }
    let tls = recorded.tls.clone();
    match phase {
        TransportPhase::MountingCertificates => MoveStep::Record {
            transport: with(tls, Some(TransportPhase::EnablingTls)),
            reason: TransportPhase::EnablingTls.as_str(),
            note: "every member can dial TLS peers; now each one moves to TLS, one at a time".into(),
        },
        TransportPhase::EnablingTls => MoveStep::Record {
            transport: with(tls, None),
            reason: "TlsEnabled",
            note: "every member speaks TLS on its client and peer ports".into(),
        },
        TransportPhase::DisablingTls => MoveStep::Record {
            transport: with(tls, Some(TransportPhase::UnmountingCertificates)),
            reason: TransportPhase::UnmountingCertificates.as_str(),
            note: "every member speaks plaintext; now they restart without the certificates".into(),
        },
        TransportPhase::UnmountingCertificates => MoveStep::Record {
            transport: with(None, None),
            reason: "TlsDisabled",
            note: "every member speaks plaintext on its client and peer ports".into(),
        },
    }
}

/// Where a move turns back to, and with which settings, when the spec turned back. Members that
/// listen in plaintext with certificates mounted can go either way with the same certificates;
/// other certificates are mounted only while every member speaks plaintext.
fn reverse(
    phase: TransportPhase,
    spec: Option<&TlsSpec>,
    recorded: Option<&TlsSpec>,
    usable: bool,
) -> Option<(TransportPhase, Option<TlsSpec>)> {
    let same_secrets = |a: &TlsSpec, b: &TlsSpec| {
        a.provided == b.provided && a.operator_managed.is_some() == b.operator_managed.is_some()
    };
    match (phase, spec) {
        (TransportPhase::MountingCertificates, None) => {
            Some((TransportPhase::UnmountingCertificates, recorded.cloned()))
        }
        (TransportPhase::EnablingTls, None) => Some((TransportPhase::DisablingTls, recorded.cloned())),
        (TransportPhase::DisablingTls, Some(spec)) if recorded.is_some_and(|r| same_secrets(r, spec)) => {
            Some((TransportPhase::EnablingTls, Some(spec.clone())))
        }
        (TransportPhase::UnmountingCertificates, Some(spec)) if usable => {
            Some((TransportPhase::MountingCertificates, Some(spec.clone())))
        }
        _ => None,
    }
}

/// What keeps a move from starting now, from the cluster's record: anything else that changes
/// the members, or a cluster that does not run.
pub fn blocked(cluster: &EtcdCluster) -> Option<String> {
    let status = cluster.status.as_ref();
    if cluster.spec.paused {
        return Some("the cluster is no longer paused".into());
    }
    if !cluster.formed() {
        return Some("the cluster has formed".into());
    }
    if status.is_some_and(|s| s.stopped.is_some()) || cluster.spec.size == 0 {
        return Some("the cluster runs again (it is stopped)".into());
    }
    if let Some(op) =
        status.and_then(|s| s.operation.as_ref()).filter(|op| op.type_ != OperationType::RollingUpdate)
    {
        return Some(format!("the {:?} in progress finishes", op.type_));
    }
    if status.is_some_and(|s| s.current_size != cluster.spec.size) {
        return Some(format!("the cluster has spec.size ({}) members", cluster.spec.size));
    }
    if cluster.certificate_authority().is_some_and(|c| c.rotation.is_some()) {
        return Some("the CA rotation in progress finishes".into());
    }
    if status.and_then(|s| s.restore.as_ref()).is_some_and(|r| r.phase == RestorePhase::Restoring) {
        return Some("the restore in progress finishes".into());
    }
    None
}
