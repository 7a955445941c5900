//! Schedules: start a backup when one is due (one at a time), apply the
//! retention policy, and record when the next run is. Backup names are
//! derived from the scheduled time, so two replicas starting the same run
//! create the same object, once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use etcd_operator_api::{
    Condition, ConditionStatus, EtcdBackup, EtcdBackupSchedule, EtcdBackupScheduleStatus, EtcdBackupSpec,
    backup::BackupPhase, condition::merge_conditions,
};
use etcd_operator_common::{FieldViolation, Violations, duration::parse_duration, time::now_rfc3339};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use super::{BackupService, record::BackupRecord};
use crate::{
    ServiceError, backup::decide::retention, backup::decide::retention::BackupEntry, backup::decide::schedule,
};

/// Label on every EtcdBackup a schedule creates.
pub const SCHEDULE_LABEL: &str = "etcd.operator.dev/schedule";

/// Longest schedule name: its backups are `<name>-<yyyymmddhhmm>` and it is a label value.
const MAX_NAME: usize = 50;

/// Result of one schedule reconcile.
#[derive(Clone, Debug)]
pub struct ScheduleOutcome {
    /// Status as recorded.
    pub status: EtcdBackupScheduleStatus,
    /// Backup started by this call.
    pub started: Option<String>,
    /// Backups deleted by retention.
    pub pruned: Vec<String>,
    /// When to call again.
    pub requeue_after: Duration,
}

/// Result of applying retention.
#[derive(Clone, Debug, Default)]
pub struct PruneOutcome {
    /// Backups deleted (data and object).
    pub deleted: Vec<String>,
    /// Successful backups kept, newest first.
    pub kept: Vec<String>,
}

/// How often a schedule with a backup in progress is looked at (its completion also triggers a look).
const ACTIVE_REQUEUE: Duration = Duration::from_secs(30);
/// Longest wait between looks, so a changed clock or a missed event is caught.
const MAX_REQUEUE: Duration = Duration::from_secs(3600);

impl BackupService {
    /// Starts a due backup, applies retention and records the schedule's status.
    #[tracing::instrument(name = "ReconcileSchedule", skip_all, fields(schedule.namespace = %namespace, schedule.name = %name, operation = "ReconcileSchedule"))]
    pub async fn reconcile_schedule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<ScheduleOutcome, ServiceError> {
        let schedule = self.get_schedule(namespace, name).await?;
        let mut status = schedule.status.clone().unwrap_or_default();
        let cron = match check(&schedule) {
            Ok(cron) => cron,
            Err(v) => {
                let msg = v.to_string();
                self.write_schedule(&schedule, status, ConditionStatus::False, "InvalidSchedule", &msg)
                    .await?;
                return Err(ServiceError::InvalidArgument(v));
            }
        };
        let now = etcd_operator_common::time::now();
        let backups = self.backups(namespace).list(&format!("{SCHEDULE_LABEL}={name}")).await?;
        let running = backups.iter().find(|b| !terminal(b)).map(ResourceExt::name_any);
        let created = timestamp(schedule.creation_timestamp().map(|t| t.0.to_string())).unwrap_or(now);
        let last_run = timestamp(status.last_schedule_time.clone());
        let step =
            schedule::next_step(&cron, schedule.spec.suspend, last_run, created, running.is_some(), now);

        let mut started = None;
        if let Some(at) = step.run {
            let backup = scheduled_backup(&schedule, at);
            self.backups(namespace).apply(&backup).await?;
            tracing::info!(backup = backup.name_any(), scheduled = %at, "scheduled backup started");
            status.last_schedule_time = Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            started = Some(backup.name_any());
        }
        let pruned = self.prune_listed(&schedule, &backups, now).await?;
        status.active = started.clone().or(running);
        status.kept_backups = pruned.kept;
        status.last_successful_time = backups
            .iter()
            .filter_map(|b| b.status.as_ref().filter(|s| s.phase == BackupPhase::Succeeded))
            .filter_map(|s| s.completion_time.clone())
            .max()
            .or(status.last_successful_time);
        status.next_schedule_time = step.next.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let (reason, msg) = match (&status.next_schedule_time, schedule.spec.suspend) {
            (_, true) => ("Suspended", "spec.suspend is true: no backups start".to_owned()),
            (Some(next), _) => ("Scheduled", format!("next backup at {next}")),
            (None, _) => ("Scheduled", "no further occurrence of the schedule".to_owned()),
        };
        let status = self.write_schedule(&schedule, status, ConditionStatus::True, reason, &msg).await?;
        let until_next = step.next.map(|t| (t - now).to_std().unwrap_or_default() + Duration::from_secs(1));
        let requeue_after = if status.active.is_some() {
            ACTIVE_REQUEUE
        } else {
            until_next.unwrap_or(MAX_REQUEUE).min(MAX_REQUEUE)
        };
        Ok(ScheduleOutcome { status, started, pruned: pruned.deleted, requeue_after })
    }

    /// Applies a schedule's retention policy now.
    #[tracing::instrument(name = "PruneBackups", skip_all, fields(schedule.namespace = %namespace, schedule.name = %name, operation = "PruneBackups"))]
    pub async fn prune_backups(&self, namespace: &str, name: &str) -> Result<PruneOutcome, ServiceError> {
        let schedule = self.get_schedule(namespace, name).await?;
        check(&schedule).map_err(ServiceError::InvalidArgument)?;
        let backups = self.backups(namespace).list(&format!("{SCHEDULE_LABEL}={name}")).await?;
        self.prune_listed(&schedule, &backups, etcd_operator_common::time::now()).await
    }

    async fn prune_listed(
        &self,
        schedule: &EtcdBackupSchedule,
        backups: &[EtcdBackup],
        now: DateTime<Utc>,
    ) -> Result<PruneOutcome, ServiceError> {
        let entries: Vec<BackupEntry> = backups.iter().map(entry).collect();
        let policy = &schedule.spec.retention;
        let max_age = policy.max_age.as_deref().map(parse_duration).transpose().map_err(|e| {
            ServiceError::InvalidArgument(Violations(vec![FieldViolation::new("spec.retention.maxAge", e)]))
        })?;
        let decided = retention::apply(&entries, policy.max_count.max(1) as usize, max_age, now);
        let namespace = schedule.namespace().unwrap_or_default();
        for name in &decided.expired {
            let Some(backup) = backups.iter().find(|b| &b.name_any() == name) else { continue };
            self.delete_backup_data(&namespace, backup).await?;
            self.backups(&namespace).delete(name).await?;
            tracing::info!(backup = name, "pruned by retention");
        }
        Ok(PruneOutcome { deleted: decided.expired, kept: decided.kept })
    }

    /// Deletes a backup's stored files: metadata first, so a half-deleted backup never looks complete.
    async fn delete_backup_data(&self, namespace: &str, backup: &EtcdBackup) -> Result<(), ServiceError> {
        let Some(key) = backup.status.as_ref().and_then(|s| s.key.clone()) else { return Ok(()) };
        let Some(dir) = key.strip_suffix("/snapshot.db") else { return Ok(()) };
        let storage = self.open_storage(namespace, &backup.spec.storage, "spec.storage").await?;
        for k in [BackupRecord::metadata_key(dir), BackupRecord::checksum_key(dir), key.clone()] {
            storage.delete(&k).await?;
        }
        Ok(())
    }

    async fn get_schedule(&self, namespace: &str, name: &str) -> Result<EtcdBackupSchedule, ServiceError> {
        self.schedules(namespace).get(name).await?.ok_or_else(|| ServiceError::NotFound {
            kind: "EtcdBackupSchedule",
            name: format!("{namespace}/{name}"),
        })
    }

    async fn write_schedule(
        &self,
        schedule: &EtcdBackupSchedule,
        mut status: EtcdBackupScheduleStatus,
        condition: ConditionStatus,
        reason: &str,
        message: &str,
    ) -> Result<EtcdBackupScheduleStatus, ServiceError> {
        let fresh = vec![Condition::new("Ready", condition, reason, message)];
        status.conditions = merge_conditions(&status.conditions, fresh, &now_rfc3339());
        let namespace = schedule.namespace().unwrap_or_default();
        self.schedules(&namespace).apply_status(&schedule.name_any(), &status).await?;
        Ok(status)
    }
}

/// The rules admission cannot check: the cron expression itself and the name length.
fn check(schedule: &EtcdBackupSchedule) -> Result<croner::Cron, Violations> {
    let mut v = Violations::default();
    v.check(
        schedule.name_any().len() <= MAX_NAME,
        "metadata.name",
        format!("must be at most {MAX_NAME} characters (backups are named <schedule>-<yyyymmddhhmm>)"),
    );
    let cron = schedule::parse(&schedule.spec.schedule).map_err(|e| v.push("spec.schedule", e)).ok();
    v.into_result()?;
    Ok(cron.expect("checked"))
}

fn terminal(b: &EtcdBackup) -> bool {
    b.status.as_ref().is_some_and(|s| matches!(s.phase, BackupPhase::Succeeded | BackupPhase::Failed))
}

fn timestamp(t: Option<String>) -> Option<DateTime<Utc>> {
    t.and_then(|t| t.parse().ok())
}

fn entry(b: &EtcdBackup) -> BackupEntry {
    let status = b.status.clone().unwrap_or_default();
    BackupEntry {
        name: b.name_any(),
        phase: status.phase,
        created: timestamp(b.creation_timestamp().map(|t| t.0.to_string())).unwrap_or_default(),
        completed: timestamp(status.completion_time),
    }
}

/// The EtcdBackup for the run scheduled at `at`, owned by the schedule.
fn scheduled_backup(schedule: &EtcdBackupSchedule, at: DateTime<Utc>) -> EtcdBackup {
    let name = format!("{}-{}", schedule.name_any(), at.format("%Y%m%d%H%M"));
    let owner = OwnerReference {
        api_version: EtcdBackupSchedule::api_version(&()).into_owned(),
        kind: EtcdBackupSchedule::kind(&()).into_owned(),
        name: schedule.name_any(),
        uid: schedule.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let labels = [
        (SCHEDULE_LABEL.to_owned(), schedule.name_any()),
        ("etcd.operator.dev/cluster".to_owned(), schedule.spec.cluster_name.clone()),
        ("app.kubernetes.io/managed-by".to_owned(), "etcd-operator".to_owned()),
    ];
    let mut backup = EtcdBackup::new(
        &name,
        EtcdBackupSpec {
            cluster_name: schedule.spec.cluster_name.clone(),
            storage: schedule.spec.storage.clone(),
        },
    );
    backup.metadata = ObjectMeta {
        name: Some(name),
        namespace: schedule.namespace(),
        labels: Some(labels.into_iter().collect()),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    };
    backup
}
