//! A cluster's status, the one record every capability writes through:
//! computed from an observation by the pure decisions in `decide/` and applied
//! under the lifecycle's (or, for scaling records, scaling's) field manager.

pub mod decide;

use etcd_operator_api::{
    EtcdCluster,
    cluster::{ClusterPhase, EtcdClusterStatus, RestorePhase},
};
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use k8s_openapi::api::apps::v1::StatefulSet;

use crate::{
    ClusterOutcome, ServiceError,
    core::Core,
    core::cluster_ref,
    observe::Observation,
    plan::{DesireInputs, RolloutDecision, desire},
    refusal::Refusable,
    status::decide::{ScalingRecord, StatusInputs, compute_status},
    validation::validate_spec,
};

impl Core {
    /// Computes the status from an observation and applies it (see [`Self::write_observed`]).
    pub(crate) async fn record_status(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        spec_check: &Result<(), etcd_operator_common::Violations>,
        rollout: &RolloutDecision,
    ) -> Result<ClusterOutcome, ServiceError> {
        self.write_observed(cluster, observation, StatusWrite::new(cluster, spec_check, rollout)).await
    }

    /// Writes a status computed from an observation of `before` that took time (members down
    /// answer late). The write lands only onto `before` as read; if another write came in between
    /// (409), the cluster is read again: when another writer recorded a newer picture meanwhile
    /// (scaling's "Running, 4 of 4 ready" as a restart ends), that stands and this caller looks
    /// again soon, instead of setting the cluster back to what it saw while members were
    /// starting; otherwise the write lands onto the object as read again (409 if one comes between
    /// again). Nothing is read again when nothing came between: a read per call was a fifth of
    /// what a thousand new clusters asked of the API server.
    pub(crate) async fn write_observed(
        &self,
        before: &EtcdCluster,
        observation: &Observation,
        write: StatusWrite<'_>,
    ) -> Result<ClusterOutcome, ServiceError> {
        let write = write.only_onto_read();
        match self.write_status(before, observation, write).await {
            Err(ServiceError::Kubernetes(e)) if e.is_conflict() => {}
            written => return written,
        }
        let latest = match self.read_again(before).await? {
            ReadAgain::Recorded(out) => {
                return Ok(ClusterOutcome { requeue_after: Some(decide::requeue::CONVERGING), ..*out });
            }
            ReadAgain::Unchanged(latest) => *latest,
        };
        // The generation acted on (a newer spec is the next call's), at the version read now.
        let mut onto = before.clone();
        onto.metadata.resource_version = latest.metadata.resource_version;
        self.write_status(&onto, observation, write).await
    }

    /// Computes the status and applies it (as scaling when scaling records, else as the lifecycle).
    pub(crate) async fn write_status(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
        write: StatusWrite<'_>,
    ) -> Result<ClusterOutcome, ServiceError> {
        let StatusWrite { spec_check, rollout, scaling, restore, only_onto_read } = write;
        let r = cluster_ref(cluster);
        let names = self.names_of(cluster);
        let now = now_rfc3339();
        let status = compute_status(&StatusInputs {
            restore,
            scaling,
            cluster,
            names: &names,
            observation,
            spec_check,
            rollout,
            now: &now,
        });
        // What is written leaves out scaling's fields unless scaling writes; what is
        // compared and returned is the whole status, with scaling's fields as recorded.
        let mut whole = status.clone();
        whole.maintenance = cluster.status.as_ref().and_then(|s| s.maintenance.clone());
        whole.certificate_authority = cluster.status.as_ref().and_then(|s| s.certificate_authority.clone());
        whole.transport = cluster.status.as_ref().and_then(|s| s.transport.clone());
        if let ScalingRecord::Now { .. } = scaling {
            whole.restore = restore.cloned();
        }
        if let ScalingRecord::Unchanged = scaling {
            let previous = cluster.status.as_ref();
            whole.stopped = previous.and_then(|s| s.stopped.clone());
            let scaling_op = previous.and_then(|s| s.operation.clone()).filter(crate::operation::is_scaling);
            if scaling_op.is_some() {
                whole.operation = scaling_op;
            }
        }
        let key = (r.namespace.clone(), r.name.clone());
        let now = std::time::Instant::now();
        let last_written = self.status_written.get(&key);
        if decide::counters::worth_writing(cluster.status.as_ref(), &whole, last_written, now) {
            let writer = match scaling {
                ScalingRecord::Unchanged => &self.clusters,
                ScalingRecord::Now { .. } => &self.scaling_writer,
            };
            let read_at = cluster.metadata.resource_version.as_deref().filter(|_| only_onto_read);
            let began = std::time::Instant::now();
            let written = writer.apply_status(&r.namespace, &r.name, &status, read_at).await?;
            self.reads.saw(began, &written);
            self.status_written.insert(key, now);
        }
        let mut out = outcome(cluster, whole);
        let pods = observation.pods.as_deref();
        out.requeue_after =
            out.requeue_after.map(|after| decide::requeue::unless_no_member_runs(after, pods));
        Ok(out)
    }

    /// Observes the cluster and records its status (what GetClusterStatus answers when fresh).
    pub(crate) async fn current_status(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        Ok(self.status_and_observation(r).await?.0)
    }

    /// Observes the cluster and records its status (what GetClusterStatus answers when fresh). also returning
    /// what was observed (for decisions that follow).
    pub(crate) async fn status_and_observation(
        &self,
        r: &ClusterRef,
    ) -> Result<(ClusterOutcome, Observation), ServiceError> {
        // NOT_FOUND for an unknown cluster before anything is observed.
        let before = self.get(r).await?;
        self.status_and_observation_of(before, None).await
    }

    /// [`Self::status_and_observation`] of a cluster the caller read, with etcd's authentication
    /// as the caller found it (the health probe).
    pub(crate) async fn status_and_observation_of(
        &self,
        before: EtcdCluster,
        auth: Option<crate::security::decide::auth::AuthReport>,
    ) -> Result<(ClusterOutcome, Observation), ServiceError> {
        let r = &cluster_ref(&before);
        let sts = self.managers(&r.namespace).statefulsets.get(&self.names(r).statefulset()).await?;
        let mut observation = self.observe_with(&before, sts.as_ref()).await;
        observation.auth = auth;
        let out = self.record_observation(&before, sts.as_ref(), &observation).await?;
        Ok((out, observation))
    }

    /// Records the status `observation` shows of `before` and its StatefulSet `sts` as read: what
    /// a step that finds nothing to do answers, from what it already gathered.
    pub(crate) async fn record_observation(
        &self,
        before: &EtcdCluster,
        sts: Option<&StatefulSet>,
        observation: &Observation,
    ) -> Result<ClusterOutcome, ServiceError> {
        let r = &cluster_ref(before);
        let existing_cm = self.managers(&r.namespace).config_maps.get(&self.names(r).config_map()).await?;
        // What the lifecycle desires, so both report the same spec check (its rules, and what
        // the running StatefulSet cannot change) and the same rollout progress; otherwise a
        // refused change would read as Invalid after a reconcile and as Running after a probe.
        let (spec_check, rollout) = match (sts, validate_spec(&before.spec)) {
            (Some(sts), Ok(())) => match desire(&DesireInputs {
                ctx: &self.template(before),
                cluster: before,
                existing: (Some(sts), existing_cm.as_ref()),
                observation,
                fixed: None,
            })? {
                Refusable::Usable(desired) => (Ok(()), desired.rollout),
                Refusable::Refused(v) => (Err(v), RolloutDecision::Proceed),
            },
            (_, check) => (check, RolloutDecision::Proceed),
        };
        // Observing takes seconds while members are down: the write lands only onto what was
        // read, and a newer status recorded meanwhile stands.
        let write = StatusWrite::new(before, &spec_check, &rollout);
        self.write_observed(before, observation, write).await
    }
}

/// The cluster read again after a slow observation.
pub(crate) enum ReadAgain {
    /// No status was recorded meanwhile: a write may land onto this read.
    Unchanged(Box<EtcdCluster>),
    /// Another writer recorded one, from an observation that began later than the caller's or
    /// overlapped it: writing would set the cluster back to an older picture (a Running cluster
    /// read as Updating again). What is recorded stands.
    Recorded(Box<ClusterOutcome>),
}

impl Core {
    /// Reads `before`'s cluster again and says whether a status was recorded since.
    async fn read_again(&self, before: &EtcdCluster) -> Result<ReadAgain, ServiceError> {
        let latest = self.get(&cluster_ref(before)).await?;
        if latest.status == before.status {
            return Ok(ReadAgain::Unchanged(Box::new(latest)));
        }
        let recorded = latest.status.clone().unwrap_or_default();
        Ok(ReadAgain::Recorded(Box::new(outcome(&latest, recorded))))
    }
}

/// What a caller is told of `status`: converged (no requeue) only when nothing is in progress.
pub(crate) fn outcome(cluster: &EtcdCluster, status: EtcdClusterStatus) -> ClusterOutcome {
    // A restore still recorded as in progress is looked at again: another writer may have
    // finished it while this one wrote from an older read.
    let restoring = status.restore.as_ref().is_some_and(|r| r.phase == RestorePhase::Restoring);
    let converged = !restoring
        && matches!(
            status.phase,
            ClusterPhase::Running | ClusterPhase::Stopped | ClusterPhase::Paused | ClusterPhase::Invalid
        );
    ClusterOutcome {
        generation: cluster.metadata.generation.unwrap_or_default(),
        desired_size: cluster.spec.size,
        requeue_after: (!converged)
            .then(|| decide::requeue::converging(&status, etcd_operator_common::time::now())),
        status,
    }
}

/// What a status write is computed from, and whether it may only land on the object as read.
#[must_use]
#[derive(Clone, Copy)]
pub(crate) struct StatusWrite<'a> {
    pub(crate) spec_check: &'a Result<(), etcd_operator_common::Violations>,
    pub(crate) rollout: &'a RolloutDecision,
    pub(crate) scaling: ScalingRecord<'a>,
    pub(crate) restore: Option<&'a etcd_operator_api::cluster::RestoreStatus>,
    pub(crate) only_onto_read: bool,
}

impl<'a> StatusWrite<'a> {
    /// A write of `cluster`'s status, its restore record and scaling's fields as recorded.
    pub(crate) fn new(
        cluster: &'a EtcdCluster,
        spec_check: &'a Result<(), etcd_operator_common::Violations>,
        rollout: &'a RolloutDecision,
    ) -> Self {
        let restore = cluster.status.as_ref().and_then(|s| s.restore.as_ref());
        Self { spec_check, rollout, scaling: ScalingRecord::Unchanged, restore, only_onto_read: false }
    }

    /// Scaling's operation and stop record as they are now (written as scaling).
    pub(crate) fn scaling(self, scaling: ScalingRecord<'a>) -> Self {
        Self { scaling, ..self }
    }

    /// The restore record the caller decided on.
    pub(crate) fn restore(self, restore: Option<&'a etcd_operator_api::cluster::RestoreStatus>) -> Self {
        Self { restore, ..self }
    }

    /// Only onto the object as read: a write in between makes it fail (409) instead of undoing it.
    pub(crate) fn only_onto_read(self) -> Self {
        Self { only_onto_read: true, ..self }
    }
}
