//! Quorum-loss recovery decisions from small fixtures: the grace period,
//! opt-in, elections that are not losses, and every step resumed from its record.

use std::time::Duration;

use crate::fixtures::at;
use etcd_operator_api::cluster::{MemberStatus, OperationStatus};

use crate::operation::OperationType;
use crate::recovery::quorum::decide::{
    QuorumAssessment, QuorumInputs, RecoveryAction, RecoveryProgress, SourceChoice, SourceInputs, ToStart,
    assess, choose_source, next_recovery_action, step, to_start,
};

/// A member that answers (at `revision`, with no leader: not healthy either) or, with `down_since`, does not.
fn member(n: u8, down_since: Option<&str>, revision: i64) -> MemberStatus {
    MemberStatus {
        name: format!("demo-{n}"),
        healthy: false,
        unhealthy_since: Some(down_since.unwrap_or("2026-11-26T09:00:00Z").to_owned()),
        revision: down_since.is_none().then_some(revision),
        raft_index: down_since.is_none().then_some(revision + 100),
        ..MemberStatus::default()
    }
}

/// Three voters; demo-1 down since :00, demo-2 since :30; demo-0 answers at revision 42.
fn two_of_three_down() -> Vec<MemberStatus> {
    vec![
        member(0, None, 42),
        member(1, Some("2026-11-26T10:00:00Z"), 0),
        member(2, Some("2026-11-26T10:00:30Z"), 0),
    ]
}

fn inputs<'a>(members: &'a [MemberStatus], enabled: bool, now: &str) -> QuorumInputs<'a> {
    QuorumInputs {
        enabled,
        grace: Duration::from_secs(120),
        members,
        serving: false,
        operation: None,
        stopped: false,
        formed: true,
        corroboration: Ok("the kubelet agrees".into()),
        now: at(now),
    }
}

#[test]
fn quorum_is_lost_from_when_the_member_that_broke_the_majority_went_down() {
    let members = two_of_three_down();
    // The clock starts at :30 (the second member down), not :00.
    let early = assess(&inputs(&members, true, "2026-11-26T10:02:00Z"));
    let QuorumAssessment::WithinGrace { reason, after } = early else { panic!("{early:?}") };
    assert_eq!(after, Duration::from_secs(30));
    assert!(reason.contains("2 of 3 voting members down (demo-1, demo-2)"), "{reason}");
    assert_eq!(
        assess(&inputs(&members, true, "2026-11-26T10:02:30Z")),
        QuorumAssessment::Lost {
            down: vec!["demo-1".into(), "demo-2".into()],
            since: "2026-11-26T10:00:30Z".into(),
            survivor: Some(("demo-0".into(), 42)),
            evidence: "the kubelet agrees".into(),
        }
    );
}

#[test]
fn without_opt_in_nothing_is_changed_however_long_it_lasts() {
    let members = two_of_three_down();
    let manual = assess(&inputs(&members, false, "2026-11-27T10:00:00Z"));
    let QuorumAssessment::Manual(why) = manual else { panic!("{manual:?}") };
    assert!(why.contains("restoreOnQuorumLoss is off: nothing is changed"), "{why}");
}

#[test]
fn a_minority_down_or_an_election_is_not_a_loss() {
    let mut members = two_of_three_down();
    members[2] = member(2, None, 42);
    let election = assess(&inputs(&members, true, "2026-11-27T10:00:00Z"));
    assert!(
        matches!(&election, QuorumAssessment::Nothing(r) if r.contains("an election, not a loss")),
        "{election:?}"
    );
    let lost = two_of_three_down();
    let mut serving = inputs(&lost, true, "2026-11-27T10:00:00Z");
    serving.serving = true;
    assert_eq!(assess(&serving), QuorumAssessment::Nothing("quorum holds".into()));
}

#[test]
fn learners_do_not_count_and_every_member_down_is_a_loss_without_survivors() {
    let mut members: Vec<MemberStatus> = (0..3).map(|n| member(n, Some("2026-11-26T10:00:00Z"), 0)).collect();
    members.push(MemberStatus { is_learner: true, healthy: true, ..member(3, None, 50) });
    let lost = assess(&inputs(&members, true, "2026-11-26T11:00:00Z"));
    let QuorumAssessment::Lost { down, survivor, .. } = lost else { panic!("{lost:?}") };
    assert_eq!(down.len(), 3);
    assert_eq!(survivor, None, "a learner is no survivor");
}

#[test]
fn stopped_unformed_and_busy_clusters_are_left_alone() {
    let members = two_of_three_down();
    let now = "2026-11-27T10:00:00Z";
    let mut stopped = inputs(&members, true, now);
    stopped.stopped = true;
    assert!(matches!(assess(&stopped), QuorumAssessment::Nothing(_)));
    let mut unformed = inputs(&members, true, now);
    unformed.formed = false;
    assert!(matches!(assess(&unformed), QuorumAssessment::Nothing(r) if r.contains("never formed")));
    for type_ in [OperationType::ScaleToZero, OperationType::RestartFromZero, OperationType::RecoverQuorum] {
        let op = OperationStatus { type_, ..OperationStatus::default() };
        let mut busy = inputs(&members, true, now);
        busy.operation = Some(&op);
        assert!(matches!(assess(&busy), QuorumAssessment::Nothing(_)), "{type_}");
    }
    // A scale or replacement that cannot go on without quorum does not block the recovery.
    let op = OperationStatus { type_: OperationType::ScaleUp, ..OperationStatus::default() };
    let mut scaling = inputs(&members, true, now);
    scaling.operation = Some(&op);
    assert!(matches!(assess(&scaling), QuorumAssessment::Lost { .. }));
}

#[test]
fn a_loss_the_evidence_contradicts_is_never_acted_on_opted_in_or_not() {
    let members = two_of_three_down();
    for enabled in [true, false] {
        let mut cut_off = inputs(&members, enabled, "2026-11-27T10:00:00Z");
        cut_off.corroboration = Err("the kubelet reports 3 of 3 member pods Ready".into());
        let a = assess(&cut_off);
        assert!(
            matches!(&a, QuorumAssessment::Unconfirmed(r) if r.contains("as the operator sees it, but the kubelet reports 3 of 3")),
            "{a:?}"
        );
    }
}

fn source<'a>(
    survivor: Option<(&'a str, i64)>,
    backup: Result<(&'a str, Option<i64>), &'a str>,
    accepted: Option<&'a str>,
) -> SourceInputs<'a> {
    SourceInputs { survivor, backup, accepted, can_save: true, how_to_accept: "annotate A" }
}

#[test]
fn a_survivor_at_least_as_new_as_the_backup_is_the_source_and_nothing_it_held_is_lost() {
    let survivor = SourceChoice::Survivor { member: "demo-0".into(), revision: 90 };
    assert_eq!(choose_source(&source(Some(("demo-0", 90)), Ok(("nightly", Some(70))), None)), survivor);
    assert_eq!(choose_source(&source(Some(("demo-0", 90)), Err("no backup"), None)), survivor);
    let mut no_store = source(Some(("demo-0", 90)), Ok(("nightly", Some(70))), Some("nightly"));
    no_store.can_save = false;
    assert!(matches!(choose_source(&no_store), SourceChoice::Refuse(r) if r.contains("--snapshot-dir")));
}

#[test]
fn a_backup_that_may_lose_writes_needs_the_users_acceptance_naming_it() {
    // Nobody answers: what the members held cannot be known.
    let ask = choose_source(&source(None, Ok(("nightly", Some(70))), None));
    let SourceChoice::NeedsAcceptance(why) = ask else { panic!("{ask:?}") };
    assert!(why.contains("EtcdBackup nightly (revision 70)") && why.contains("annotate A=nightly"), "{why}");
    // Accepting another backup is no acceptance of this one.
    assert!(matches!(
        choose_source(&source(None, Ok(("nightly", Some(70))), Some("older"))),
        SourceChoice::NeedsAcceptance(_)
    ));
    assert_eq!(
        choose_source(&source(None, Ok(("nightly", Some(70))), Some("nightly"))),
        SourceChoice::Backup { name: "nightly".into(), save: None }
    );
    // A survivor behind the backup: accepted, and its data is saved first anyway.
    assert_eq!(
        choose_source(&source(Some(("demo-0", 60)), Ok(("nightly", Some(70))), Some("nightly"))),
        SourceChoice::Backup { name: "nightly".into(), save: Some("demo-0".into()) }
    );
    assert!(
        matches!(choose_source(&source(None, Err("no backup"), None)), SourceChoice::Refuse(r) if r == "no backup")
    );
}

#[test]
fn saving_the_survivor_comes_before_anything_is_stopped() {
    let mut saving = op(step::SAVING_SURVIVOR);
    saving.member = Some("demo-0".into());
    let claims = ["data-demo-0".to_owned()];
    assert_eq!(
        next_recovery_action(&progress(&saving, &claims)),
        RecoveryAction::SaveSurvivor("demo-0".into())
    );
    saving.snapshot = Some(Default::default());
    assert_eq!(
        next_recovery_action(&progress(&saving, &claims)),
        RecoveryAction::Record(step::STOPPING_MEMBERS.into())
    );
}

fn op(step: &str) -> OperationStatus {
    OperationStatus {
        type_: OperationType::RecoverQuorum,
        step: step.into(),
        target: Some(3),
        ..Default::default()
    }
}

fn progress<'a>(op: &'a OperationStatus, claims: &'a [String]) -> RecoveryProgress<'a> {
    RecoveryProgress {
        operation: op,
        replicas: 3,
        pods: 3,
        claims,
        restore_completed: false,
        healthy_voters: 1,
    }
}

#[test]
fn every_step_resumes_from_its_record() {
    let claims: Vec<String> = (0..3).map(|n| format!("data-demo-{n}")).collect();
    let stopping = op(step::STOPPING_MEMBERS);
    assert_eq!(next_recovery_action(&progress(&stopping, &claims)), RecoveryAction::SetReplicas(0));
    let draining = RecoveryProgress { replicas: 0, ..progress(&stopping, &claims) };
    assert!(matches!(next_recovery_action(&draining), RecoveryAction::Wait { .. }));
    let stopped = RecoveryProgress { replicas: 0, pods: 0, ..progress(&stopping, &claims) };
    assert_eq!(next_recovery_action(&stopped), RecoveryAction::Record(step::DELETING_VOLUMES.into()));

    let deleting = op(step::DELETING_VOLUMES);
    let p = RecoveryProgress { replicas: 0, pods: 0, ..progress(&deleting, &claims) };
    assert_eq!(next_recovery_action(&p), RecoveryAction::DeleteClaims(claims.clone()));
    let p = RecoveryProgress { replicas: 0, pods: 0, ..progress(&deleting, &[]) };
    assert_eq!(next_recovery_action(&p), RecoveryAction::Record(step::PREPARING_RESTORE.into()));

    let preparing = op(step::PREPARING_RESTORE);
    let p = RecoveryProgress { replicas: 0, pods: 0, ..progress(&preparing, &[]) };
    assert_eq!(next_recovery_action(&p), RecoveryAction::PrepareRestore { members: 3 });

    let restoring = op(step::RESTORING_MEMBERS);
    let p = RecoveryProgress { replicas: 0, pods: 0, ..progress(&restoring, &[]) };
    assert_eq!(next_recovery_action(&p), RecoveryAction::SetReplicas(3));
    assert!(matches!(next_recovery_action(&progress(&restoring, &claims)), RecoveryAction::Wait { .. }));
    let formed = RecoveryProgress { healthy_voters: 3, ..progress(&restoring, &claims) };
    assert_eq!(next_recovery_action(&formed), RecoveryAction::Done);
    let completed = RecoveryProgress { restore_completed: true, ..progress(&restoring, &claims) };
    assert_eq!(next_recovery_action(&completed), RecoveryAction::Done);
}

#[test]
fn a_record_without_a_member_count_or_with_an_unknown_step_is_refused() {
    let mut no_count = op(step::STOPPING_MEMBERS);
    no_count.target = None;
    assert!(matches!(next_recovery_action(&progress(&no_count, &[])), RecoveryAction::Refuse(_)));
    let unknown = op("Dancing");
    assert!(
        matches!(next_recovery_action(&progress(&unknown, &[])), RecoveryAction::Refuse(r) if r.contains("Dancing"))
    );
}

/// What a look starts, and when it looks again: at the caller's pace when nothing is wrong or the
/// user recovers by hand, soon when the loss is contradicted, when the grace ends (never sooner
/// than a second) when within it.
#[test]
fn a_look_starts_a_recovery_only_for_a_corroborated_loss_and_says_when_to_look_again() {
    let nothing = |a| match to_start(a) {
        ToStart::Nothing { look_again, .. } => look_again,
        other => panic!("started {other:?}"),
    };
    assert_eq!(nothing(QuorumAssessment::Nothing("healthy".into())), None);
    assert_eq!(nothing(QuorumAssessment::Manual("not opted in".into())), None);
    assert_eq!(
        nothing(QuorumAssessment::Unconfirmed("a pod is Ready".into())),
        Some(Duration::from_secs(10))
    );
    let within = |after| QuorumAssessment::WithinGrace { reason: "lost".into(), after };
    assert_eq!(nothing(within(Duration::from_secs(90))), Some(Duration::from_secs(90)));
    assert_eq!(nothing(within(Duration::ZERO)), Some(Duration::from_secs(1)));
    let lost = QuorumAssessment::Lost {
        down: vec!["demo-1".into(), "demo-2".into()],
        since: "2026-11-26T09:00:00Z".into(),
        survivor: Some(("demo-0".into(), 42)),
        evidence: "pods not Ready".into(),
    };
    assert_eq!(
        to_start(lost),
        ToStart::Recover {
            down: vec!["demo-1".into(), "demo-2".into()],
            since: "2026-11-26T09:00:00Z".into(),
            survivor: Some(("demo-0".into(), 42)),
            evidence: "pods not Ready".into(),
        }
    );
}
