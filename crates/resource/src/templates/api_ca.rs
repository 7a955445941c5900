//! The CA of the cluster-service's gRPC API: the Secret it is kept in, and the ConfigMaps that
//! carry its certificate (never its key) to whoever verifies the server, as Kubernetes carries
//! its own with `kube-root-ca.crt`: one in the operator's namespace for the controllers, one per
//! cluster for the restore agent in its member pods.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, ConfigMapVolumeSource, Secret, Volume, VolumeMount},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

use super::TemplateContext;
use crate::ResourceError;

/// The ConfigMap key holding the CA certificate (PEM).
pub const CA_KEY: &str = "ca.crt";
/// Where member pods mount the CA (the restore agent reads `<dir>/ca.crt`).
pub const MOUNT_DIR: &str = "/var/run/etcd-operator/api-ca";
const VOLUME: &str = "operator-api-ca";

/// Metadata of the operator's own CA objects (no owner: they outlive every cluster).
fn metadata(namespace: &str, name: &str) -> ObjectMeta {
    let labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "etcd-operator".to_owned()),
        ("app.kubernetes.io/component".to_owned(), "api-ca".to_owned()),
    ]);
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// The Secret keeping the CA (`kubernetes.io/tls`: `tls.crt`, `tls.key`).
pub fn ca_secret(namespace: &str, name: &str, crt: &str, key: &str) -> Secret {
    let bytes = |v: &str| ByteString(v.as_bytes().to_vec());
    Secret {
        metadata: metadata(namespace, name),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([("tls.crt".into(), bytes(crt)), ("tls.key".into(), bytes(key))])),
        ..Secret::default()
    }
}

/// The CA certificate for the operator's own namespace.
pub fn ca_config_map(namespace: &str, name: &str, crt: &str) -> ConfigMap {
    ConfigMap {
        metadata: metadata(namespace, name),
        data: Some(BTreeMap::from([(CA_KEY.into(), crt.into())])),
        ..ConfigMap::default()
    }
}

/// The CA certificate in a cluster's namespace (owned by the cluster, so it goes with it);
/// `None` when the restore agent reaches the API in plaintext (`--insecure`).
pub fn cluster_ca_config_map(ctx: &TemplateContext<'_>) -> Result<Option<ConfigMap>, ResourceError> {
    let Some(crt) = &ctx.restore_agent.ca else { return Ok(None) };
    Ok(Some(ConfigMap {
        metadata: ctx.metadata(ctx.names.api_ca_config_map(), "ConfigMap")?,
        data: Some(BTreeMap::from([(CA_KEY.into(), crt.clone())])),
        ..ConfigMap::default()
    }))
}

/// The member pod's volume of that ConfigMap, when there is one. Not optional: a restore must
/// not start without a way to verify the server, and the operator applies the ConfigMap before
/// the StatefulSet.
pub(crate) fn volume(ctx: &TemplateContext<'_>) -> Option<Volume> {
    ctx.restore_agent.ca.as_ref().map(|_| Volume {
        name: VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: ctx.names.api_ca_config_map(),
            optional: Some(false),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    })
}

/// The restore agent's mount of it and the flag naming the file.
pub(crate) fn agent_mount(ctx: &TemplateContext<'_>) -> Option<(VolumeMount, String)> {
    ctx.restore_agent.ca.as_ref().map(|_| {
        let mount = VolumeMount {
            name: VOLUME.into(),
            mount_path: MOUNT_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        };
        (mount, format!("--ca-file={MOUNT_DIR}/{CA_KEY}"))
    })
}
