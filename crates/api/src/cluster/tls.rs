//! `EtcdCluster.spec.tls` and `status.certificates`: transport security of
//! the members' client and peer ports.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Keys every certificate Secret must hold (what cert-manager's Certificates produce).
pub const SECRET_KEYS: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

/// TLS on the client port (2379) and the peer port (2380). The metrics port (2381: `/metrics`,
/// `/health`, `/livez`, `/readyz`) stays plain HTTP, so probes need no certificate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.operatorManaged) != has(self.provided)").message("spec.tls must set exactly one of operatorManaged (the operator keeps a CA per cluster) or provided (Secrets you manage, for example with cert-manager)"))]
pub struct TlsSpec {
    /// The operator generates a CA for this cluster, keeps it in the Secret `<name>-ca`, and issues
    /// and renews every certificate itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_managed: Option<OperatorManagedTls>,
    /// Secrets you provide, each with `tls.crt`, `tls.key` and `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provided: Option<ProvidedTls>,
    /// Clients must present a certificate signed by the client CA (mutual TLS). Default true.
    #[serde(default = "default_true")]
    pub client_cert_auth: bool,
}

fn default_true() -> bool {
    true
}

/// Certificates the operator issues from a CA of its own per cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.validity.matches('^([0-9]+(ms|h|m|s))+$') || !self.renewBefore.matches('^([0-9]+(ms|h|m|s))+$') || duration(self.renewBefore) < duration(self.validity)").message("spec.tls.operatorManaged.renewBefore must be shorter than spec.tls.operatorManaged.validity").field_path(".renewBefore"))]
pub struct OperatorManagedTls {
    /// Lifetime of member and client certificates, such as 2160h (90 days, the default); at least 10m.
    #[serde(default = "default_validity")]
    #[schemars(length(max = 24))]
    #[x_kube(
        validation = Rule::new("self.matches('^([0-9]+(ms|h|m|s))+$')").message("spec.tls.operatorManaged.validity must be a duration such as 2160h or 90m"),
        validation = Rule::new("!self.matches('^([0-9]+(ms|h|m|s))+$') || duration(self) >= duration('10m')").message("spec.tls.operatorManaged.validity must be at least 10m")
    )]
    pub validity: String,
    /// Renew a certificate this long before it expires, such as 720h (30 days, the default).
    #[serde(default = "default_renew_before")]
    #[schemars(length(max = 24))]
    #[x_kube(
        validation = Rule::new("self.matches('^([0-9]+(ms|h|m|s))+$')").message("spec.tls.operatorManaged.renewBefore must be a duration such as 720h or 5m"),
        validation = Rule::new("!self.matches('^([0-9]+(ms|h|m|s))+$') || duration(self) >= duration('1m')").message("spec.tls.operatorManaged.renewBefore must be at least 1m")
    )]
    pub renew_before: String,
}

fn default_validity() -> String {
    "2160h".into()
}

fn default_renew_before() -> String {
    "720h".into()
}

impl Default for OperatorManagedTls {
    fn default() -> Self {
        Self { validity: default_validity(), renew_before: default_renew_before() }
    }
}

/// Secrets you manage. Each holds `tls.crt`, `tls.key` and `ca.crt`, as a cert-manager
/// Certificate writes them; a renewed leaf is picked up without a restart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvidedTls {
    /// Serving certificate of the client port; its `ca.crt` is the CA clients' certificates must
    /// chain to. Needs the server auth usage and the members' DNS names (see the README).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("spec.tls.provided.clientSecretName must be a Secret name: lowercase letters, digits, '-' and '.'"))]
    pub client_secret_name: String,
    /// Certificate of the peer port, used both to serve and to dial other members; its `ca.crt` is
    /// the CA of every member's peer certificate. Needs server and client auth usages.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("spec.tls.provided.peerSecretName must be a Secret name: lowercase letters, digits, '-' and '.'"))]
    pub peer_secret_name: String,
    /// Client certificate the operator, its restore agents and its tools present on the client
    /// port; signed by the client Secret's CA, with the client auth usage.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("spec.tls.provided.operatorSecretName must be a Secret name: lowercase letters, digits, '-' and '.'"))]
    pub operator_secret_name: String,
}

/// One certificate the members or the operator use, as found in its Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// What it is for: `client` (serving the client port), `peer` or `operator` (the operator's
    /// client certificate).
    pub purpose: String,
    /// The Secret holding it.
    pub secret_name: String,
    /// When it stops being valid (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// When the operator renews it (operator-managed certificates only; RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews_at: Option<String>,
}

/// The cluster's certificate authority, as far as the members' trust goes (operator-managed
/// TLS; written by the security service alone).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthorityStatus {
    /// SHA-256 fingerprints (first 16 hex digits) of the CAs the members trust. Recorded from the
    /// first rotation on and copied into the pod template: etcd reads its trusted CAs only when
    /// it starts, so a change here restarts the members, one at a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted: Vec<String>,
    /// The rotation in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<CaRotationStatus>,
}

/// A CA rotation in progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaRotationStatus {
    /// The phase it is in.
    pub phase: CaRotationPhase,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Why it started: requested, or the CA expires soon.
    #[serde(default)]
    pub reason: String,
}

/// The phases of a CA rotation; each of the two trust changes restarts every member.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum CaRotationPhase {
    /// Every certificate Secret's `ca.crt` holds the old and the new CA; members restart to trust both.
    #[default]
    TrustingNewCA,
    /// The new CA issues every certificate again; nothing restarts (etcd rereads its key pair).
    IssuingFromNewCA,
    /// `ca.crt` holds the new CA only; members restart to stop trusting the old one.
    DroppingOldCA,
}

impl CaRotationPhase {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrustingNewCA => "TrustingNewCA",
            Self::IssuingFromNewCA => "IssuingFromNewCA",
            Self::DroppingOldCA => "DroppingOldCA",
        }
    }
}

/// etcd's own authentication of its clients.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Turn etcd's authentication on: the operator creates the user `root` with a random password
    /// kept in the Secret `<name>-etcd-root`, and its own user `etcd-operator`, known by its client
    /// certificate. Turning it off again disables authentication; users and roles are kept.
    #[serde(default)]
    pub enabled: bool,
}

/// Who may reach the members: a NetworkPolicy the operator keeps for the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Keep the policy (`true`), remove it (`false`), or follow the operator's default (unset:
    /// the cluster-service's `--member-network-policy`, on in the Helm chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Who else may use the client port (2379), beside the members and the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_from: Vec<k8s_openapi::api::networking::v1::NetworkPolicyPeer>,
    /// Who may scrape the metrics port (2381); the node (kubelet probes) always may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics_from: Vec<k8s_openapi::api::networking::v1::NetworkPolicyPeer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ninety_days_renewed_thirty_days_ahead_with_client_cert_auth() {
        let tls: TlsSpec = serde_json::from_str(r#"{"operatorManaged":{}}"#).unwrap();
        assert!(tls.client_cert_auth);
        assert_eq!(tls.operator_managed, Some(OperatorManagedTls::default()));
        assert_eq!(OperatorManagedTls::default().validity, "2160h");
    }
}
