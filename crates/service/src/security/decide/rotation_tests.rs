//! A CA rotation's decisions, phase by phase, and where each crash resumes.

use chrono::{DateTime, Duration, Utc};
use etcd_operator_api::cluster::{CaRotationPhase, CaRotationStatus, CertificateAuthorityStatus};
use etcd_operator_resource::templates::tls::{PURPOSES, Purpose};

use super::{
    Lifetimes,
    rotation::{CaKeys, LeafTrust, RotationInputs, RotationStep, due, next_rotation_step, provided_trust},
};
use crate::security::{certs, certs::Pair};

fn now() -> DateTime<Utc> {
    "2026-11-30T00:00:00Z".parse().unwrap()
}

fn lifetimes() -> Lifetimes {
    Lifetimes { validity: Duration::days(90), renew_before: Duration::days(30) }
}

/// The CAs `old` and `new` (real ones: the decisions read their fingerprints).
fn pair(name: &str) -> Pair {
    static CAS: std::sync::LazyLock<[Pair; 2]> = std::sync::LazyLock::new(|| {
        let names = etcd_operator_resource::names::ClusterNames::new("prod", "demo", "cluster.local");
        [certs::issue_ca(&names, now()).unwrap(), certs::issue_ca(&names, now()).unwrap()]
    });
    CAS[usize::from(name == "new")].clone()
}

/// The fingerprint of CA `old` or `new`.
fn fp(name: &str) -> String {
    certs::fingerprints(pair(name).crt.as_bytes()).remove(0)
}

/// Every certificate Secret trusting `trusts`, signed by `signer`.
fn leaves(trusts: &[&str], signer: &str) -> Vec<LeafTrust> {
    PURPOSES
        .into_iter()
        .map(|purpose| LeafTrust {
            purpose,
            trusts: trusts.iter().map(|t| fp(t)).collect(),
            signed_by: Some(fp(signer)),
        })
        .collect()
}

fn recorded(phase: Option<CaRotationPhase>, trusted: &[&str]) -> CertificateAuthorityStatus {
    CertificateAuthorityStatus {
        trusted: trusted.iter().map(|t| fp(t)).collect(),
        rotation: phase.map(|phase| CaRotationStatus {
            phase,
            started_at: "t0".into(),
            reason: "requested".into(),
        }),
    }
}

struct State {
    keys: CaKeys,
    status: Option<CertificateAuthorityStatus>,
    leaves: Vec<LeafTrust>,
    rolled: bool,
    serving: bool,
    requested: bool,
}

impl State {
    /// A cluster whose CA `old` issued everything, never rotated.
    fn settled() -> Self {
        Self {
            keys: CaKeys { current: Some(pair("old")), next: None, previous: None },
            status: None,
            leaves: leaves(&["old"], "old"),
            rolled: true,
            serving: true,
            requested: false,
        }
    }

    fn step(&self) -> RotationStep {
        next_rotation_step(&RotationInputs {
            ca: &self.keys,
            status: self.status.as_ref(),
            leaves: &self.leaves,
            rolled: self.rolled,
            serving: self.serving,
            requested: self.requested,
            ca_not_after: Some(now() + Duration::days(3650)),
            lifetimes: lifetimes(),
            now: now(),
        })
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| fp(s)).collect()
}

#[test]
fn a_requested_rotation_goes_through_its_three_phases() {
    let mut s = State::settled();
    assert!(matches!(s.step(), RotationStep::Nothing(_)));
    s.requested = true;
    assert!(matches!(s.step(), RotationStep::AddNextCa { .. }));
    // The new CA is in the Secret: the phase is recorded with both CAs trusted.
    s.requested = false;
    s.keys.next = Some(pair("new"));
    let RotationStep::Record { phase, trusted, .. } = s.step() else { panic!("{:?}", s.step()) };
    assert_eq!((phase, trusted), (Some(CaRotationPhase::TrustingNewCA), strings(&["old", "new"])));
    s.status = Some(recorded(Some(CaRotationPhase::TrustingNewCA), &["old", "new"]));
    // Every ca.crt gets both; then the members restart before the new CA issues anything.
    s.rolled = false;
    assert_eq!(s.step(), RotationStep::SetBundle(PURPOSES.to_vec()));
    s.leaves = leaves(&["new", "old"], "old");
    assert!(matches!(s.step(), RotationStep::Wait(_)));
    s.rolled = true;
    assert_eq!(s.step(), RotationStep::PromoteNext);
    // Promoted: the new CA issues, the old one stays trusted; the trusted set is unchanged, so
    // nothing restarts for this phase.
    s.keys = CaKeys { current: Some(pair("new")), next: None, previous: Some(pair("old").crt) };
    let RotationStep::Record { phase, trusted, .. } = s.step() else { panic!("{:?}", s.step()) };
    assert_eq!((phase, trusted), (Some(CaRotationPhase::IssuingFromNewCA), strings(&["old", "new"])));
    s.status = Some(recorded(Some(CaRotationPhase::IssuingFromNewCA), &["old", "new"]));
    assert_eq!(s.step(), RotationStep::Reissue(PURPOSES.to_vec()));
    s.leaves = leaves(&["new", "old"], "new");
    // The old CA stays trusted until every member serves the new certificates.
    s.serving = false;
    assert!(matches!(s.step(), RotationStep::Wait(w) if w.contains("old CA")));
    s.serving = true;
    let RotationStep::Record { phase, trusted, .. } = s.step() else { panic!("{:?}", s.step()) };
    assert_eq!((phase, trusted), (Some(CaRotationPhase::DroppingOldCA), strings(&["new"])));
    s.status = Some(recorded(Some(CaRotationPhase::DroppingOldCA), &["new"]));
    s.rolled = false;
    assert_eq!(s.step(), RotationStep::DropPrevious);
    s.keys.previous = None;
    assert_eq!(s.step(), RotationStep::SetBundle(PURPOSES.to_vec()));
    s.leaves = leaves(&["new"], "new");
    assert!(matches!(s.step(), RotationStep::Wait(_)));
    s.rolled = true;
    let RotationStep::Record { phase, trusted, .. } = s.step() else { panic!("{:?}", s.step()) };
    assert_eq!((phase, trusted), (None, strings(&["new"])));
    s.status = Some(recorded(None, &["new"]));
    assert!(matches!(s.step(), RotationStep::Nothing(_)));
}

#[test]
fn only_the_certificates_that_lag_are_touched() {
    let mut s = State::settled();
    s.keys = CaKeys { current: Some(pair("new")), next: None, previous: Some(pair("old").crt) };
    s.status = Some(recorded(Some(CaRotationPhase::IssuingFromNewCA), &["old", "new"]));
    s.leaves = leaves(&["new", "old"], "new");
    s.leaves[1].signed_by = Some(fp("old"));
    assert_eq!(s.step(), RotationStep::Reissue(vec![Purpose::Peer]));
}

#[test]
fn a_crash_between_a_secret_write_and_its_record_resumes_without_a_second_new_ca() {
    // After AddNextCa, before the record: the Secret's new CA is recorded, not replaced.
    let mut s = State::settled();
    s.keys.next = Some(pair("new"));
    assert!(matches!(s.step(), RotationStep::Record { phase: Some(CaRotationPhase::TrustingNewCA), .. }));
    // After PromoteNext, before the record of IssuingFromNewCA.
    s.status = Some(recorded(Some(CaRotationPhase::TrustingNewCA), &["old", "new"]));
    s.keys = CaKeys { current: Some(pair("new")), next: None, previous: Some(pair("old").crt) };
    s.leaves = leaves(&["new", "old"], "old");
    let RotationStep::Record { phase, trusted, .. } = s.step() else { panic!("{:?}", s.step()) };
    assert_eq!((phase, trusted), (Some(CaRotationPhase::IssuingFromNewCA), strings(&["old", "new"])));
}

#[test]
fn a_ca_that_would_expire_before_a_new_certificate_is_rotated_unasked() {
    let l = lifetimes();
    assert!(!due(now() + Duration::days(365), l, now()));
    assert!(due(now() + Duration::days(100), l, now()));
    let mut s = State::settled();
    s.keys.current = Some(pair("old"));
    let step = next_rotation_step(&RotationInputs {
        ca: &s.keys,
        status: None,
        leaves: &s.leaves,
        rolled: true,
        serving: true,
        requested: false,
        ca_not_after: Some(now() + Duration::days(100)),
        lifetimes: l,
        now: now(),
    });
    assert!(matches!(step, RotationStep::AddNextCa { reason } if reason.contains("expires")));
    s.requested = false;
}

#[test]
fn provided_secrets_restart_the_members_only_for_a_usable_change_of_their_cas() {
    let fp = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // First seen (a cluster created before this was kept, or a new one): recorded.
    assert_eq!(provided_trust(&[], &fp(&["a"]), true), Some(fp(&["a"])));
    assert_eq!(provided_trust(&fp(&["a"]), &fp(&["a", "a"]), true), None);
    // A bundle while the user's CA changes, in any order.
    assert_eq!(provided_trust(&fp(&["a"]), &fp(&["b", "a"]), true), Some(fp(&["a", "b"])));
    assert_eq!(provided_trust(&fp(&["b", "a"]), &fp(&["a", "b"]), true), None);
    // A Secret that is not usable (wrong CA, key missing) restarts nothing.
    assert_eq!(provided_trust(&fp(&["a"]), &fp(&["b"]), false), None);
    assert_eq!(provided_trust(&fp(&["a"]), &[], true), None);
}
