//! Stop and restart decisions from small fixtures.

use etcd_operator_api::cluster::{OperationStatus, SnapshotRecord, StoppedStatus};
use etcd_operator_resource::names::ClusterNames;

use crate::fixtures::names;
use crate::observe::EtcdState;
use crate::{
    operation::OperationType, stop::decide::StopAction, stop::decide::StopInputs,
    stop::decide::next_restart_action, stop::decide::next_stop_action, stop::decide::step,
};

fn view(healthy: &[bool]) -> EtcdState {
    EtcdState::Reached(crate::fixtures::view(healthy).build())
}

fn op(type_: OperationType, step: &str) -> OperationStatus {
    OperationStatus { type_, step: step.into(), started_at: "t0".into(), ..OperationStatus::default() }
}

fn stopped(snapshot: bool) -> StoppedStatus {
    StoppedStatus {
        members: vec!["demo-0".into(), "demo-1".into(), "demo-2".into()],
        cluster_id: "abc".into(),
        snapshot: snapshot.then(|| SnapshotRecord {
            location: "prod/demo/stop.db".into(),
            sha256: "ff".into(),
            ..SnapshotRecord::default()
        }),
    }
}

struct Case {
    op: Option<OperationStatus>,
    stopped: Option<StoppedStatus>,
    replicas: i32,
    pods: i32,
    etcd: EtcdState,
    claims: Vec<String>,
    names: ClusterNames,
    restore_prepared: bool,
}

impl Case {
    fn running() -> Self {
        Self {
            op: None,
            stopped: None,
            replicas: 3,
            pods: 3,
            etcd: view(&[true, true, true]),
            claims: claims(3),
            names: names(),
            restore_prepared: false,
        }
    }
    fn stopped() -> Self {
        Self {
            op: None,
            stopped: Some(stopped(true)),
            replicas: 0,
            pods: 0,
            etcd: EtcdState::NotExpected,
            claims: claims(3),
            names: names(),
            restore_prepared: false,
        }
    }
    fn inputs(&self) -> StopInputs<'_> {
        StopInputs {
            operation: self.op.as_ref(),
            stopped: self.stopped.as_ref(),
            replicas: self.replicas,
            pods: self.pods,
            etcd: &self.etcd,
            claims: &self.claims,
            names: &self.names,
            now: "t1",
            restore_prepared: self.restore_prepared,
        }
    }
}

fn claims(n: i32) -> Vec<String> {
    (0..n).map(|i| names().pvc(i)).collect()
}

#[test]
fn a_stop_snapshots_first_then_stops_every_pod_keeping_claims() {
    let mut c = Case::running();
    let StopAction::Record(first) = next_stop_action(&c.inputs()) else { panic!("record first") };
    assert_eq!((first.type_, first.step.as_str()), (OperationType::ScaleToZero, step::TAKING_SNAPSHOT));
    let began = first.started_at.clone();
    c.op = Some(first);
    assert_eq!(next_stop_action(&c.inputs()), StopAction::TakeSnapshot);
    // Crashed after the snapshot was recorded: not taken again.
    c.stopped = Some(stopped(true));
    let StopAction::Record(next) = next_stop_action(&c.inputs()) else { panic!("record the next step") };
    assert_eq!(next.step, step::STOPPING_MEMBERS);
    assert_eq!(next.started_at, began, "a step keeps the operation's start");
    c.op = Some(next);
    assert_eq!(next_stop_action(&c.inputs()), StopAction::SetReplicas { replicas: 0, members: vec![] });
    c.replicas = 0;
    assert!(matches!(next_stop_action(&c.inputs()), StopAction::Wait { .. }));
    c.pods = 0;
    assert_eq!(next_stop_action(&c.inputs()), StopAction::Done);
}

#[test]
fn a_stop_is_refused_without_quorum_or_during_another_change() {
    let mut c = Case::running();
    c.etcd = view(&[true, false, false]);
    assert!(
        matches!(next_stop_action(&c.inputs()), StopAction::Refuse(m) if m.contains("no consistent snapshot"))
    );
    let mut c = Case::running();
    c.op = Some(op(OperationType::ScaleDown, "RemovingMember"));
    assert!(matches!(next_stop_action(&c.inputs()), StopAction::Refuse(m) if m.contains("ScaleDown")));
}

#[test]
fn a_restart_brings_the_recorded_members_back_on_their_claims() {
    let mut c = Case::stopped();
    let StopAction::Record(first) = next_restart_action(&c.inputs(), 5) else { panic!("record first") };
    assert_eq!((first.type_, first.target), (OperationType::RestartFromZero, Some(5)));
    c.op = Some(first);
    let members: Vec<String> = (0..3).map(|i| format!("demo-{i}")).collect();
    assert_eq!(next_restart_action(&c.inputs(), 5), StopAction::SetReplicas { replicas: 3, members });
    c.replicas = 3;
    c.etcd = EtcdState::Unreachable("starting".into());
    assert!(matches!(next_restart_action(&c.inputs(), 5), StopAction::Wait { .. }));
    c.etcd = view(&[true, true, false]);
    assert!(matches!(next_restart_action(&c.inputs(), 5), StopAction::Wait { .. }));
    c.etcd = view(&[true, true, true]);
    assert_eq!(next_restart_action(&c.inputs(), 5), StopAction::Done);
    // Members that came back as another cluster are not taken for this one.
    c.stopped.as_mut().unwrap().cluster_id = "def".into();
    assert!(matches!(next_restart_action(&c.inputs(), 5), StopAction::Refuse(m) if m.contains("not def")));
}

#[test]
fn a_restart_without_any_claim_restores_every_member_from_the_stop_snapshot() {
    let mut c = Case::stopped();
    c.claims = vec![];
    let StopAction::Record(first) = next_restart_action(&c.inputs(), 3) else { panic!("record first") };
    assert_eq!(first.step, step::RESTORING_SNAPSHOT);
    c.op = Some(first);
    assert_eq!(next_restart_action(&c.inputs(), 3), StopAction::PrepareRestore);
    c.restore_prepared = true;
    let members: Vec<String> = (0..3).map(|i| format!("demo-{i}")).collect();
    assert_eq!(next_restart_action(&c.inputs(), 3), StopAction::SetReplicas { replicas: 3, members });
    // The claims the StatefulSet creates again do not turn it back into a restart on claims.
    c.replicas = 3;
    c.claims = claims(3);
    assert!(matches!(next_restart_action(&c.inputs(), 3), StopAction::Wait { .. }));
    // A restored cluster has a new cluster ID, and that is expected.
    let mut restored = view(&[true, true, true]);
    if let EtcdState::Reached(v) = &mut restored {
        v.cluster_id = 0xfeed;
    }
    c.etcd = restored;
    assert_eq!(next_restart_action(&c.inputs(), 3), StopAction::Done);

    // Without a recorded snapshot there is nothing to restore from.
    let mut c = Case::stopped();
    c.claims = vec![];
    c.stopped.as_mut().unwrap().snapshot = None;
    let StopAction::Refuse(why) = next_restart_action(&c.inputs(), 3) else { panic!("refuse") };
    assert!(why.contains("no snapshot was recorded"), "{why}");
}

#[test]
fn a_restart_with_some_claims_lost_is_refused_naming_the_snapshot() {
    let mut c = Case::stopped();
    c.claims = claims(2);
    let StopAction::Refuse(why) = next_restart_action(&c.inputs(), 3) else { panic!("refuse") };
    assert!(why.contains("data-demo-2") && why.contains("prod/demo/stop.db"), "{why}");
    let mut c = Case::running();
    assert_eq!(
        next_restart_action(&c.inputs(), 3),
        StopAction::Done,
        "a repeated restart of a running cluster"
    );
    c.etcd = EtcdState::NotExpected;
    assert!(
        matches!(next_restart_action(&c.inputs(), 3), StopAction::Refuse(m) if m.contains("not stopped"))
    );
    c.etcd = view(&[true, true, true]);
    c.op = Some(op(OperationType::RestartFromZero, step::STARTING_MEMBERS));
    assert_eq!(
        next_restart_action(&c.inputs(), 3),
        StopAction::Done,
        "a restart whose stop record is cleared is done"
    );
}

#[test]
fn a_restart_says_where_its_members_get_their_data_once_a_step_is_recorded() {
    use crate::stop::decide::{RestartSource, restart_source};
    let restoring = op(OperationType::RestartFromZero, step::RESTORING_SNAPSHOT);
    let starting = op(OperationType::RestartFromZero, step::STARTING_MEMBERS);
    assert_eq!(restart_source(&StopAction::Record(restoring.clone()), None), Some(RestartSource::Snapshot));
    assert_eq!(restart_source(&StopAction::Done, Some(&starting)), Some(RestartSource::RetainedVolumes));
    assert_eq!(restart_source(&StopAction::Done, Some(&restoring)), Some(RestartSource::Snapshot));
    assert_eq!(restart_source(&StopAction::Done, None), None, "nothing recorded yet");
    let stopping = op(OperationType::ScaleToZero, step::STOPPING_MEMBERS);
    assert_eq!(restart_source(&StopAction::Done, Some(&stopping)), None, "a stop, not a restart");
}
