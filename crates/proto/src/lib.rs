//! Generated gRPC code of the cluster-service API, package `etcd_operator.v1alpha1`.

/// Version 1alpha1 of the API.
pub mod v1alpha1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("etcd_operator.v1alpha1");

    /// Encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("etcd_operator_descriptor");
}
