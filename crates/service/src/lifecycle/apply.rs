//! Create and update: apply the owned objects as the plan says.

use etcd_operator_api::{EtcdCluster, EtcdClusterSpec};
use etcd_operator_common::ClusterRef;
use etcd_operator_resource::templates::{
    client_service, config_map, peer_service, pod_disruption_budget, statefulset,
};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::ConfigMap};

use std::time::Duration;

use etcd_operator_api::cluster::RestorePhase;

use crate::{ClusterOutcome, ClusterService};
use crate::{
    ServiceError,
    observe::{EtcdState, Observation, StatefulSetState},
    plan::{RolloutDecision, decide_rollout, keep_claims_while_stopped, plan_apply, template_changed},
    restore::RestoreGate,
    validation::{immutable_violations, validate_spec},
};

impl ClusterService {
    /// Brings the owned objects in line with the spec, one safe step per call.
    pub(crate) async fn reconcile(&self, r: &ClusterRef) -> Result<ClusterOutcome, ServiceError> {
        let cluster = self.get(r).await?;
        if cluster.metadata.deletion_timestamp.is_some() {
            return Err(ServiceError::FailedPrecondition(format!("EtcdCluster {r} is being deleted")));
        }
        let m = self.managers(&r.namespace);
        let ctx = self.template(&cluster);
        let existing_sts = m.statefulsets.get(&ctx.names.statefulset()).await?;
        let mut observation = self.observe_with(r, existing_sts.as_ref()).await;
        let mut spec_check = validate_spec(&cluster.spec);
        if cluster.spec.paused || spec_check.is_err() {
            // Nothing is applied for a paused or invalid spec; the status says why.
            return self.record_status(&cluster, &observation, &spec_check, &RolloutDecision::Proceed).await;
        }

        // Boxed: debug builds keep every await's state inline, and this one is large.
        let restore = match Box::pin(self.restore_gate(&cluster, existing_sts.is_some(), &observation))
            .await?
        {
            RestoreGate::NotRestoring => None,
            RestoreGate::Wait(refusal) => {
                // Nothing is created from an unusable backup; look again later (it may finish meanwhile).
                let later = crate::restore::decide::look_again_after(&refusal.reason);
                let rollout = RolloutDecision::Proceed;
                let none = Default::default();
                let out = self
                    .record_status_full(&cluster, &observation, &spec_check, &rollout, none, Some(&refusal))
                    .await?;
                return Ok(ClusterOutcome { requeue_after: Some(later), ..out });
            }
            RestoreGate::Proceed(status) => Some(status),
        };
        let existing_cm = m.config_maps.get(&ctx.names.config_map()).await?;
        let plan = plan_apply(
            &ctx.names,
            cluster.spec.size,
            cluster.formed() || answered(&observation),
            existing_sts.as_ref(),
            existing_cm.as_ref(),
        );
        let mut desired = statefulset(&ctx, plan.replicas, &plan.bootstrap)?;
        if keep_claims_while_stopped(&cluster)
            && let Some(policy) =
                desired.spec.as_mut().and_then(|s| s.persistent_volume_claim_retention_policy.as_mut())
        {
            policy.when_scaled = Some("Retain".into());
        }
        if let Some(existing) = &existing_sts
            && let Err(violations) = immutable_violations(existing, &desired)
        {
            spec_check = Err(violations);
            return self.record_status(&cluster, &observation, &spec_check, &RolloutDecision::Proceed).await;
        }

        let changed = existing_sts.as_ref().is_some_and(|e| template_changed(e, &desired));
        let rollout = decide_rollout(changed, cluster.formed(), &observation);
        let proceed = rollout == RolloutDecision::Proceed;
        self.apply_objects(&ctx, &plan, proceed.then_some(&desired), &mut observation).await?;
        let mut out = self
            .record_status_full(
                &cluster,
                &observation,
                &spec_check,
                &rollout,
                Default::default(),
                restore.as_ref(),
            )
            .await?;
        if restore.is_some_and(|r| r.phase == RestorePhase::Restoring) {
            // Members restoring: come back to record completion (and remove the token).
            out.requeue_after =
                Some(out.requeue_after.unwrap_or(Duration::from_secs(5)).min(Duration::from_secs(5)));
        }
        Ok(out)
    }

    /// Applies the Services, the PDB and, when the rollout may proceed (`desired`), the ConfigMap
    /// and StatefulSet, noting in `observation` what was just asked for.
    async fn apply_objects(
        &self,
        ctx: &etcd_operator_resource::templates::TemplateContext<'_>,
        plan: &crate::plan::ApplyPlan,
        desired: Option<&StatefulSet>,
        observation: &mut Observation,
    ) -> Result<(), ServiceError> {
        let m = self.managers(&ctx.names.namespace);
        m.services.apply(&peer_service(ctx)?).await?;
        m.services.apply(&client_service(ctx)?).await?;
        if let Some(desired) = desired {
            // The ConfigMap is read when a member starts, so it changes together with the template.
            m.config_maps.apply(&config_map(ctx, &plan.bootstrap)?).await?;
            let applied = m.statefulsets.update(desired).await?;
            observation.statefulset = Some(StatefulSetState::of(&applied));
            if plan.replicas > 0 && matches!(observation.etcd, EtcdState::NotExpected) {
                // Pods were only just asked for; etcd cannot have answered yet.
                observation.etcd = EtcdState::Unreachable("members have just been created".into());
            }
        }
        if plan.replicas > 0 {
            m.pdbs.apply(&pod_disruption_budget(ctx, plan.replicas)?).await?;
        } else {
            m.pdbs.delete(&ctx.names.pdb()).await?;
        }
        Ok(())
    }

    /// Whether the pod template would change, and whether that may roll out now.
    pub(crate) fn rollout_decision(
        &self,
        cluster: &EtcdCluster,
        existing_sts: &StatefulSet,
        existing_cm: Option<&ConfigMap>,
        observation: &Observation,
    ) -> Result<RolloutDecision, ServiceError> {
        let ctx = self.template(cluster);
        let plan = plan_apply(
            &ctx.names,
            cluster.spec.size,
            cluster.formed() || answered(observation),
            Some(existing_sts),
            existing_cm,
        );
        let desired = statefulset(&ctx, plan.replicas, &plan.bootstrap)?;
        Ok(decide_rollout(template_changed(existing_sts, &desired), cluster.formed(), observation))
    }

    /// Refuses a new spec that changes what a running cluster cannot change.
    pub(crate) async fn check_immutable(
        &self,
        existing: &EtcdCluster,
        spec: &EtcdClusterSpec,
    ) -> Result<(), ServiceError> {
        let r = crate::core::cluster_ref(existing);
        let m = self.managers(&r.namespace);
        let names = self.names(&r);
        let Some(current) = m.statefulsets.get(&names.statefulset()).await? else { return Ok(()) };
        let proposed = EtcdCluster { spec: spec.clone(), ..existing.clone() };
        let ctx = self.template(&proposed);
        let replicas = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(spec.size);
        let plan = plan_apply(&names, replicas, existing.formed(), Some(&current), None);
        let desired = statefulset(&ctx, replicas, &plan.bootstrap)?;
        immutable_violations(&current, &desired)
            .map_err(|v| ServiceError::FailedPrecondition(format!("immutable fields changed: {v}")))
    }
}

/// Whether etcd answers now: the cluster has formed, even before its status records the ID.
fn answered(observation: &Observation) -> bool {
    matches!(&observation.etcd, EtcdState::Reached(view) if view.cluster_id != 0)
}
