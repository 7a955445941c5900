//! Custom resource types of the etcd operator and the CRDs generated from them.
//!
//! Everything that can be checked statically is part of the schema (bounds,
//! patterns, enums) or a CEL rule (`x-kubernetes-validations`), so the API
//! server refuses bad input before any component sees it.

#![warn(clippy::too_many_lines)]
// `printcolumn(type_ = ...)` repeats per column by design of kube-derive.
#![allow(clippy::duplicated_attributes)]

pub mod backup;
pub mod backup_schedule;
pub mod cluster;
pub mod condition;
pub mod crd;
pub mod storage;
pub mod version;

pub use backup::{EtcdBackup, EtcdBackupSpec, EtcdBackupStatus};
pub use backup_schedule::{EtcdBackupSchedule, EtcdBackupScheduleSpec, EtcdBackupScheduleStatus};
pub use cluster::{EtcdCluster, EtcdClusterSpec, EtcdClusterStatus};
pub use condition::{Condition, ConditionStatus};

/// API group of every custom resource of the operator.
pub const GROUP: &str = "etcd.operator.dev";
/// API version served by this crate.
pub const VERSION: &str = "v1alpha1";
