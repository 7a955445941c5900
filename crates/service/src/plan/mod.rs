//! What the lifecycle applies: every object the spec asks for ([`desire`]),
//! with replicas, bootstrap configuration and whether a rollout may start.
//! Pure; the lifecycle, the status and a restore's preparation all read it.

use etcd_operator_api::EtcdCluster;
use etcd_operator_common::Violations;
use etcd_operator_resource::{
    ResourceError,
    names::ClusterNames,
    templates::{self, BootstrapConfig, InitialClusterState, TEMPLATE_HASH_ANNOTATION, TemplateContext},
};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Service},
    policy::v1::PodDisruptionBudget,
};

use crate::{
    observe::{EtcdState, Observation, StatefulSetState},
    refusal::Refusable,
    upgrade::decide::{GateInputs, gate},
    validation::{immutable_violations, validate_spec},
};

/// The objects' shape the lifecycle decided on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyPlan {
    /// StatefulSet replicas to apply.
    pub replicas: i32,
    /// Bootstrap configuration to record.
    pub bootstrap: BootstrapConfig,
}

/// Decides replicas and bootstrap configuration.
///
/// A new cluster bootstraps all `spec.size` members together. Once the
/// StatefulSet exists, the lifecycle never changes membership: replicas and
/// the recorded bootstrap stay as they are, and size changes are left to the
/// scaling service, which adds and removes members one safe step at a time.
///
/// Once the cluster has `formed`, the bootstrap says `existing`: a member
/// whose volume was lost then cannot bootstrap again. With `new`, members
/// that lost their data re-create the cluster's first state under the same
/// IDs, and a majority of them would elect a leader and serve an empty
/// cluster. It is also how members' init containers know the cluster formed.
pub fn plan_apply(
    names: &ClusterNames,
    size: i32,
    formed: bool,
    existing_sts: Option<&StatefulSet>,
    existing_cm: Option<&ConfigMap>,
) -> ApplyPlan {
    match existing_sts {
        None => ApplyPlan { replicas: size, bootstrap: BootstrapConfig::new_cluster(names, size) },
        Some(sts) => {
            let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(size);
            let mut bootstrap = existing_cm
                .and_then(BootstrapConfig::from_config_map)
                .unwrap_or_else(|| BootstrapConfig::new_cluster(names, replicas));
            if formed {
                bootstrap.state = InitialClusterState::Existing;
            }
            ApplyPlan { replicas, bootstrap }
        }
    }
}

/// Whether applying `desired` would change the pods (a rolling restart).
pub fn template_changed(existing: &StatefulSet, desired: &StatefulSet) -> bool {
    let hash = |s: &StatefulSet| {
        s.metadata.annotations.as_ref().and_then(|a| a.get(TEMPLATE_HASH_ANNOTATION)).cloned()
    };
    hash(existing) != hash(desired)
}

/// Whether a rolling restart may start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutDecision {
    /// Nothing to roll out, or safe to roll out.
    Proceed,
    /// Unsafe now; the reason says what must happen first.
    Wait(String),
}

/// A rollout restarts members one at a time, so it starts only when every
/// member is a healthy voter: one more member down must not cost quorum.
///
/// A cluster that never formed (no cluster ID recorded yet) has no data to
/// protect, and a broken first spec must stay fixable: it rolls out at once.
pub fn decide_rollout(changed: bool, formed: bool, observation: &Observation) -> RolloutDecision {
    if !changed || !formed {
        return RolloutDecision::Proceed;
    }
    let Some(sts) = &observation.statefulset else { return RolloutDecision::Proceed };
    if sts.replicas == 0 {
        return RolloutDecision::Proceed;
    }
    match &observation.etcd {
        EtcdState::Reached(view) => {
            let unhealthy: Vec<String> =
                view.members.iter().filter(|m| !m.healthy() || m.info.is_learner).map(|m| m.name()).collect();
            if !unhealthy.is_empty() && !mends_a_stopped_roll(&unhealthy, sts, observation) {
                RolloutDecision::Wait(format!(
                    "waiting for members {} to be healthy voting members before restarting any member",
                    unhealthy.join(", ")
                ))
            } else if view.members.len() as i32 != sts.replicas {
                RolloutDecision::Wait(format!(
                    "etcd has {} members but {} pods are expected; waiting for membership to settle",
                    view.members.len(),
                    sts.replicas
                ))
            } else {
                RolloutDecision::Proceed
            }
        }
        EtcdState::Unreachable(e) => RolloutDecision::Wait(format!("etcd is unreachable ({e})")),
        EtcdState::NotExpected => RolloutDecision::Proceed,
    }
}

/// Whether the members down are exactly those a roll already moved onto the newest template,
/// while others still run an older one: that template broke them, and a new one is how the roll
/// is mended. Applying it restarts nothing (`OnDelete`); the roll restarts the members down first
/// and no healthy one before they recover.
fn mends_a_stopped_roll(unhealthy: &[String], sts: &StatefulSetState, observation: &Observation) -> bool {
    let Some(pods) = &observation.pods else { return false };
    let newest = |name: &String| pods.iter().any(|p| p.name == *name && p.revision == sts.update_revision);
    let rolling = pods.iter().any(|p| p.revision != sts.update_revision);
    !sts.update_revision.is_empty() && rolling && unhealthy.iter().all(newest)
}

/// Whether the StatefulSet must keep claims on scale down whatever `whenScaled` says: while a
/// cluster is being stopped or is stopped (size 0), every member's data is kept for its restart.
pub fn keep_claims_while_stopped(cluster: &EtcdCluster) -> bool {
    let status = cluster.status.as_ref();
    cluster.spec.size == 0
        || status.is_some_and(|s| s.stopped.is_some())
        || status.and_then(|s| s.operation.as_ref()).is_some_and(|op| {
            op.type_ == crate::operation::OperationType::ScaleToZero
                || op.type_ == crate::operation::OperationType::RestartFromZero
        })
}

/// Every object the lifecycle wants the cluster to have, as the spec says now.
#[derive(Clone, Debug)]
pub struct Desired {
    /// Replicas and bootstrap configuration.
    pub plan: ApplyPlan,
    /// The StatefulSet.
    pub statefulset: StatefulSet,
    /// The bootstrap ConfigMap (read by members when they start).
    pub config_map: ConfigMap,
    /// The API's CA for the restore agent (mounted by members); `None` over plaintext.
    pub api_ca: Option<ConfigMap>,
    /// The headless peer Service and the client Service.
    pub services: [Service; 3],
    /// The PodDisruptionBudget; `None` when there are no members to protect (it is deleted).
    pub pdb: Option<PodDisruptionBudget>,
    /// The members' NetworkPolicy; `None` when neither the spec nor the operator asks.
    pub network_policy: Option<k8s_openapi::api::networking::v1::NetworkPolicy>,
    /// The spec turns the policy off: one kept before is deleted.
    pub network_policy_off: bool,
    /// Whether a change of the pod template may roll out now.
    pub rollout: RolloutDecision,
}

/// What the desired objects are computed from.
pub struct DesireInputs<'a> {
    /// The cluster's template settings (its spec and recorded restore included).
    pub ctx: &'a TemplateContext<'a>,
    /// The cluster.
    pub cluster: &'a EtcdCluster,
    /// The StatefulSet and the ConfigMap as they are, if they exist.
    pub existing: (Option<&'a StatefulSet>, Option<&'a ConfigMap>),
    /// What was observed (whether etcd answers, and whether a rollout is safe now).
    pub observation: &'a Observation,
    /// Replicas and bootstrap fixed by the caller (a restore starts from none, as a new cluster).
    pub fixed: Option<ApplyPlan>,
}

/// The objects the spec asks for, or the rules it breaks: the spec's own, and the fields an
/// existing StatefulSet cannot change. Nothing is applied from a refused spec.
pub fn desire(i: &DesireInputs<'_>) -> Result<Refusable<Desired, Violations>, ResourceError> {
    let cluster = i.cluster;
    if let Err(v) = validate_spec(&cluster.spec) {
        return Ok(Refusable::Refused(v));
    }
    let (existing_sts, existing_cm) = i.existing;
    if let Err(v) = version_gate(cluster, existing_sts, i.observation) {
        return Ok(Refusable::Refused(v));
    }
    let formed = cluster.formed() || i.observation.etcd_answered();
    let plan = i
        .fixed
        .clone()
        .unwrap_or_else(|| plan_apply(&i.ctx.names, cluster.spec.size, formed, existing_sts, existing_cm));
    let mut statefulset = templates::statefulset(i.ctx, plan.replicas, &plan.bootstrap)?;
    if keep_claims_while_stopped(cluster)
        && let Some(policy) =
            statefulset.spec.as_mut().and_then(|s| s.persistent_volume_claim_retention_policy.as_mut())
    {
        policy.when_scaled = Some("Retain".into());
    }
    if let Some(existing) = existing_sts
        && let Err(v) = immutable_violations(existing, &statefulset)
    {
        return Ok(Refusable::Refused(v));
    }
    let changed = existing_sts.is_some_and(|e| template_changed(e, &statefulset));
    let pdb =
        (plan.replicas > 0).then(|| templates::pod_disruption_budget(i.ctx, plan.replicas)).transpose()?;
    Ok(Refusable::Usable(Desired {
        network_policy: i.ctx.member_network_policy()?,
        network_policy_off: cluster.spec.network_policy.as_ref().and_then(|p| p.enabled) == Some(false),
        config_map: templates::config_map(i.ctx, &plan.bootstrap)?,
        api_ca: templates::api_ca::cluster_ca_config_map(i.ctx)?,
        services: [
            templates::peer_service(i.ctx)?,
            templates::client_service(i.ctx)?,
            templates::metrics_service(i.ctx)?,
        ],
        rollout: decide_rollout(changed, cluster.formed(), i.observation),
        statefulset,
        pdb,
        plan,
    }))
}

/// The upgrade gate over everything in sight: the version the StatefulSet runs, what each member
/// reports, and etcd's cluster version.
fn version_gate(
    cluster: &EtcdCluster,
    existing: Option<&StatefulSet>,
    observation: &Observation,
) -> Result<(), Violations> {
    let applied = existing.and_then(templates::etcd_version_of_statefulset);
    let view = match &observation.etcd {
        EtcdState::Reached(view) => Some(view),
        _ => None,
    };
    let members = view
        .iter()
        .flat_map(|v| &v.members)
        .filter_map(|m| m.status.as_ref().ok().map(|s| (m.info.name.as_str(), s.version.as_str())))
        .collect();
    gate(&GateInputs {
        target: &cluster.spec.version,
        applied,
        members,
        cluster_version: view.and_then(|v| v.cluster_version.as_deref()),
        auth: cluster.spec.auth.as_ref().is_some_and(|a| a.enabled),
    })
}

#[cfg(test)]
mod tests;
