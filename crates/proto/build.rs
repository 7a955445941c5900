//! Generates the gRPC code from `proto/` (needs `protoc`, Debian `protobuf-compiler`).

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "types.proto",
    "cluster_service.proto",
    "scaling_service.proto",
    "health_service.proto",
    "recovery_service.proto",
    "backup_service.proto",
    "security_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join("etcd_operator/v1alpha1").join(p)).collect();
    let descriptor = PathBuf::from(std::env::var("OUT_DIR")?).join("etcd_operator_descriptor.bin");
    tonic_prost_build::configure().file_descriptor_set_path(&descriptor).compile_protos(&files, &[root])?;
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    Ok(())
}
