//! The StatefulSet running the members: stable identities, one volume each.

use std::collections::BTreeMap;

use etcd_operator_api::cluster::{PvcRetention, StorageType};
use k8s_openapi::{
    api::{
        apps::v1::{
            StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
            StatefulSetUpdateStrategy,
        },
        core::v1::{
            Affinity, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource,
            EnvVar, EnvVarSource, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
            PodAffinityTerm, PodAntiAffinity, PodSpec, PodTemplateSpec, SecretKeySelector, Volume,
            VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
    },
};

use sha2::{Digest, Sha256};

use super::{
    BootstrapConfig, TemplateContext,
    config_map::{config_data, restart_hash},
};
use crate::{
    ResourceError,
    names::{CLIENT_PORT, METRICS_PORT, PEER_PORT},
};

/// Pod annotation carrying the hash of restart-relevant configuration.
pub const CONFIG_HASH_ANNOTATION: &str = "etcd.operator.dev/config-hash";
/// StatefulSet annotation carrying the hash of the pod template the operator applied,
/// so a changed template is detected without comparing server-defaulted fields.
pub const TEMPLATE_HASH_ANNOTATION: &str = "etcd.operator.dev/template-hash";

/// Pod annotation naming the CAs the members trust (`status.certificateAuthority.trusted`):
/// etcd reads its trusted CA files only at start, so a change must restart every member.
pub const TRUSTED_CAS_ANNOTATION: &str = "etcd.operator.dev/trusted-cas";

/// Pod annotation naming how the member's ports speak (`plaintext`, `plaintext-with-certificates`
/// or `tls`): a move between plaintext and TLS goes on once every pod runs its phase's template.
pub const TRANSPORT_ANNOTATION: &str = "etcd.operator.dev/transport";

const DATA_VOLUME: &str = "data";
const DATA_MOUNT: &str = "/var/lib/etcd";

/// Builds the StatefulSet with `replicas` pods (decided by the service layer).
pub fn statefulset(
    ctx: &TemplateContext<'_>,
    replicas: i32,
    bootstrap: &BootstrapConfig,
) -> Result<StatefulSet, ResourceError> {
    let spec = &ctx.cluster.spec;
    let persistent = spec.storage.type_ == StorageType::Persistent;
    let retention = |r: PvcRetention| match r {
        PvcRetention::Retain => "Retain".to_owned(),
        PvcRetention::Delete => "Delete".to_owned(),
    };
    let template = pod_template(ctx, bootstrap)?;
    let mut metadata = ctx.metadata(ctx.names.statefulset(), "StatefulSet")?;
    let template_json = serde_json::to_vec(&template).map_err(|e| ResourceError::Template {
        kind: "StatefulSet",
        reason: format!("pod template does not serialize: {e}"),
    })?;
    metadata.annotations = Some(BTreeMap::from([(
        TEMPLATE_HASH_ANNOTATION.to_owned(),
        hex::encode(&Sha256::digest(&template_json)[..8]),
    )]));
    Ok(StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(ctx.names.peer_service()),
            selector: LabelSelector {
                match_labels: Some(ctx.names.selector_labels()),
                ..LabelSelector::default()
            },
            // Members must start together to elect a leader.
            pod_management_policy: Some("Parallel".into()),
            // The operator rolls members itself (followers first, the leader last after handing
            // leadership over, each one healthy before the next); the StatefulSet controller would
            // go by ordinal and ignore etcd.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            template,
            volume_claim_templates: persistent.then(|| vec![volume_claim(ctx)]),
            persistent_volume_claim_retention_policy: persistent.then(|| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(retention(spec.pvc_retention_policy.when_deleted)),
                    when_scaled: Some(retention(spec.pvc_retention_policy.when_scaled)),
                }
            }),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    })
}

fn volume_claim(ctx: &TemplateContext<'_>) -> PersistentVolumeClaim {
    let storage = &ctx.cluster.spec.storage;
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(ctx.labels()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(storage.size.clone()))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

fn pod_template(
    ctx: &TemplateContext<'_>,
    bootstrap: &BootstrapConfig,
) -> Result<PodTemplateSpec, ResourceError> {
    let spec = &ctx.cluster.spec;
    let overrides = spec.pod_template.clone().unwrap_or_default();
    let mut labels = overrides.labels.clone();
    labels.extend(ctx.labels());
    let mut annotations = overrides.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), restart_hash(&config_data(ctx, bootstrap)));
    // Absent until a first CA rotation, so clusters from before it are not restarted for it.
    let transport = ctx.cluster.member_transport();
    annotations.insert(TRANSPORT_ANNOTATION.into(), transport.as_str().into());
    let trusted = ctx.cluster.certificate_authority();
    if let Some(trusted) = trusted.filter(|t| !t.trusted.is_empty() && transport.certificates.is_some()) {
        annotations.insert(TRUSTED_CAS_ANNOTATION.into(), trusted.trusted.join(","));
    }
    let mut volumes: Vec<Volume> = (spec.storage.type_ == StorageType::Ephemeral)
        .then(|| Volume {
            name: DATA_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity(spec.storage.size.clone())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        })
        .into_iter()
        .collect();
    if let Some(tls) = transport.certificates {
        volumes.extend(super::tls::volumes(ctx, tls));
    }
    volumes.extend(super::api_ca::volume(ctx));
    let volumes = (!volumes.is_empty()).then_some(volumes);
    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            init_containers: Some(vec![prepare_data_container(ctx)]),
            containers: vec![etcd_container(ctx)],
            security_context: Some(super::security::pod()),
            volumes,
            affinity: Some(overrides.affinity.clone().unwrap_or_else(|| spread_members(ctx))),
            tolerations: (!overrides.tolerations.is_empty()).then(|| overrides.tolerations.clone()),
            node_selector: (!overrides.node_selector.is_empty()).then(|| overrides.node_selector.clone()),
            topology_spread_constraints: (!overrides.topology_spread_constraints.is_empty())
                .then(|| overrides.topology_spread_constraints.clone()),
            priority_class_name: overrides.priority_class_name.clone(),
            termination_grace_period_seconds: Some(30),
            ..PodSpec::default()
        }),
    })
}

/// Default affinity: prefer one member per node.
fn spread_members(ctx: &TemplateContext<'_>) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    topology_key: "kubernetes.io/hostname".into(),
                    label_selector: Some(LabelSelector {
                        match_labels: Some(ctx.names.selector_labels()),
                        ..LabelSelector::default()
                    }),
                    ..PodAffinityTerm::default()
                },
            }]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn etcd_container(ctx: &TemplateContext<'_>) -> Container {
    let version = etcd_operator_api::version::EtcdVersion::parse(&ctx.cluster.spec.version).ok();
    let side_by_side = version.as_ref().is_some_and(|v| v.serves_both_schemes_on_one_port());
    let transport = ctx.cluster.member_transport();
    let host =
        format!("$(POD_NAME).{}.$(POD_NAMESPACE).svc.{}", ctx.names.peer_service(), ctx.names.cluster_domain);
    let advertise = super::tls::client_schemes(&transport, side_by_side)
        .iter()
        .map(|s| format!("{s}://{host}:{CLIENT_PORT}"))
        .collect::<Vec<_>>()
        .join(",");
    let port = |name: &str, p: i32| ContainerPort {
        name: Some(name.into()),
        container_port: p,
        ..ContainerPort::default()
    };
    Container {
        name: "etcd".into(),
        image: Some(ctx.image()),
        command: Some(vec!["/usr/local/bin/etcd".into()]),
        // Per-pod values come from the downward API; the rest from the ConfigMap.
        args: Some(
            [
                "--name=$(POD_NAME)".into(),
                format!("--initial-advertise-peer-urls={}://{host}:{PEER_PORT}", ctx.names.scheme()),
                format!("--advertise-client-urls={advertise}"),
            ]
            .into_iter()
            .chain(super::tls::args(&transport, side_by_side))
            .collect(),
        ),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource { name: ctx.names.config_map(), optional: Some(false) }),
            ..EnvFromSource::default()
        }]),
        ports: Some(vec![
            port("client", CLIENT_PORT),
            port("peer", PEER_PORT),
            port("metrics", METRICS_PORT),
        ]),
        readiness_probe: Some(super::probes::readiness(version)),
        liveness_probe: Some(super::probes::liveness(version)),
        resources: ctx.cluster.spec.resources.clone(),
        security_context: Some(super::security::container()),
        volume_mounts: Some(mounts(ctx, false)),
        ..Container::default()
    }
}

/// The data volume, and the certificates the members mount (`peer_only`: the restore agent's).
fn mounts(ctx: &TemplateContext<'_>, peer_only: bool) -> Vec<VolumeMount> {
    let mut out = vec![VolumeMount {
        name: DATA_VOLUME.into(),
        mount_path: DATA_MOUNT.into(),
        ..VolumeMount::default()
    }];
    if ctx.cluster.member_transport().certificates.is_some() {
        out.extend(super::tls::mounts(peer_only));
    }
    out
}

/// The restore agent, before etcd in every member: exits at once when the member has data; while
/// the cluster's restore token exists, restores the empty data directory from the snapshot the
/// cluster-service streams; otherwise starts an empty member only when etcd's membership shows it
/// never ran (it waits to be added, and refuses a member whose data was lost).
/// The restore agent's flag that carries the etcd version a pod template runs.
const VERSION_FLAG: &str = "--etcd-version=";

/// The etcd version a member pod (or a StatefulSet's pod template) was made for: the spec's
/// version when it was applied.
pub fn etcd_version_of(pod: &k8s_openapi::api::core::v1::PodSpec) -> Option<&str> {
    let agent = pod.init_containers.iter().flatten().find(|c| c.name == "prepare-data")?;
    agent.args.iter().flatten().find_map(|a| a.strip_prefix(VERSION_FLAG))
}

/// The etcd version a StatefulSet's pod template runs.
pub fn etcd_version_of_statefulset(sts: &StatefulSet) -> Option<&str> {
    etcd_version_of(sts.spec.as_ref()?.template.spec.as_ref()?)
}

fn prepare_data_container(ctx: &TemplateContext<'_>) -> Container {
    let api_ca = super::api_ca::agent_mount(ctx);
    let mut volume_mounts = mounts(ctx, true);
    volume_mounts.extend(api_ca.as_ref().map(|(mount, _)| mount.clone()));
    let token = EnvVar {
        name: "RESTORE_TOKEN".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: ctx.names.restore_secret(),
                key: "token".into(),
                // Gone once the restore completed: members added later start empty and join.
                optional: Some(true),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    Container {
        name: "prepare-data".into(),
        image: Some(ctx.restore_agent.image.clone()),
        command: Some(vec!["/usr/local/bin/restore-agent".into()]),
        args: Some(
            [
                format!("--endpoint={}", ctx.restore_agent.endpoint),
                "--namespace=$(POD_NAMESPACE)".into(),
                format!("--cluster={}", ctx.names.name),
                "--member=$(POD_NAME)".into(),
                format!("--data-dir={DATA_MOUNT}/data"),
                format!("{VERSION_FLAG}{}", ctx.cluster.spec.version),
            ]
            .into_iter()
            .chain(
                ctx.cluster
                    .member_transport()
                    .certificates
                    .is_some()
                    .then(|| format!("--peer-tls-dir={}", super::tls::PEER_TLS_DIR)),
            )
            .chain(api_ca.map(|(_, flag)| flag))
            .collect(),
        ),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            token,
        ]),
        // ETCD_INITIAL_CLUSTER, _STATE and _TOKEN: the membership to restore, and the members to ask.
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource { name: ctx.names.config_map(), optional: Some(false) }),
            ..EnvFromSource::default()
        }]),
        volume_mounts: Some(volume_mounts),
        security_context: Some(super::security::container()),
        ..Container::default()
    }
}

#[cfg(test)]
#[path = "statefulset_tests.rs"]
mod tests;
