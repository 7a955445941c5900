//! The backup controller: EtcdBackups are taken and EtcdBackupSchedules run
//! through the cluster-service's BackupService. Two kube-runtime Controllers
//! in one process, under one Lease: backups (new objects only; status writes
//! do not retrigger) and schedules (which own their backups, so a finished
//! backup brings its schedule back at once for status and retention).

use std::sync::Arc;

use etcd_operator_api::{EtcdBackup, EtcdBackupSchedule, backup::BackupPhase};
use etcd_operator_proto::v1alpha1 as pb;
use futures::StreamExt;
use kube::{
    ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        predicates, reflector, watcher,
    },
};

use super::{InitialLists, RESYNC, action, retry_after, scoped};
use crate::{ControllerError, runtime::Context};

fn backup_ref<K: ResourceExt>(object: &K) -> Result<pb::BackupRef, ControllerError> {
    let namespace = object
        .namespace()
        .ok_or_else(|| ControllerError::InvalidObject(format!("{} without namespace", object.name_any())))?;
    Ok(pb::BackupRef { namespace, name: object.name_any() })
}

/// Takes one backup; a finished one needs nothing more.
pub async fn reconcile_backup(backup: Arc<EtcdBackup>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    let finished = backup
        .status
        .as_ref()
        .is_some_and(|s| matches!(s.phase, BackupPhase::Succeeded | BackupPhase::Failed));
    if finished || backup.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    super::observed_object(&ctx, "EtcdBackup", &*backup, async {
        let req = pb::RunBackupRequest { backup: Some(backup_ref(&*backup)?) };
        let resp = ctx
            .rpc
            .call("BackupService", "RunBackup", |c| {
                let req = c.request(req.clone());
                async move { c.backup().run_backup(req).await }
            })
            .await?;
        let percent = resp.progress.as_ref().map_or(-1, |p| p.percent);
        tracing::info!(phase = resp.phase, attempts = resp.attempts, percent, "{}", resp.message);
        Ok(match resp.requeue.as_ref() {
            Some(r) if r.requeue => action(Some(r), RESYNC),
            _ => Action::await_change(),
        })
    })
    .await
}

/// Runs one schedule: the answer says when it is due next.
pub async fn reconcile_schedule(
    schedule: Arc<EtcdBackupSchedule>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    if schedule.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    super::observed_object(&ctx, "EtcdBackupSchedule", &*schedule, async {
        let req = pb::ReconcileScheduleRequest { schedule: Some(backup_ref(&*schedule)?) };
        let resp = ctx
            .rpc
            .call("BackupService", "ReconcileSchedule", |c| {
                let req = c.request(req.clone());
                async move { c.backup().reconcile_schedule(req).await }
            })
            .await?;
        if !resp.started_backup.is_empty() || !resp.pruned.is_empty() {
            tracing::info!(started = resp.started_backup, pruned = ?resp.pruned, next = resp.next_schedule_time, "schedule ran");
        }
        Ok(action(resp.requeue.as_ref(), RESYNC))
    })
    .await
}

fn error_policy<K>(_object: Arc<K>, error: &ControllerError, ctx: Arc<Context>) -> Action {
    tracing::warn!(controller = ctx.name, category = error.category(), "reconcile failed: {error}");
    Action::requeue(retry_after(error))
}

/// A Controller on `K` triggered by spec (generation) changes only, never by status writes;
/// `listed` is told of its first full list.
fn on_spec_changes<K>(ctx: &Context, listed: InitialLists) -> Controller<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let trigger = watcher(scoped::<K>(ctx), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| listed.saw(event))
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    Controller::for_stream(trigger, reader)
        .with_config(
            controller::Config::default().concurrency(ctx.config.concurrency).debounce(ctx.config.debounce),
        )
        .graceful_shutdown_on(ctx.stopping())
}

/// Runs both Controllers until shutdown or loss of leadership.
pub async fn run(ctx: Arc<Context>) {
    // Ready once both caches hold their first full list.
    let [backups_listed, schedules_listed] = InitialLists::expect(&ctx.synced);
    let backups = on_spec_changes::<EtcdBackup>(&ctx, backups_listed);
    let schedules = on_spec_changes::<EtcdBackupSchedule>(&ctx, schedules_listed)
        .owns(scoped::<EtcdBackup>(&ctx), watcher::Config::default());
    // The backups' and schedules' metrics, from the Controllers' caches: this controller's leader.
    ctx.exported.export_backups(schedules.store(), backups.store());
    tokio::join!(
        backups.run(reconcile_backup, error_policy, ctx.clone()).for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!("backup reconcile outcome: {e}");
            }
        }),
        schedules.run(reconcile_schedule, error_policy, ctx.clone()).for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!("schedule reconcile outcome: {e}");
            }
        }),
    );
    // No longer leading (or stopping): the next leader exports.
    ctx.exported.clear();
}
