//! Conversions between the proto messages and the API types.

use etcd_operator_api::{
    ConditionStatus, EtcdCluster, EtcdClusterSpec, EtcdClusterStatus,
    cluster::{
        AutoCompactionMode, EtcdTuning, PodOverrides, PvcRetention, PvcRetentionPolicy, RecoveryPolicy,
        RestoreSource, StorageSpec, StorageType,
    },
};
use etcd_operator_common::{ClusterRef, Violations};
use etcd_operator_proto::v1alpha1 as pb;
use etcd_operator_service::{SpecPatch, reads::Seen};
use serde::de::DeserializeOwned;

/// Checks and converts a cluster reference (field `cluster`).
pub fn cluster_ref(r: Option<&pb::ClusterRef>) -> Result<ClusterRef, Violations> {
    match r {
        Some(r) => ClusterRef::parse(&r.namespace, &r.name, "cluster"),
        None => {
            let mut v = Violations::default();
            v.push("cluster", "is required");
            Err(v)
        }
    }
}

/// A look's cluster and the generation its caller saw (`seen_generation`, never negative).
pub fn look(r: Option<&pb::ClusterRef>, seen_generation: i64) -> Result<(ClusterRef, Seen), Violations> {
    let mut v = Violations::default();
    let r = cluster_ref(r).map_err(|e| v.0.extend(e.0)).ok();
    v.check(seen_generation >= 0, "seen_generation", "must be 0 (none) or a metadata.generation");
    match r {
        Some(r) if v.0.is_empty() => Ok((r, Seen(seen_generation))),
        _ => Err(v),
    }
}

fn json_field<T: DeserializeOwned>(raw: &str, field: &str, what: &str, v: &mut Violations) -> Option<T> {
    if raw.trim().is_empty() {
        return None;
    }
    serde_json::from_str(raw).map_err(|e| v.push(field, format!("must be a JSON {what}: {e}"))).ok()
}

fn retention(value: i32, field: &str, v: &mut Violations) -> PvcRetention {
    match pb::PvcRetention::try_from(value) {
        Ok(pb::PvcRetention::Unspecified | pb::PvcRetention::Retain) => PvcRetention::Retain,
        Ok(pb::PvcRetention::Delete) => PvcRetention::Delete,
        Err(_) => {
            v.push(field, "must be PVC_RETENTION_RETAIN or PVC_RETENTION_DELETE");
            PvcRetention::Retain
        }
    }
}

/// spec.recovery, when either of its fields is given.
fn recovery(s: &pb::ClusterSpec) -> Option<RecoveryPolicy> {
    (s.restore_on_quorum_loss || !s.quorum_loss_grace_period.is_empty()).then(|| RecoveryPolicy {
        restore_on_quorum_loss: s.restore_on_quorum_loss,
        quorum_loss_grace_period: if s.quorum_loss_grace_period.is_empty() {
            RecoveryPolicy::default().quorum_loss_grace_period
        } else {
            s.quorum_loss_grace_period.clone()
        },
    })
}

/// Converts a proto spec; problems of form (enums, JSON) are violations, rules come later.
pub fn spec(s: &pb::ClusterSpec) -> Result<EtcdClusterSpec, Violations> {
    let mut v = Violations::default();
    let storage_type = match pb::StorageType::try_from(s.storage_type) {
        Ok(pb::StorageType::Unspecified | pb::StorageType::Persistent) => StorageType::Persistent,
        Ok(pb::StorageType::Ephemeral) => StorageType::Ephemeral,
        Err(_) => {
            v.push("spec.storage_type", "must be STORAGE_TYPE_PERSISTENT or STORAGE_TYPE_EPHEMERAL");
            StorageType::Persistent
        }
    };
    let auto_compaction_mode = match s.auto_compaction_mode.as_str() {
        "" | "Periodic" => AutoCompactionMode::Periodic,
        "Revision" => AutoCompactionMode::Revision,
        other => {
            v.push("spec.auto_compaction_mode", format!("must be Periodic or Revision, got {other:?}"));
            AutoCompactionMode::Periodic
        }
    };
    let spec = EtcdClusterSpec {
        size: s.size,
        version: s.version.clone(),
        image: s.image.clone(),
        storage: StorageSpec {
            type_: storage_type,
            size: if s.storage_size.is_empty() {
                StorageSpec::default().size
            } else {
                s.storage_size.clone()
            },
            storage_class_name: s.storage_class_name.clone(),
        },
        resources: json_field(
            &s.resources_json,
            "spec.resources_json",
            "ResourceRequirements object",
            &mut v,
        ),
        pod_template: json_field::<PodOverrides>(
            &s.pod_template_json,
            "spec.pod_template_json",
            "podTemplate object",
            &mut v,
        ),
        etcd: EtcdTuning {
            quota_backend_bytes: s.quota_backend_bytes,
            auto_compaction_mode,
            auto_compaction_retention: s.auto_compaction_retention.clone(),
            snapshot_count: s.snapshot_count,
            heartbeat_interval_ms: s.heartbeat_interval_ms,
            election_timeout_ms: s.election_timeout_ms,
        },
        pvc_retention_policy: PvcRetentionPolicy {
            when_deleted: retention(s.pvc_when_deleted, "spec.pvc_when_deleted", &mut v),
            when_scaled: retention(s.pvc_when_scaled, "spec.pvc_when_scaled", &mut v),
        },
        paused: s.paused,
        restore: s.restore_backup_name.clone().map(|name| RestoreSource {
            backup_name: Some(name),
            location: None,
            clear_retained_claims: s.restore_clear_retained_claims,
        }),
        recovery: recovery(s),
        tls: json_field(&s.tls_json, "spec.tls_json", "spec.tls object", &mut v),
        auth: s.auth_enabled.then_some(etcd_operator_api::cluster::AuthSpec { enabled: true }),
        network_policy: json_field(
            &s.network_policy_json,
            "spec.network_policy_json",
            "spec.networkPolicy object",
            &mut v,
        ),
    };
    v.into_result().map(|()| spec)
}

/// The fields of `spec` an update mask names (`paths`, ClusterSpec's field names).
pub fn spec_patch(spec: Option<&pb::ClusterSpec>, paths: &[String]) -> Result<SpecPatch, Violations> {
    let mut v = Violations::default();
    let Some(s) = spec else {
        v.push("spec", "is required with update_mask: the mask names fields of it");
        return Err(v);
    };
    let mut patch = SpecPatch::default();
    for (i, path) in paths.iter().enumerate() {
        match path.as_str() {
            "size" => patch.size = Some(s.size),
            "paused" => patch.paused = Some(s.paused),
            "version" => patch.version = Some(s.version.clone()),
            "image" => patch.image = Some(s.image.clone()),
            other => v.push(
                format!("update_mask.paths[{i}]"),
                format!(
                    "{other:?} cannot be changed alone (size, paused, version and image can); \
                     send the whole spec without update_mask"
                ),
            ),
        }
    }
    v.into_result().map(|()| patch)
}

/// The recorded status of a cluster as a proto message.
pub fn status(
    cluster_ref: &ClusterRef,
    cluster: Option<&EtcdCluster>,
    s: &EtcdClusterStatus,
) -> pb::ClusterStatus {
    pb::ClusterStatus {
        cluster: Some(pb::ClusterRef {
            namespace: cluster_ref.namespace.clone(),
            name: cluster_ref.name.clone(),
        }),
        phase: format!("{:?}", s.phase),
        generation: cluster.and_then(|c| c.metadata.generation).unwrap_or_default(),
        observed_generation: s.observed_generation.unwrap_or_default(),
        cluster_id: s.cluster_id.clone().unwrap_or_default(),
        members: s
            .members
            .iter()
            .map(|m| pb::Member {
                name: m.name.clone(),
                id: m.id.clone(),
                peer_urls: m.peer_urls.clone(),
                client_urls: m.client_urls.clone(),
                is_learner: m.is_learner,
                healthy: m.healthy,
                is_leader: m.is_leader,
                db_size_bytes: m.db_size_bytes.unwrap_or_default(),
                revision: m.revision.unwrap_or_default(),
                version: m.version.clone().unwrap_or_default(),
                alarms: m.alarms.clone(),
            })
            .collect(),
        ready_members: s.ready_members,
        current_size: s.current_size,
        desired_size: cluster.map(|c| c.spec.size).unwrap_or_default(),
        conditions: s.conditions.iter().map(condition).collect(),
        operation: s.operation.as_ref().map(|o| pb::Operation {
            r#type: o.type_.as_str().to_owned(),
            step: o.step.clone(),
            target: o.target,
            member: o.member.clone(),
            member_id: o.member_id.clone(),
            started_at: o.started_at.clone(),
        }),
        current_version: s.current_version.clone().unwrap_or_default(),
    }
}

/// The requeue advice of an outcome.
pub fn requeue(after: Option<std::time::Duration>) -> pb::Requeue {
    pb::Requeue { requeue: after.is_some(), after_ms: after.map_or(0, |d| d.as_millis() as i64) }
}

/// A condition as a proto message.
pub fn condition(c: &etcd_operator_api::Condition) -> pb::Condition {
    pb::Condition {
        r#type: c.type_.clone(),
        status: match c.status {
            ConditionStatus::True => pb::ConditionStatus::True,
            ConditionStatus::False => pb::ConditionStatus::False,
            ConditionStatus::Unknown => pb::ConditionStatus::Unknown,
        } as i32,
        reason: c.reason.clone(),
        message: c.message.clone(),
        last_transition_time: c.last_transition_time.clone(),
        observed_generation: c.observed_generation.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proto_spec_converts_with_defaults() {
        let s = spec(&pb::ClusterSpec { size: 3, version: "3.5.17".into(), ..Default::default() }).unwrap();
        assert_eq!(s.storage.size, "8Gi");
        assert_eq!(s.storage.type_, StorageType::Persistent);
        assert_eq!(s.pvc_retention_policy.when_deleted, PvcRetention::Retain);
    }

    #[test]
    fn malformed_fields_are_named() {
        let bad = pb::ClusterSpec {
            size: 3,
            version: "3.5.17".into(),
            storage_type: 9,
            auto_compaction_mode: "Sometimes".into(),
            pod_template_json: "{not json".into(),
            ..Default::default()
        };
        let fields: Vec<_> = spec(&bad).unwrap_err().0.into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["spec.storage_type", "spec.auto_compaction_mode", "spec.pod_template_json"]);
        assert_eq!(cluster_ref(None).unwrap_err().0[0].field, "cluster");
    }

    #[test]
    fn a_mask_takes_the_fields_it_names_and_refuses_the_others_by_path() {
        let s = pb::ClusterSpec { size: 5, version: "3.5.1".into(), paused: true, ..Default::default() };
        let paths = |p: &[&str]| p.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        let patch = spec_patch(Some(&s), &paths(&["size"])).unwrap();
        assert_eq!(patch, SpecPatch { size: Some(5), ..Default::default() });
        let patch = spec_patch(Some(&s), &paths(&["version", "paused", "image"])).unwrap();
        assert_eq!(
            patch,
            SpecPatch { size: None, paused: Some(true), version: Some("3.5.1".into()), image: Some(None) }
        );
        let refused = spec_patch(Some(&s), &paths(&["size", "storage_size"])).unwrap_err().0;
        assert_eq!(refused[0].field, "update_mask.paths[1]");
        assert!(refused[0].description.contains("whole spec"), "{}", refused[0].description);
        assert_eq!(spec_patch(None, &paths(&["size"])).unwrap_err().0[0].field, "spec");
    }
}
