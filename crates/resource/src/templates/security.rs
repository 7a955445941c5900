//! Security contexts of member pods: the Pod Security Standards "restricted"
//! profile. etcd and the restore agent need nothing but their data volume,
//! so they run as a fixed non-root user whose group owns the volume.

use k8s_openapi::api::core::v1::{Capabilities, PodSecurityContext, SeccompProfile, SecurityContext};

/// User and group the members run as (the distroless `nonroot` user).
pub const MEMBER_UID: i64 = 65532;

/// Pod-level: non-root, the volume's group, the runtime's default seccomp profile.
pub fn pod() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(MEMBER_UID),
        run_as_group: Some(MEMBER_UID),
        fs_group: Some(MEMBER_UID),
        // Only a new volume's ownership is changed, not every file on each start.
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }),
        ..PodSecurityContext::default()
    }
}

/// Container-level: no privilege escalation, no capabilities, a read-only root filesystem.
pub fn container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
        ..SecurityContext::default()
    }
}
