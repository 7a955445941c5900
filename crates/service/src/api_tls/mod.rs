//! The CA of the operator's own gRPC API and the serving certificates it issues.
//!
//! The cluster-service keeps the CA in a Secret of its namespace, made once by whichever replica
//! starts first and never replaced (a Helm `genCA` would be new on every upgrade, and
//! `lookup` sees nothing when rendering offline). Each replica issues its own short-lived
//! serving certificate from it in memory and renews it at two thirds of its life. Clients trust
//! the CA through ConfigMaps holding only its certificate: one in the operator's namespace
//! (published here) and one per cluster (applied with the members, `templates::api_ca`).

pub mod decide;

use chrono::{DateTime, Utc};
use etcd_operator_client::kubernetes::field_manager;
use etcd_operator_resource::{
    managers::{ConfigMapManager, SecretManager},
    templates::api_ca,
};
use k8s_openapi::api::core::v1::Secret;

use crate::{
    ServiceError,
    config::component,
    security::certs::{self, Pair},
};
use decide::ServingNames;

/// Where the API's CA is kept and published.
#[derive(Clone)]
pub struct ApiCa {
    secrets: SecretManager,
    config_maps: ConfigMapManager,
    namespace: String,
    secret: String,
    config_map: String,
}

impl ApiCa {
    /// The CA kept in Secret `secret` and published in ConfigMap `config_map`, both in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, secret: &str, config_map: &str) -> Self {
        let fm = field_manager(component::API_TLS);
        Self {
            secrets: SecretManager::new(client.clone(), namespace, &fm),
            config_maps: ConfigMapManager::new(client, namespace, &fm),
            namespace: namespace.into(),
            secret: secret.into(),
            config_map: config_map.into(),
        }
    }

    /// Reads the CA, making it first when no replica has. Two replicas starting together both
    /// try to create it; the second reads the first's.
    pub async fn load_or_create(&self, now: DateTime<Utc>) -> Result<Pair, ServiceError> {
        if let Some(secret) = self.secrets.get(&self.secret).await? {
            return self.read(&secret);
        }
        let ca = certs::issue_named_ca("etcd-operator API CA", now).map_err(internal)?;
        let secret = api_ca::ca_secret(&self.namespace, &self.secret, &ca.crt, &ca.key);
        if self.secrets.create_once(&secret).await?.is_some() {
            tracing::info!(secret = %self.secret, "created the API's CA");
            return Ok(ca);
        }
        let theirs = self.secrets.get(&self.secret).await?.ok_or_else(|| {
            ServiceError::Unavailable(format!(
                "Secret {}/{} was created and deleted",
                self.namespace, self.secret
            ))
        })?;
        self.read(&theirs)
    }

    /// Publishes the CA's certificate for the operator's own pods.
    pub async fn publish(&self, ca: &Pair) -> Result<(), ServiceError> {
        let cm = api_ca::ca_config_map(&self.namespace, &self.config_map, &ca.crt);
        self.config_maps.apply(&cm).await?;
        Ok(())
    }

    fn read(&self, secret: &Secret) -> Result<Pair, ServiceError> {
        let text = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .ok_or_else(|| {
                    ServiceError::FailedPrecondition(format!(
                        "Secret {}/{} has no {key}: it must hold the API's CA as tls.crt and tls.key",
                        self.namespace, self.secret
                    ))
                })
        };
        let ca = Pair { crt: text("tls.crt")?, key: text("tls.key")? };
        certs::ca_usable(&ca).map_err(|e| {
            ServiceError::FailedPrecondition(format!(
                "Secret {}/{} does not hold a usable CA: {e}",
                self.namespace, self.secret
            ))
        })?;
        Ok(ca)
    }
}

/// A serving certificate for `names`, valid for `validity` from `now`.
pub fn serving(
    ca: &Pair,
    names: &ServingNames,
    now: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Pair, ServiceError> {
    let (dns, ips) = names.sans();
    let cn = format!("{}.{}.svc", names.service, names.namespace);
    certs::issue_server(&cn, &dns, &ips, ca, now, validity).map_err(internal)
}

fn internal(e: certs::IssueError) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serving_certificate_chains_to_the_api_ca_and_lives_as_long_as_asked() {
        let now = etcd_operator_common::time::now();
        let ca = certs::issue_named_ca("etcd-operator API CA", now).unwrap();
        let names = ServingNames {
            service: "cluster-service".into(),
            namespace: "etcd-operator".into(),
            cluster_domain: "cluster.local".into(),
            extra: vec!["10.1.2.3".into()],
        };
        let leaf = serving(&ca, &names, now, chrono::Duration::hours(1)).unwrap();
        let facts = certs::inspect(leaf.crt.as_bytes(), leaf.key.as_bytes(), ca.crt.as_bytes()).unwrap();
        assert_eq!(facts.not_after.timestamp(), (now + chrono::Duration::hours(1)).timestamp());
    }
}
