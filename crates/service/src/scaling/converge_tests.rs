//! Which way a cluster converges (scale, roll, recover or wait), from small fixtures.

use crate::operation::OperationType;
use crate::scaling::decide::{Converge, ConvergeInputs, converge};

fn inputs(size: i32, members: Option<i32>) -> ConvergeInputs<'static> {
    ConvergeInputs {
        size,
        paused: false,
        deleting: false,
        formed: true,
        operation: None,
        stopped: false,
        members,
        replicas: members.unwrap_or(0),
        rolling: false,
        moving_transport: false,
    }
}

#[test]
fn the_direction_comes_from_the_live_membership() {
    // status.currentSize may say anything: only what etcd lists counts.
    assert_eq!(converge(&inputs(5, Some(3))), Converge::Up);
    assert_eq!(converge(&inputs(3, Some(5))), Converge::Down);
    assert!(matches!(converge(&inputs(3, Some(3))), Converge::Nothing(_)));
    assert!(matches!(converge(&inputs(3, None)), Converge::Later(r) if r.contains("did not answer")));
    // Pods no member stands for (a replacement given up at the top, campaign seed 78) go.
    assert_eq!(converge(&ConvergeInputs { replicas: 5, ..inputs(3, Some(3)) }), Converge::Down);
    assert_eq!(converge(&inputs(0, None)), Converge::ToZero);
    let stopped = |size| ConvergeInputs { stopped: true, ..inputs(size, None) };
    assert_eq!(converge(&stopped(3)), Converge::FromZero);
    assert!(matches!(converge(&stopped(0)), Converge::Nothing(_)));
}

#[test]
fn a_recorded_operation_goes_on_and_a_recovery_goes_first() {
    let cases = [
        (OperationType::ScaleUp, Some(Converge::Up)),
        (OperationType::ScaleDown, Some(Converge::Down)),
        (OperationType::ScaleToZero, Some(Converge::ToZero)),
        (OperationType::RestartFromZero, Some(Converge::FromZero)),
        (OperationType::ReplaceMember, None),
        (OperationType::RecoverQuorum, None),
        // A member mid-restart finishes before membership changes.
        (OperationType::RollingUpdate, Some(Converge::Roll)),
        // The lifecycle's own operations do not block a size change.
        (OperationType::Create, Some(Converge::Down)),
    ];
    for (type_, expected) in cases {
        let op = etcd_operator_api::cluster::OperationStatus { type_, ..Default::default() };
        // Whatever the membership says, the recorded operation decides.
        let i = ConvergeInputs { operation: Some(&op), ..inputs(3, Some(4)) };
        match expected {
            Some(e) => assert_eq!(converge(&i), e, "{type_}"),
            None => {
                assert!(matches!(converge(&i), Converge::Later(r) if r.contains("finishes first")), "{type_}")
            }
        }
    }
}

#[test]
fn a_new_template_rolls_once_the_membership_is_settled() {
    let rolling = |size, members| ConvergeInputs { rolling: true, ..inputs(size, members) };
    assert_eq!(converge(&rolling(3, Some(3))), Converge::Roll);
    // A size change goes first: the members it adds start on the new template anyway.
    assert_eq!(converge(&rolling(5, Some(3))), Converge::Up);
    assert_eq!(converge(&rolling(1, Some(3))), Converge::Down);
    assert!(matches!(converge(&rolling(3, None)), Converge::Later(_)));
    let stopped = ConvergeInputs { stopped: true, ..rolling(0, None) };
    assert!(matches!(converge(&stopped), Converge::Nothing(_)));
}

#[test]
fn the_size_waits_for_a_move_between_plaintext_and_tls_but_its_roll_goes_on() {
    let moving = |size, members| ConvergeInputs { moving_transport: true, ..inputs(size, members) };
    assert!(matches!(converge(&moving(5, Some(3))), Converge::Later(r) if r.contains("plaintext and TLS")));
    assert!(matches!(converge(&moving(0, Some(3))), Converge::Later(_)));
    assert_eq!(converge(&ConvergeInputs { rolling: true, ..moving(5, Some(3)) }), Converge::Roll);
    assert_eq!(converge(&ConvergeInputs { rolling: true, ..moving(3, Some(3)) }), Converge::Roll);
    // A scale-up recorded before the move started goes on.
    let op = etcd_operator_api::cluster::OperationStatus::at_step(
        OperationType::ScaleUp,
        "AddLearner",
        None,
        "now",
    );
    assert_eq!(converge(&ConvergeInputs { operation: Some(&op), ..moving(5, Some(3)) }), Converge::Up);
}

#[test]
fn nothing_moves_while_paused_deleting_or_unformed() {
    let paused = ConvergeInputs { paused: true, ..inputs(5, Some(3)) };
    assert!(matches!(converge(&paused), Converge::Nothing(r) if r.contains("spec.paused")));
    let deleting = ConvergeInputs { deleting: true, ..inputs(5, Some(3)) };
    assert!(matches!(converge(&deleting), Converge::Nothing(_)));
    let unformed = ConvergeInputs { formed: false, ..inputs(5, Some(3)) };
    assert!(matches!(converge(&unformed), Converge::Later(_)));
    // A first spec fixed before the cluster formed replaces its pods at once.
    let fixed = ConvergeInputs { rolling: true, ..unformed };
    assert_eq!(converge(&fixed), Converge::Roll);
}
