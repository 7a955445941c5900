//! The kubelet's runtime part: a pod's sandbox, volumes and service-account
//! files, its containers run as processes (environment, images, supervision
//! with restarts and probes), and the status reported for it.

pub(crate) mod container;
pub(crate) mod env;
pub mod images;
pub(crate) mod pod;
pub(crate) mod probes;
mod projected;
pub mod service_account;
pub(crate) mod status;
pub(crate) mod supervisor;
pub(crate) mod volumes;
