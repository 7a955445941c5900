//! A CA rotation's decisions, pure. etcd reads its trusted CA files only
//! when it starts (etcd-io/etcd#11555), so the CA cannot simply be replaced:
//!
//! 1. `TrustingNewCA`: a new CA is kept beside the old one in the CA Secret,
//!    every certificate Secret's `ca.crt` holds both, and the members restart
//!    one at a time (the pod template names the trusted CAs) to trust both;
//! 2. `IssuingFromNewCA`: the new CA becomes the issuing one and issues every
//!    certificate again; nothing restarts, etcd rereads its key pair on each
//!    new connection, and every member trusts both CAs by now. It ends only
//!    when every member serves the new certificates (mounted Secrets are
//!    updated by the kubelet's next sync, not at once);
//! 3. `DroppingOldCA`: `ca.crt` holds the new CA only, and the members restart
//!    again to stop trusting the old one.
//!
//! The phase in status is the record; the CA Secret follows it. Each step is
//! safe to repeat and every crash point resumes (a new CA written but no
//! phase recorded yet is picked up, not generated again).

use chrono::{DateTime, Utc};
use etcd_operator_api::cluster::{CaRotationPhase, CertificateAuthorityStatus};
use etcd_operator_resource::templates::tls::Purpose;

use std::collections::BTreeMap;

use super::Lifetimes;
use crate::security::{certs, certs::Pair};

/// The CA Secret's keys.
#[derive(Clone, Debug, Default)]
pub struct CaKeys {
    /// The issuing CA (`ca.crt`, `ca.key`).
    pub current: Option<Pair>,
    /// The CA that will issue next (`next.crt`, `next.key`), during `TrustingNewCA`.
    pub next: Option<Pair>,
    /// The CA that issued before (`previous.crt`), still trusted during `IssuingFromNewCA`.
    pub previous: Option<String>,
}

impl CaKeys {
    /// The keys in the CA Secret's data (`None`: no Secret).
    pub fn of(data: Option<&BTreeMap<String, Vec<u8>>>) -> Self {
        let text = |k: &str| data.and_then(|d| d.get(k)).map(|v| String::from_utf8_lossy(v).into_owned());
        let pair = |crt: &str, key: &str| Some(Pair { crt: text(crt)?, key: text(key)? });
        Self {
            current: pair("ca.crt", "ca.key"),
            next: pair("next.crt", "next.key"),
            previous: text("previous.crt"),
        }
    }

    /// The CA certificates it holds (PEM): issuing, next, previous.
    pub fn certificates(&self) -> Vec<&str> {
        [
            self.current.as_ref().map(|p| p.crt.as_str()),
            self.next.as_ref().map(|p| p.crt.as_str()),
            self.previous.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// What every certificate Secret's `ca.crt` holds: the issuing CA, and during a rotation the
    /// other one.
    pub fn bundle(&self) -> String {
        self.certificates().concat()
    }
}

fn fingerprint(pem: Option<&str>) -> Option<String> {
    certs::fingerprints(pem?.as_bytes()).into_iter().next()
}

/// What one certificate Secret trusts and who signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafTrust {
    /// What it is for.
    pub purpose: Purpose,
    /// Fingerprints of the CAs in its `ca.crt`.
    pub trusts: Vec<String>,
    /// Fingerprint of the CA that signed its certificate, among those known.
    pub signed_by: Option<String>,
}

/// What the next rotation step decides from.
pub struct RotationInputs<'a> {
    /// The CA Secret.
    pub ca: &'a CaKeys,
    /// The record in status.
    pub status: Option<&'a CertificateAuthorityStatus>,
    /// Every certificate Secret.
    pub leaves: &'a [LeafTrust],
    /// The members run the pod template that names the trusted CAs recorded, every pod ready.
    pub rolled: bool,
    /// Every member serves, on its client and peer ports, a certificate of the issuing CA (asked
    /// only while the new CA issues).
    pub serving: bool,
    /// A rotation was asked for.
    pub requested: bool,
    /// When the issuing CA expires.
    pub ca_not_after: Option<DateTime<Utc>>,
    /// The leaves' lifetimes.
    pub lifetimes: Lifetimes,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The next step of a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotationStep {
    /// Nothing to do; why.
    Nothing(String),
    /// Generate a new CA and keep it as `next` in the CA Secret (conditional on the Secret as read).
    AddNextCa { reason: String },
    /// Record the phase (`None`: done) and the CAs the members are to trust.
    Record { phase: Option<CaRotationPhase>, trusted: Vec<String>, reason: String },
    /// Rewrite `ca.crt` of these certificate Secrets to the CA Secret's bundle.
    SetBundle(Vec<Purpose>),
    /// Wait: for the members to restart onto the recorded trust, or to serve the new certificates.
    Wait(String),
    /// Make `next` the issuing CA, keeping the old one as `previous`.
    PromoteNext,
    /// Issue these certificates again from the (new) issuing CA.
    Reissue(Vec<Purpose>),
    /// Remove `previous` from the CA Secret.
    DropPrevious,
}

impl RotationStep {
    /// The step's name, in logs and failpoints.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Nothing(_) => "Nothing",
            Self::AddNextCa { .. } => "AddNextCa",
            Self::Record { .. } => "Record",
            Self::SetBundle(_) => "SetBundle",
            Self::Wait(_) => "Wait",
            Self::PromoteNext => "PromoteNext",
            Self::Reissue(_) => "Reissue",
            Self::DropPrevious => "DropPrevious",
        }
    }
}

/// Whether the CA should be rotated without being asked: a certificate issued now would
/// outlive it (counting the renewal margin).
pub fn due(ca_not_after: DateTime<Utc>, lifetimes: Lifetimes, now: DateTime<Utc>) -> bool {
    now + lifetimes.validity + lifetimes.renew_before >= ca_not_after
}

/// Decides the next step of a rotation.
pub fn next_rotation_step(i: &RotationInputs<'_>) -> RotationStep {
    let Some(cur) = fingerprint(i.ca.current.as_ref().map(|p| p.crt.as_str())) else {
        return RotationStep::Nothing("no CA yet".into());
    };
    let rotation = i.status.and_then(|s| s.rotation.as_ref());
    let next = fingerprint(i.ca.next.as_ref().map(|p| p.crt.as_str()));
    let previous = fingerprint(i.ca.previous.as_deref());
    match rotation.map(|r| r.phase) {
        None => start(i, cur, next),
        Some(CaRotationPhase::TrustingNewCA) => trusting(i, cur, next, previous),
        Some(CaRotationPhase::IssuingFromNewCA) => issuing(i, cur),
        Some(CaRotationPhase::DroppingOldCA) => dropping(i, cur, previous),
    }
}

fn start(i: &RotationInputs<'_>, cur: String, next: Option<String>) -> RotationStep {
    if let Some(next) = next {
        // A new CA written before a crash: its phase is recorded now, it is not generated again.
        let reason = "resumed: the CA Secret holds a new CA".to_owned();
        return RotationStep::Record {
            phase: Some(CaRotationPhase::TrustingNewCA),
            trusted: vec![cur, next],
            reason,
        };
    }
    if i.requested {
        return RotationStep::AddNextCa { reason: "requested".into() };
    }
    match i.ca_not_after {
        Some(at) if due(at, i.lifetimes, i.now) => RotationStep::AddNextCa {
            reason: format!("the CA expires at {}, before a certificate issued now would", at.to_rfc3339()),
        },
        _ => RotationStep::Nothing("the CA is not due for rotation".into()),
    }
}

fn trusting(
    i: &RotationInputs<'_>,
    cur: String,
    next: Option<String>,
    previous: Option<String>,
) -> RotationStep {
    match (next, previous) {
        (Some(next), _) => {
            let both = [cur.clone(), next.clone()];
            let stale = stale(i.leaves, &both);
            if !stale.is_empty() {
                return RotationStep::SetBundle(stale);
            }
            if !i.rolled {
                return RotationStep::Wait(
                    "members restart one at a time to trust the old and the new CA".into(),
                );
            }
            RotationStep::PromoteNext
        }
        // Promoted before a crash: the issuing CA is the new one already.
        (None, Some(old)) => RotationStep::Record {
            phase: Some(CaRotationPhase::IssuingFromNewCA),
            trusted: vec![old, cur],
            reason: "every member trusts both CAs".into(),
        },
        // The new CA vanished from the Secret (edited by hand): start the phase again with another.
        (None, None) => RotationStep::AddNextCa { reason: "the new CA is missing from the CA Secret".into() },
    }
}

fn issuing(i: &RotationInputs<'_>, cur: String) -> RotationStep {
    let old: Vec<Purpose> =
        i.leaves.iter().filter(|l| l.signed_by.as_deref() != Some(cur.as_str())).map(|l| l.purpose).collect();
    if !old.is_empty() {
        return RotationStep::Reissue(old);
    }
    // The kubelet updates mounted Secrets on its next sync: until every member serves the new
    // certificates, a client trusting the new CA alone would refuse them.
    if !i.serving {
        return RotationStep::Wait("members still serve certificates of the old CA".into());
    }
    RotationStep::Record {
        phase: Some(CaRotationPhase::DroppingOldCA),
        trusted: vec![cur],
        reason: "the new CA issued every certificate".into(),
    }
}

fn dropping(i: &RotationInputs<'_>, cur: String, previous: Option<String>) -> RotationStep {
    if previous.is_some() {
        return RotationStep::DropPrevious;
    }
    let stale = stale(i.leaves, std::slice::from_ref(&cur));
    if !stale.is_empty() {
        return RotationStep::SetBundle(stale);
    }
    if !i.rolled {
        return RotationStep::Wait("members restart one at a time to stop trusting the old CA".into());
    }
    RotationStep::Record { phase: None, trusted: vec![cur], reason: "done".into() }
}

/// Certificate Secrets whose `ca.crt` does not hold exactly `trusted` (in any order).
fn stale(leaves: &[LeafTrust], trusted: &[String]) -> Vec<Purpose> {
    let mut want = trusted.to_vec();
    want.sort();
    leaves
        .iter()
        .filter(|l| {
            let mut has = l.trusts.clone();
            has.sort();
            has.dedup();
            has != want
        })
        .map(|l| l.purpose)
        .collect()
}

/// With provided Secrets the user changes the CAs: when the CAs in the client and peer Secrets'
/// `ca.crt` differ from those recorded, the new set is to be recorded (and the members restart
/// to read it). Only once every certificate Secret is usable: a wrong or half-written `ca.crt`
/// must never restart a member into a trust it cannot use.
pub fn provided_trust(recorded: &[String], in_secrets: &[String], all_usable: bool) -> Option<Vec<String>> {
    let mut now = in_secrets.to_vec();
    now.sort();
    now.dedup();
    let mut was = recorded.to_vec();
    was.sort();
    (all_usable && !now.is_empty() && now != was).then_some(now)
}
