//! Backup, retention and schedule decisions from small fixtures.

use std::time::Duration;

use crate::fixtures::at;
use etcd_operator_api::{Condition, ConditionStatus, EtcdBackupStatus, backup::BackupPhase};

use crate::observe::{EtcdState, EtcdView};
use crate::{
    backup::decide::BackupStep, backup::decide::MAX_ATTEMPTS, backup::decide::SourceCluster,
    backup::decide::backup_dir, backup::decide::next_step, backup::decide::retention,
    backup::decide::retention::BackupEntry, backup::decide::retry_delay, backup::decide::schedule,
    fixtures::member,
};

fn reached(members: Vec<crate::observe::MemberView>) -> SourceCluster {
    SourceCluster::Etcd(EtcdState::Reached(EtcdView {
        cluster_id: 0xabc,
        members,
        alarms: vec![],
        cluster_version: None,
    }))
}

#[test]
fn snapshot_comes_from_a_healthy_follower_never_a_learner() {
    let now = at("2026-11-26T00:00:00Z");
    let three = reached(vec![
        member(0, false, true, true, 0x100),
        member(1, false, true, true, 0x100),
        member(2, true, true, true, 0x100),
    ]);
    let BackupStep::Take { source, attempt } = next_step(&EtcdBackupStatus::default(), &three, now) else {
        panic!()
    };
    assert_eq!((source.member.as_str(), attempt, source.cluster_id.as_str()), ("demo-1", 1, "abc"));
    assert!(source.endpoint.starts_with("http://demo-1."), "{source:?}");

    // Only the leader is healthy: it serves.
    let leader_only =
        reached(vec![member(0, false, true, true, 0x100), member(1, false, false, true, 0x100)]);
    let BackupStep::Take { source, .. } = next_step(&EtcdBackupStatus::default(), &leader_only, now) else {
        panic!()
    };
    assert_eq!(source.member, "demo-0");
}

#[test]
fn a_cluster_that_cannot_serve_is_a_counted_attempt() {
    let now = at("2026-11-26T00:00:00Z");
    let cases = [
        (SourceCluster::Missing, "ClusterNotFound"),
        (SourceCluster::NotRunning, "ClusterNotRunning"),
        (SourceCluster::Etcd(EtcdState::Unreachable("refused".into())), "ClusterUnreachable"),
        (
            reached(vec![member(0, false, false, true, 0), member(1, true, true, true, 0x101)]),
            "NoHealthyMember",
        ),
    ];
    for (cluster, want) in cases {
        match next_step(&EtcdBackupStatus::default(), &cluster, now) {
            BackupStep::Retry { reason, .. } => assert_eq!(reason, want),
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[test]
fn retries_back_off_then_give_up_and_finished_backups_stay_finished() {
    let now = at("2026-11-26T00:01:00Z");
    let healthy = reached(vec![member(0, false, true, true, 0x100)]);
    let failed_once = EtcdBackupStatus {
        attempts: 1,
        last_attempt_time: Some("2026-11-26T00:00:55Z".into()),
        ..EtcdBackupStatus::default()
    };
    assert_eq!(next_step(&failed_once, &healthy, now), BackupStep::Wait { after: Duration::from_secs(5) });
    let later = at("2026-11-26T00:01:06Z");
    assert!(matches!(next_step(&failed_once, &healthy, later), BackupStep::Take { attempt: 2, .. }));

    let exhausted = EtcdBackupStatus {
        attempts: MAX_ATTEMPTS,
        conditions: vec![Condition::new(
            "Succeeded",
            ConditionStatus::False,
            "AttemptFailed",
            "storage refused",
        )],
        ..EtcdBackupStatus::default()
    };
    match next_step(&exhausted, &healthy, now) {
        BackupStep::Fail { reason, message } => {
            assert_eq!(reason, "AttemptsExhausted");
            assert!(message.contains("storage refused"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    for phase in [BackupPhase::Succeeded, BackupPhase::Failed] {
        let done = EtcdBackupStatus { phase, ..EtcdBackupStatus::default() };
        assert_eq!(next_step(&done, &healthy, now), BackupStep::Finished);
    }
    assert_eq!(retry_delay(1), Duration::from_secs(10));
    assert_eq!(retry_delay(3), Duration::from_secs(40));
    assert_eq!(retry_delay(9), Duration::from_secs(300));
}

#[test]
fn backup_keys_are_stable_and_sort_by_time() {
    let key = backup_dir("prod", "demo", "nightly-1", at("2026-11-26T03:04:05Z"));
    assert_eq!(key, "prod/demo/20261126T030405Z-nightly-1");
}

fn entry(name: &str, phase: BackupPhase, created: &str) -> BackupEntry {
    BackupEntry {
        name: name.into(),
        phase,
        created: at(created),
        completed: (phase == BackupPhase::Succeeded).then(|| at(created) + chrono::Duration::seconds(5)),
    }
}

#[test]
fn retention_by_count_and_age_keeps_the_newest_and_running_ones() {
    use BackupPhase::*;
    let entries = vec![
        entry("b1", Succeeded, "2026-11-20T00:00:00Z"),
        entry("b2", Succeeded, "2026-11-24T00:00:00Z"),
        entry("b3", Succeeded, "2026-11-25T00:00:00Z"),
        entry("b4", Succeeded, "2026-11-26T00:00:00Z"),
        entry("b5", Running, "2026-11-26T01:00:00Z"),
        entry("f1", Failed, "2026-11-21T00:00:00Z"),
        entry("f2", Failed, "2026-11-22T00:00:00Z"),
        entry("f3", Failed, "2026-11-23T00:00:00Z"),
        entry("f4", Failed, "2026-11-24T00:00:00Z"),
    ];
    let now = at("2026-11-26T02:00:00Z");
    let r = retention::apply(&entries, 3, None, now);
    assert_eq!(r.kept, ["b4", "b3", "b2"]);
    assert_eq!(r.expired, ["b1", "f1"]);

    let r = retention::apply(&entries, 10, Some(Duration::from_secs(36 * 3600)), now);
    assert_eq!(r.kept, ["b4", "b3"]);
    assert_eq!(r.expired, ["b2", "b1", "f1"]);

    // Even when every backup is too old, the newest successful one stays.
    let r = retention::apply(&entries, 1, Some(Duration::from_secs(60)), now);
    assert_eq!(r.kept, ["b4"]);
    assert!(!r.expired.contains(&"b5".to_string()), "a running backup is never pruned");
}

#[test]
fn schedules_run_once_per_occurrence_and_never_overlap() {
    let cron = schedule::parse("*/15 * * * *").unwrap();
    let created = at("2026-11-26T00:01:00Z");
    let step = |last: Option<&str>, running, now: &str| {
        schedule::next_step(&cron, false, last.map(at), created, running, at(now))
    };
    // Not due yet.
    let s = step(None, false, "2026-11-26T00:10:00Z");
    assert_eq!((s.run, s.next), (None, Some(at("2026-11-26T00:15:00Z"))));
    // Due.
    let s = step(None, false, "2026-11-26T00:15:02Z");
    assert_eq!((s.run, s.next), (Some(at("2026-11-26T00:15:00Z")), Some(at("2026-11-26T00:30:00Z"))));
    // Already ran for 00:15.
    assert_eq!(step(Some("2026-11-26T00:15:00Z"), false, "2026-11-26T00:20:00Z").run, None);
    // Three missed runs make one backup, for the latest occurrence.
    let s = step(Some("2026-11-26T00:15:00Z"), false, "2026-11-26T01:07:00Z");
    assert_eq!(s.run, Some(at("2026-11-26T01:00:00Z")));
    // A backup still running holds the next one back; it shows as due.
    let s = step(Some("2026-11-26T00:15:00Z"), true, "2026-11-26T00:31:00Z");
    assert_eq!((s.run, s.next), (None, Some(at("2026-11-26T00:30:00Z"))));
    // Suspended: nothing, and no next time.
    let s = schedule::next_step(&cron, true, None, created, false, at("2026-11-26T05:00:00Z"));
    assert_eq!((s.run, s.next), (None, None));
}

#[test]
fn bad_cron_expressions_name_the_field() {
    for bad in ["* * * *", "61 * * * *", "* * * * * *", "hello world a b c"] {
        let e = schedule::parse(bad).unwrap_err();
        assert!(e.starts_with("spec.schedule"), "{bad}: {e}");
    }
    assert!(schedule::parse("0 3 * * 1-5").is_ok());
}
