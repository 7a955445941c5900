//! What `spec.tls` adds to the members: certificate Secrets mounted as
//! volumes, etcd's TLS settings, and the Secrets of operator-managed
//! certificates.

use std::collections::BTreeMap;

use etcd_operator_api::cluster::TlsSpec;
use k8s_openapi::{
    ByteString,
    api::core::v1::{Secret, SecretVolumeSource, Volume, VolumeMount},
};

use super::TemplateContext;
use crate::{ResourceError, names::ClusterNames};

/// Where the client port's certificate is mounted in the etcd container.
pub const CLIENT_TLS_DIR: &str = "/etc/etcd/tls/client";
/// Where the peer certificate is mounted (etcd container and restore agent).
pub const PEER_TLS_DIR: &str = "/etc/etcd/tls/peer";

/// Certificate purposes, in the order status lists them.
pub const PURPOSES: [Purpose; 3] = [Purpose::Client, Purpose::Peer, Purpose::Operator];

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// Serves the client port.
    Client,
    /// Serves the peer port and dials other members.
    Peer,
    /// The operator's client certificate (also its tools').
    Operator,
}

impl Purpose {
    /// The word used in names and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Peer => "peer",
            Self::Operator => "operator",
        }
    }
}

/// The Secret holding each certificate: the user's in provided mode, the operator's otherwise.
pub fn secret_name(names: &ClusterNames, tls: &TlsSpec, purpose: Purpose) -> String {
    match (&tls.provided, purpose) {
        (Some(p), Purpose::Client) => p.client_secret_name.clone(),
        (Some(p), Purpose::Peer) => p.peer_secret_name.clone(),
        (Some(p), Purpose::Operator) => p.operator_secret_name.clone(),
        (None, purpose) => names.tls_secret(purpose.as_str()),
    }
}

/// etcd's TLS settings (`ETCD_*`) for the ConfigMap. A renewed key pair is read on the next
/// connection, so these never change while certificates renew.
pub(crate) fn config(tls: &TlsSpec) -> Vec<(String, String)> {
    let file = |dir: &str, key: &str| format!("{dir}/{key}");
    [
        ("ETCD_CERT_FILE", file(CLIENT_TLS_DIR, "tls.crt")),
        ("ETCD_KEY_FILE", file(CLIENT_TLS_DIR, "tls.key")),
        ("ETCD_TRUSTED_CA_FILE", file(CLIENT_TLS_DIR, "ca.crt")),
        ("ETCD_CLIENT_CERT_AUTH", tls.client_cert_auth.to_string()),
        ("ETCD_PEER_CERT_FILE", file(PEER_TLS_DIR, "tls.crt")),
        ("ETCD_PEER_KEY_FILE", file(PEER_TLS_DIR, "tls.key")),
        ("ETCD_PEER_TRUSTED_CA_FILE", file(PEER_TLS_DIR, "ca.crt")),
        // Only members (certificates of the peer CA) may join or talk Raft.
        ("ETCD_PEER_CLIENT_CERT_AUTH", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The certificate volumes of a member pod.
pub(crate) fn volumes(ctx: &TemplateContext<'_>, tls: &TlsSpec) -> Vec<Volume> {
    [Purpose::Client, Purpose::Peer]
        .into_iter()
        .map(|purpose| Volume {
            name: volume_name(purpose),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret_name(&ctx.names, tls, purpose)),
                // Readable by etcd's user only; the key never leaves the pod.
                default_mode: Some(0o400),
                optional: Some(false),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        })
        .collect()
}

/// Mounts of the etcd container (`peer_only`: the restore agent, which asks other members for the
/// membership on their peer port as this member).
pub(crate) fn mounts(peer_only: bool) -> Vec<VolumeMount> {
    let mount = |purpose, dir: &str| VolumeMount {
        name: volume_name(purpose),
        mount_path: dir.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    let mut out = vec![mount(Purpose::Peer, PEER_TLS_DIR)];
    if !peer_only {
        out.insert(0, mount(Purpose::Client, CLIENT_TLS_DIR));
    }
    out
}

fn volume_name(purpose: Purpose) -> String {
    format!("tls-{}", purpose.as_str())
}

/// The operator-managed CA's Secret (owned by the cluster, so it goes with it).
///
/// During a CA rotation it holds the other CA too: `next.crt` and `next.key` (the CA that issues
/// next) or `previous.crt` (the one that issued before, still trusted).
pub fn ca_secret(
    ctx: &TemplateContext<'_>,
    ca_crt: &str,
    ca_key: &str,
    rotating: &[(&str, &str)],
) -> Result<Secret, ResourceError> {
    let mut data = BTreeMap::from([bytes("ca.crt", ca_crt), bytes("ca.key", ca_key)]);
    data.extend(rotating.iter().map(|(k, v)| bytes(k, v)));
    Ok(Secret {
        metadata: ctx.metadata(ctx.names.ca_secret(), "Secret")?,
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    })
}

/// An operator-managed certificate's Secret, in the layout cert-manager writes.
pub fn certificate_secret(
    ctx: &TemplateContext<'_>,
    purpose: Purpose,
    crt: &str,
    key: &str,
    ca_crt: &str,
) -> Result<Secret, ResourceError> {
    Ok(Secret {
        metadata: ctx.metadata(ctx.names.tls_secret(purpose.as_str()), "Secret")?,
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([bytes("tls.crt", crt), bytes("tls.key", key), bytes("ca.crt", ca_crt)])),
        ..Secret::default()
    })
}

/// The Secret of etcd's root user (`kubernetes.io/basic-auth`: `username`, `password`).
pub fn root_secret(ctx: &TemplateContext<'_>, password: &str) -> Result<Secret, ResourceError> {
    Ok(Secret {
        metadata: ctx.metadata(ctx.names.root_secret(), "Secret")?,
        type_: Some("kubernetes.io/basic-auth".into()),
        data: Some(BTreeMap::from([bytes("username", "root"), bytes("password", password)])),
        ..Secret::default()
    })
}

fn bytes(key: &str, value: &str) -> (String, ByteString) {
    (key.to_owned(), ByteString(value.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::fixtures::cluster;

    #[test]
    fn provided_mode_names_the_users_secrets_and_managed_mode_the_operators() {
        let provided = cluster(
            "size: 3\nversion: 3.5.17\ntls:\n  provided:\n    clientSecretName: c\n    peerSecretName: p\n    operatorSecretName: o",
        );
        let ctx = TemplateContext::new(&provided, "cluster.local");
        let tls = provided.spec.tls.as_ref().unwrap();
        let got: Vec<_> = PURPOSES.iter().map(|p| secret_name(&ctx.names, tls, *p)).collect();
        assert_eq!(got, ["c", "p", "o"]);
        let managed = cluster("size: 3\nversion: 3.5.17\ntls:\n  operatorManaged: {}");
        let ctx = TemplateContext::new(&managed, "cluster.local");
        let tls = managed.spec.tls.as_ref().unwrap();
        let got: Vec<_> = PURPOSES.iter().map(|p| secret_name(&ctx.names, tls, *p)).collect();
        assert_eq!(got, ["demo-client-tls", "demo-peer-tls", "demo-operator-tls"]);
    }

    #[test]
    fn etcd_requires_peer_certificates_and_client_certificates_unless_turned_off() {
        let c = cluster("size: 3\nversion: 3.5.17\ntls:\n  operatorManaged: {}\n  clientCertAuth: false");
        let env: BTreeMap<_, _> = config(c.spec.tls.as_ref().unwrap()).into_iter().collect();
        assert_eq!(env["ETCD_CLIENT_CERT_AUTH"], "false");
        assert_eq!(env["ETCD_PEER_CLIENT_CERT_AUTH"], "true");
        assert_eq!(env["ETCD_TRUSTED_CA_FILE"], "/etc/etcd/tls/client/ca.crt");
        assert_eq!(env["ETCD_PEER_KEY_FILE"], "/etc/etcd/tls/peer/tls.key");
    }
}
