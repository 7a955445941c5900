//! The move between plaintext and TLS, decided without any server.

use etcd_operator_api::cluster::{TlsSpec, TransportMove, TransportPhase, TransportStatus};

use super::transport::{MoveInputs, MoveStep, blocked, next_move_step};

fn managed() -> TlsSpec {
    serde_json::from_str(r#"{"operatorManaged":{}}"#).unwrap()
}

fn provided() -> TlsSpec {
    serde_json::from_str(
        r#"{"provided":{"clientSecretName":"c","peerSecretName":"p","operatorSecretName":"o"}}"#,
    )
    .unwrap()
}

fn status(tls: Option<TlsSpec>, phase: Option<TransportPhase>) -> TransportStatus {
    TransportStatus { tls, moving: phase.map(|phase| TransportMove { phase, started_at: "then".into() }) }
}

fn inputs<'a>(spec: Option<&'a TlsSpec>, recorded: Option<&'a TransportStatus>) -> MoveInputs<'a> {
    MoveInputs {
        spec,
        recorded,
        rolled: true,
        peers_match: true,
        certificates_usable: true,
        blocked: None,
        now: "now",
    }
}

fn recorded_phase(step: MoveStep) -> Option<TransportPhase> {
    match step {
        MoveStep::Record { transport, .. } => transport.moving.map(|m| m.phase),
        other => panic!("expected a record, got {other:?}"),
    }
}

#[test]
fn a_cluster_first_seen_records_what_its_spec_says() {
    let tls = managed();
    let MoveStep::Record { transport, .. } = next_move_step(&inputs(Some(&tls), None)) else { panic!() };
    assert_eq!(transport, status(Some(tls), None));
    let MoveStep::Record { transport, .. } = next_move_step(&inputs(None, None)) else { panic!() };
    assert_eq!(transport, status(None, None));
}

#[test]
fn turning_tls_on_mounts_the_certificates_first_then_moves_each_member_then_ends() {
    let tls = managed();
    let plain = status(None, None);
    let MoveStep::Record { transport, reason, .. } = next_move_step(&inputs(Some(&tls), Some(&plain))) else {
        panic!()
    };
    assert_eq!(reason, "MountingCertificates");
    let started = TransportMove { phase: TransportPhase::MountingCertificates, started_at: "now".into() };
    assert_eq!(transport, TransportStatus { tls: Some(tls.clone()), moving: Some(started) });
    let mounting = status(Some(tls.clone()), Some(TransportPhase::MountingCertificates));
    assert_eq!(
        recorded_phase(next_move_step(&inputs(Some(&tls), Some(&mounting)))),
        Some(TransportPhase::EnablingTls)
    );
    let enabling = status(Some(tls.clone()), Some(TransportPhase::EnablingTls));
    let MoveStep::Record { transport, reason, .. } = next_move_step(&inputs(Some(&tls), Some(&enabling)))
    else {
        panic!()
    };
    assert_eq!((transport, reason), (status(Some(tls.clone()), None), "TlsEnabled"));
    // The start time is kept through the phases.
    let MoveStep::Record { transport, .. } = next_move_step(&inputs(Some(&tls), Some(&mounting))) else {
        panic!()
    };
    assert_eq!(transport.moving.unwrap().started_at, "then");
}

#[test]
fn turning_tls_off_moves_each_member_first_then_unmounts_with_the_recorded_settings() {
    let tls = provided();
    let on = status(Some(tls.clone()), None);
    assert_eq!(recorded_phase(next_move_step(&inputs(None, Some(&on)))), Some(TransportPhase::DisablingTls));
    let disabling = status(Some(tls.clone()), Some(TransportPhase::DisablingTls));
    let MoveStep::Record { transport, .. } = next_move_step(&inputs(None, Some(&disabling))) else {
        panic!()
    };
    assert_eq!(transport.tls, Some(tls.clone()), "the Secrets to unmount are the recorded ones");
    assert_eq!(transport.moving.map(|m| m.phase), Some(TransportPhase::UnmountingCertificates));
    let unmounting = status(Some(tls), Some(TransportPhase::UnmountingCertificates));
    let MoveStep::Record { transport, reason, .. } = next_move_step(&inputs(None, Some(&unmounting))) else {
        panic!()
    };
    assert_eq!((transport, reason), (status(None, None), "TlsDisabled"));
}

#[test]
fn a_phase_ends_only_when_every_member_runs_its_template_with_its_peer_url() {
    let tls = managed();
    let enabling = status(Some(tls.clone()), Some(TransportPhase::EnablingTls));
    let not_rolled = MoveInputs { rolled: false, ..inputs(Some(&tls), Some(&enabling)) };
    assert!(matches!(next_move_step(&not_rolled), MoveStep::Wait(w) if w.contains("one at a time")));
    let urls = MoveInputs { peers_match: false, ..inputs(Some(&tls), Some(&enabling)) };
    assert!(matches!(next_move_step(&urls), MoveStep::Wait(w) if w.contains("peer URLs")));
}

#[test]
fn a_move_starts_only_when_nothing_else_changes_the_members_and_certificates_are_usable() {
    let tls = managed();
    let plain = status(None, None);
    let busy = MoveInputs {
        blocked: Some("the CA rotation in progress finishes".into()),
        ..inputs(Some(&tls), Some(&plain))
    };
    assert!(matches!(next_move_step(&busy), MoveStep::Wait(w) if w.contains("CA rotation")));
    let unusable = MoveInputs { certificates_usable: false, ..inputs(Some(&tls), Some(&plain)) };
    assert!(matches!(next_move_step(&unusable), MoveStep::Wait(w) if w.contains("CertificatesReady")));
    let on = status(Some(tls), None);
    let busy = MoveInputs { blocked: Some("x".into()), ..inputs(None, Some(&on)) };
    assert!(matches!(next_move_step(&busy), MoveStep::Wait(_)));
}

#[test]
fn a_spec_that_turns_back_reverses_the_move_where_the_same_certificates_allow() {
    let tls = managed();
    let phase_after = |spec: Option<&TlsSpec>, recorded: &TransportStatus| {
        let i = MoveInputs { rolled: false, ..inputs(spec, Some(recorded)) };
        match next_move_step(&i) {
            MoveStep::Record { transport, .. } => transport.moving.map(|m| m.phase),
            MoveStep::Wait(_) => recorded.moving.as_ref().map(|m| m.phase),
            other => panic!("{other:?}"),
        }
    };
    let at = |phase| status(Some(tls.clone()), Some(phase));
    use TransportPhase::*;
    assert_eq!(phase_after(None, &at(MountingCertificates)), Some(UnmountingCertificates));
    assert_eq!(phase_after(None, &at(EnablingTls)), Some(DisablingTls));
    assert_eq!(phase_after(Some(&tls), &at(DisablingTls)), Some(EnablingTls));
    assert_eq!(phase_after(Some(&tls), &at(UnmountingCertificates)), Some(MountingCertificates));
    // Other Secrets while members speak TLS: the move to plaintext finishes first.
    let other = provided();
    assert_eq!(phase_after(Some(&other), &at(DisablingTls)), Some(DisablingTls));
}

#[test]
fn settings_changed_in_place_are_recorded_without_a_move() {
    let was = managed();
    let mut now = managed();
    now.client_cert_auth = false;
    let on = status(Some(was), None);
    let MoveStep::Record { transport, reason, .. } = next_move_step(&inputs(Some(&now), Some(&on))) else {
        panic!()
    };
    assert_eq!((transport, reason), (status(Some(now.clone()), None), ""));
    let current = status(Some(now.clone()), None);
    assert!(matches!(next_move_step(&inputs(Some(&now), Some(&current))), MoveStep::Nothing(_)));
}

#[test]
fn what_blocks_a_start_is_named() {
    let cluster = |status: serde_json::Value| -> etcd_operator_api::EtcdCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
            "metadata": {"name": "demo", "namespace": "prod"},
            "spec": {"size": 3, "version": "3.5.17"}, "status": status,
        }))
        .unwrap()
    };
    let running = serde_json::json!({"clusterId": "1", "currentSize": 3});
    assert_eq!(blocked(&cluster(running)), None);
    assert!(blocked(&cluster(serde_json::json!({}))).unwrap().contains("formed"));
    let scaling = serde_json::json!({"clusterId": "1", "currentSize": 2});
    assert!(blocked(&cluster(scaling)).unwrap().contains("spec.size"));
    let rotating = serde_json::json!({"clusterId": "1", "currentSize": 3,
        "certificateAuthority": {"rotation": {"phase": "TrustingNewCA", "startedAt": "t"}}});
    assert!(blocked(&cluster(rotating)).unwrap().contains("CA rotation"));
}
