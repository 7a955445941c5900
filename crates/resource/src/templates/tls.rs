//! What `spec.tls` adds to the members: certificate Secrets mounted as
//! volumes, etcd's TLS settings, and the Secrets of operator-managed
//! certificates.

use std::collections::BTreeMap;

use etcd_operator_api::cluster::{MemberTransport, TlsSpec};
use k8s_openapi::{
    ByteString,
    api::core::v1::{Secret, SecretVolumeSource, Volume, VolumeMount},
};

use super::TemplateContext;
use crate::{
    ResourceError,
    names::{CLIENT_PORT, ClusterNames, PEER_PORT},
};

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

/// The schemes of the client port: TLS or plaintext, and both side by side while a plaintext
/// member has certificates (moving between plaintext and TLS) when its etcd serves both on one
/// port, so that clients can change scheme before any member stops serving theirs.
pub(crate) fn client_schemes(transport: &MemberTransport<'_>, side_by_side: bool) -> &'static [&'static str] {
    match (transport.listen_tls, transport.certificates.is_some() && side_by_side) {
        (true, _) => &["https"],
        (false, true) => &["http", "https"],
        (false, false) => &["http"],
    }
}

/// etcd's listeners and TLS flags, in the pod template (not the shared ConfigMap: during a move
/// between plaintext and TLS each pod runs its own template, also when its container restarts in
/// place). Members that listen in plaintext but have certificates can dial members that speak
/// TLS. A renewed key pair is read on the next connection, so these never change as
/// certificates renew.
pub(crate) fn args(transport: &MemberTransport<'_>, side_by_side: bool) -> Vec<String> {
    let peer = if transport.listen_tls { "https" } else { "http" };
    let client = client_schemes(transport, side_by_side);
    let mut out = vec![
        format!("--listen-peer-urls={peer}://0.0.0.0:{PEER_PORT}"),
        format!(
            "--listen-client-urls={}",
            client.iter().map(|s| format!("{s}://0.0.0.0:{CLIENT_PORT}")).collect::<Vec<_>>().join(",")
        ),
    ];
    let Some(tls) = transport.certificates else { return out };
    let file = |dir: &str, key: &str| format!("{dir}/{key}");
    if client.contains(&"https") {
        out.extend([
            format!("--cert-file={}", file(CLIENT_TLS_DIR, "tls.crt")),
            format!("--key-file={}", file(CLIENT_TLS_DIR, "tls.key")),
            format!("--trusted-ca-file={}", file(CLIENT_TLS_DIR, "ca.crt")),
            format!("--client-cert-auth={}", tls.client_cert_auth),
        ]);
    }
    out.extend([
        format!("--peer-cert-file={}", file(PEER_TLS_DIR, "tls.crt")),
        format!("--peer-key-file={}", file(PEER_TLS_DIR, "tls.key")),
        format!("--peer-trusted-ca-file={}", file(PEER_TLS_DIR, "ca.crt")),
        // Only members (certificates of the peer CA) may join or talk Raft.
        "--peer-client-cert-auth=true".to_owned(),
    ]);
    out
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
        let tls = c.spec.tls.as_ref();
        let args = args(&MemberTransport { listen_tls: true, certificates: tls }, true);
        for want in [
            "--listen-client-urls=https://0.0.0.0:2379",
            "--listen-peer-urls=https://0.0.0.0:2380",
            "--client-cert-auth=false",
            "--peer-client-cert-auth=true",
            "--trusted-ca-file=/etc/etcd/tls/client/ca.crt",
            "--peer-key-file=/etc/etcd/tls/peer/tls.key",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
    }

    #[test]
    fn a_plaintext_member_with_certificates_listens_in_plaintext_and_can_dial_tls_peers() {
        let c = cluster("size: 3\nversion: 3.5.17\ntls:\n  operatorManaged: {}");
        let args = args(&MemberTransport { listen_tls: false, certificates: c.spec.tls.as_ref() }, false);
        assert!(args.contains(&"--listen-peer-urls=http://0.0.0.0:2380".to_owned()), "{args:?}");
        assert!(args.contains(&"--peer-cert-file=/etc/etcd/tls/peer/tls.crt".to_owned()), "{args:?}");
        assert!(!args.iter().any(|a| a.starts_with("--cert-file")), "the client port is plaintext: {args:?}");
        let plain = super::args(&MemberTransport { listen_tls: false, certificates: None }, true);
        assert_eq!(
            plain,
            ["--listen-peer-urls=http://0.0.0.0:2380", "--listen-client-urls=http://0.0.0.0:2379"]
        );
    }

    #[test]
    fn where_etcd_serves_both_a_plaintext_member_with_certificates_serves_tls_beside_on_its_client_port() {
        let c = cluster("size: 3\nversion: 3.5.17\ntls:\n  operatorManaged: {}");
        let args = args(&MemberTransport { listen_tls: false, certificates: c.spec.tls.as_ref() }, true);
        let want = "--listen-client-urls=http://0.0.0.0:2379,https://0.0.0.0:2379";
        assert!(args.iter().any(|a| a == want), "{args:?}");
        assert!(args.contains(&"--cert-file=/etc/etcd/tls/client/tls.crt".to_owned()), "{args:?}");
        assert!(
            args.contains(&"--listen-peer-urls=http://0.0.0.0:2380".to_owned()),
            "one scheme per peer port"
        );
    }
}
