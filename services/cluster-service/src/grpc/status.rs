//! ServiceError → gRPC status, in one place.

use etcd_operator_common::Violations;
use etcd_operator_service::{ServiceError, error::ErrorCode};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Maps a service error to its documented gRPC code (see proto/…/cluster_service.proto).
pub fn to_status(err: ServiceError) -> Status {
    if let ServiceError::InvalidArgument(violations) = &err {
        return invalid_argument(violations);
    }
    let code = match err.code() {
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        ErrorCode::PermissionDenied => Code::PermissionDenied,
        ErrorCode::Aborted => Code::Aborted,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Internal => Code::Internal,
    };
    Status::new(code, err.to_string())
}

/// INVALID_ARGUMENT with one `google.rpc.BadRequest` field violation per broken rule.
pub fn invalid_argument(violations: &Violations) -> Status {
    let details = ErrorDetails::with_bad_request(
        violations
            .0
            .iter()
            .map(|v| tonic_types::FieldViolation::new(proto_field(&v.field), v.description.clone()))
            .collect::<Vec<_>>(),
    );
    let message = violations
        .0
        .iter()
        .map(|v| format!("{}: {}", proto_field(&v.field), v.description))
        .collect::<Vec<_>>();
    Status::with_error_details(Code::InvalidArgument, message.join("; "), details)
}

/// Field paths of the CRD, as the request message names them.
const CRD_TO_PROTO: &[(&str, &str)] = &[
    ("spec.storage.type", "spec.storage_type"),
    ("spec.storage.size", "spec.storage_size"),
    ("spec.storage.storageClassName", "spec.storage_class_name"),
    ("spec.etcd.quotaBackendBytes", "spec.quota_backend_bytes"),
    ("spec.etcd.autoCompactionMode", "spec.auto_compaction_mode"),
    ("spec.etcd.autoCompactionRetention", "spec.auto_compaction_retention"),
    ("spec.etcd.snapshotCount", "spec.snapshot_count"),
    ("spec.etcd.heartbeatIntervalMs", "spec.heartbeat_interval_ms"),
    ("spec.etcd.electionTimeoutMs", "spec.election_timeout_ms"),
    ("spec.pvcRetentionPolicy", "spec.pvc_when_deleted"),
    ("spec.restore", "spec.restore_backup_name"),
    ("spec.recovery.restoreOnQuorumLoss", "spec.restore_on_quorum_loss"),
    ("spec.recovery.quorumLossGracePeriod", "spec.quorum_loss_grace_period"),
];

fn proto_field(path: &str) -> String {
    CRD_TO_PROTO
        .iter()
        .find(|(crd, _)| *crd == path)
        .map_or_else(|| path.to_owned(), |(_, proto)| (*proto).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_documented_code() {
        let cases = [
            (ServiceError::NotFound { kind: "EtcdCluster", name: "a/b".into() }, Code::NotFound),
            (ServiceError::AlreadyExists("x".into()), Code::AlreadyExists),
            (ServiceError::FailedPrecondition("x".into()), Code::FailedPrecondition),
            (ServiceError::Aborted("x".into()), Code::Aborted),
            (ServiceError::Unavailable("x".into()), Code::Unavailable),
            (ServiceError::Internal("x".into()), Code::Internal),
        ];
        for (err, code) in cases {
            assert_eq!(to_status(err).code(), code);
        }
    }

    #[test]
    fn violations_become_bad_request_details_with_proto_field_names() {
        let mut v = Violations::default();
        v.push("spec.storage.size", "must be a positive Kubernetes quantity such as 8Gi");
        v.push("spec.size", "must be between 0 and 9");
        let status = to_status(ServiceError::InvalidArgument(v));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_details_bad_request().expect("BadRequest details");
        let fields: Vec<_> = details.field_violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["spec.storage_size", "spec.size"]);
    }
}
