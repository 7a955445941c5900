//! Create and update: apply the objects the spec asks for ([`desire`]).

use etcd_operator_api::{EtcdCluster, EtcdClusterSpec};
use etcd_operator_common::ClusterRef;
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::ConfigMap};

use crate::{
    ClusterOutcome, ServiceError,
    lifecycle::{
        LifecycleService,
        decide::{PROVIDED_SECRETS, look_again, waits_for_provided_secrets},
    },
    observe::{EtcdState, Observation, StatefulSetState},
    plan::{DesireInputs, Desired, RolloutDecision, desire},
    refusal::Refusable,
    restore::RestoreGate,
    status::StatusWrite,
    validation::validate_spec,
};

impl LifecycleService {
    /// Brings the owned objects in line with the spec, one safe step per call: read, desire
    /// (pure), apply, record.
    pub(crate) async fn reconcile(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        let mut cluster = self.core.get(r).await?;
        if cluster.metadata.deletion_timestamp.is_some() {
            return Err(ServiceError::FailedPrecondition(format!("EtcdCluster {r} is being deleted")));
        }
        let spec_check = validate_spec(&cluster.spec);
        if !cluster.spec.paused && spec_check.is_ok() {
            // Before the members that mount them; renewals too, so the status reads them fresh.
            self.security.ensure(&cluster).await?;
            // A CA rotation's next steps; a new trust recorded in status goes into the pod template.
            if self.security.rotate(&cluster, false).await? {
                cluster = self.core.get(r).await?;
            }
            // A move between plaintext and TLS: the phase recorded decides the pod template.
            if self.security.move_transport(&cluster).await? {
                cluster = self.core.get(r).await?;
            }
        }
        let m = self.core.managers(&r.namespace);
        let ctx = self.core.template(&cluster);
        let existing_sts = m.statefulsets.get(&ctx.names.statefulset()).await?;
        let mut observation = self.core.observe_with(&cluster, existing_sts.as_ref()).await;
        let proceed = RolloutDecision::Proceed;
        // Nothing is read or applied for a paused or invalid spec; the status says why.
        if cluster.spec.paused || spec_check.is_err() {
            return self.core.record_status(&cluster, &observation, &spec_check, &proceed).await;
        }
        if existing_sts.is_none() && waits_for_provided_secrets(&cluster) {
            // CertificatesReady says which Secret or key is missing.
            let out = self.core.record_status(&cluster, &observation, &spec_check, &proceed).await?;
            return Ok(ClusterOutcome { requeue_after: Some(PROVIDED_SECRETS), ..out });
        }
        // Boxed: debug builds keep every await's state inline, and this one is large.
        let gate = self.restore.restore_gate(&cluster, existing_sts.is_some(), &observation);
        let restore = match Box::pin(gate).await? {
            RestoreGate::NotRestoring => None,
            RestoreGate::Wait(refusal) => {
                // Nothing is created from an unusable backup; look again later (it may finish meanwhile).
                let later = crate::restore::decide::look_again_after(&refusal.reason);
                let check = Ok(());
                let write = StatusWrite::new(&cluster, &check, &proceed).restore(Some(&refusal));
                let out = self.core.write_observed(&cluster, &observation, write).await?;
                return Ok(ClusterOutcome { requeue_after: Some(later), ..out });
            }
            RestoreGate::Proceed(status) => Some(status),
        };
        let existing_cm = m.config_maps.get(&ctx.names.config_map()).await?;
        let desired = desire(&DesireInputs {
            ctx: &ctx,
            cluster: &cluster,
            existing: (existing_sts.as_ref(), existing_cm.as_ref()),
            observation: &observation,
            fixed: None,
        })?;
        let desired = match desired {
            // What the running StatefulSet cannot change: nothing is applied.
            Refusable::Refused(v) => {
                return self.core.record_status(&cluster, &observation, &Err(v), &proceed).await;
            }
            Refusable::Usable(desired) => desired,
        };
        let existing = (existing_sts.as_ref(), existing_cm.as_ref());
        self.apply_objects(r, &desired, existing, &mut observation).await?;
        let check = Ok(());
        let write = StatusWrite::new(&cluster, &check, &desired.rollout).restore(restore.as_ref());
        let out = self.core.write_observed(&cluster, &observation, write).await?;
        let rotating = cluster.certificate_authority().is_some_and(|c| c.rotation.is_some())
            || cluster.transport_move().is_some();
        Ok(ClusterOutcome { requeue_after: look_again(out.requeue_after, restore.as_ref(), rotating), ..out })
    }

    /// Applies the Services, the PDB and, when the rollout may proceed, the ConfigMap and
    /// StatefulSet (unless they are as this process left them: `existing` as read), noting in
    /// `observation` what was just asked for.
    async fn apply_objects(
        &self,
        r: &ClusterRef,
        desired: &Desired,
        (existing_sts, existing_cm): (Option<&StatefulSet>, Option<&ConfigMap>),
        observation: &mut Observation,
    ) -> Result<(), ServiceError> {
        let m = self.core.managers(&r.namespace);
        for service in &desired.services {
            self.apply_read_first(&m.services, service).await?;
        }
        if desired.rollout == RolloutDecision::Proceed {
            // The ConfigMap is read when a member starts, so it changes together with the template.
            let cm = &desired.config_map;
            self.apply_unless_unchanged(cm, existing_cm, || m.config_maps.apply(cm)).await?;
            // Members mount it (the restore agent verifies the API with it).
            if let Some(ca) = &desired.api_ca {
                self.apply_read_first(&m.config_maps, ca).await?;
            }
            let sts = &desired.statefulset;
            // Skipped: the StatefulSet as observed is the one that stands.
            let applied = self.apply_unless_unchanged(sts, existing_sts, || m.statefulsets.update(sts));
            if let Some(applied) = applied.await? {
                observation.statefulset = Some(StatefulSetState::of(&applied));
                if desired.plan.replicas > 0 && matches!(observation.etcd, EtcdState::NotExpected) {
                    // Pods were only just asked for; etcd cannot have answered yet.
                    observation.etcd = EtcdState::Unreachable("members have just been created".into());
                }
            }
        }
        self.apply_policies(r, desired).await
    }

    /// Applies (or deletes) the PodDisruptionBudget and the members' NetworkPolicy.
    async fn apply_policies(&self, r: &ClusterRef, desired: &Desired) -> Result<(), ServiceError> {
        let m = self.core.managers(&r.namespace);
        match &desired.pdb {
            Some(pdb) => drop(self.apply_read_first(&m.pdbs, pdb).await?),
            None => drop(m.pdbs.delete(&self.core.names(r).pdb()).await?),
        }
        match &desired.network_policy {
            Some(policy) => drop(m.network_policies.apply(policy).await?),
            // Only where the spec turns it off: the operator's default being off costs no call.
            None if desired.network_policy_off => {
                m.network_policies.delete(&self.core.names(r).network_policy()).await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Refuses a new spec that changes what a running cluster cannot change, or moves its version
    /// where etcd cannot go from what the StatefulSet runs.
    pub(crate) async fn check_immutable(
        &self,
        existing: &EtcdCluster,
        spec: &EtcdClusterSpec,
    ) -> Result<(), ServiceError> {
        let r = crate::core::cluster_ref(existing);
        let m = self.core.managers(&r.namespace);
        let names = self.core.names(&r);
        let Some(current) = m.statefulsets.get(&names.statefulset()).await? else { return Ok(()) };
        let proposed = EtcdCluster { spec: spec.clone(), ..existing.clone() };
        // Nothing observed: only what the StatefulSet cannot change is asked here.
        let observation = Observation::default();
        let desired = desire(&DesireInputs {
            ctx: &self.core.template(&proposed),
            cluster: &proposed,
            existing: (Some(&current), None),
            observation: &observation,
            fixed: None,
        })?;
        match desired {
            Refusable::Usable(_) => Ok(()),
            Refusable::Refused(v) => Err(ServiceError::FailedPrecondition(format!(
                "the running cluster cannot take this spec: {v}"
            ))),
        }
    }
}
