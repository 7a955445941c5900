//! Reading a cluster's certificate Secrets: for the status (what they hold)
//! and for every connection the operator makes to the members (its client
//! certificate and the CA it trusts). Extends the core, as every observation
//! and every etcd call needs it.

use std::collections::BTreeMap;

use etcd_operator_api::{EtcdCluster, cluster::TlsSpec};
use etcd_operator_client::etcd::{EtcdOptions, EtcdTls};
use etcd_operator_resource::{
    names::ClusterNames,
    templates::tls::{PURPOSES, Purpose, secret_name},
};

use super::decide::{self, CertificateReport, Found, Lifetimes, SecretView, examine};
use crate::{ServiceError, core::Core};

impl Core {
    /// Names of a cluster's objects, with URLs in the scheme its spec asks for.
    pub(crate) fn names_of(&self, cluster: &EtcdCluster) -> ClusterNames {
        ClusterNames::of(cluster, &self.cluster_domain())
    }

    /// A Secret's data, `None` when it does not exist.
    pub(crate) async fn read_secret(&self, namespace: &str, name: &str) -> Result<SecretView, ServiceError> {
        let secret = self.managers(namespace).secrets.get(name).await?;
        let data = secret.map(|s| {
            s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect::<BTreeMap<_, _>>()
        });
        Ok(SecretView { name: name.to_owned(), data })
    }

    /// What the client, peer and operator certificate Secrets hold.
    pub(crate) async fn certificate_secrets(
        &self,
        names: &ClusterNames,
        tls: &TlsSpec,
    ) -> Result<Vec<Found>, ServiceError> {
        let mut found = Vec::new();
        for purpose in PURPOSES {
            let secret = self.read_secret(&names.namespace, &secret_name(names, tls, purpose)).await?;
            found.push(examine(purpose, &secret));
        }
        Ok(found)
    }

    /// What each certificate Secret of a cluster with TLS (on, or being turned on or off) holds;
    /// `None` without.
    pub(crate) async fn certificates(
        &self,
        cluster: &EtcdCluster,
    ) -> Result<Option<CertificateReport>, ServiceError> {
        let Some(tls) = cluster.tls_in_use() else { return Ok(None) };
        let names = self.names_of(cluster);
        let found = self.certificate_secrets(&names, tls).await?;
        let (managed, problem) = match &tls.operator_managed {
            Some(m) => {
                let ca = self.read_secret(&names.namespace, &names.ca_secret()).await?;
                let now = etcd_operator_common::time::now();
                let lifetimes = Lifetimes::of(m);
                let problem = decide::plan(&decide::ca_state(&ca), &ca.name, &found, now, lifetimes).err();
                (Some(lifetimes), problem)
            }
            None => (None, None),
        };
        Ok(Some(CertificateReport { found, managed, problem }))
    }

    /// How the operator connects to this cluster's members: with spec.tls, over TLS with its
    /// client certificate, trusting the CA of the members' serving certificate.
    pub(crate) async fn etcd_options(&self, cluster: &EtcdCluster) -> Result<EtcdOptions, ServiceError> {
        let mut options = self.plain_etcd_options();
        // Used for the members that speak TLS; while a move is in progress, the others are
        // reached in plaintext (the client layer picks by each endpoint's scheme).
        let Some(tls) = cluster.member_transport().certificates else { return Ok(options) };
        let names = self.names_of(cluster);
        let key = |view: &SecretView, key: &str| {
            view.data.as_ref().and_then(|d| d.get(key)).cloned().ok_or_else(|| {
                ServiceError::FailedPrecondition(format!(
                    "EtcdCluster {}/{} uses TLS, but Secret {} {}; see the CertificatesReady condition",
                    names.namespace,
                    names.name,
                    view.name,
                    if view.data.is_none() {
                        "does not exist".to_owned()
                    } else {
                        format!("has no key {key}")
                    }
                ))
            })
        };
        let client = self.read_secret(&names.namespace, &secret_name(&names, tls, Purpose::Client)).await?;
        let operator =
            self.read_secret(&names.namespace, &secret_name(&names, tls, Purpose::Operator)).await?;
        options.tls = Some(EtcdTls {
            ca_pem: key(&client, "ca.crt")?,
            identity: Some((key(&operator, "tls.crt")?, key(&operator, "tls.key")?)),
            server_name: names.client_service_host(),
        });
        Ok(options)
    }
}
