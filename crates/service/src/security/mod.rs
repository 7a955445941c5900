//! SecurityService: the certificates of clusters with spec.tls. With
//! operator-managed TLS it keeps a CA per cluster and issues and renews every
//! certificate from it; with provided Secrets it checks what the user keeps
//! there. Either way the status shows each certificate's expiry and the
//! `CertificatesReady` condition says what is wrong, naming the Secret and key.
//! It also moves a live cluster between plaintext and TLS (`transport`).
//! Nothing here ever deletes a Secret.

mod auth;
pub mod certs;
pub mod decide;
mod read;
mod rotate;
mod transport;

pub use decide::auth::AuthReport;

use std::sync::Arc;

use etcd_operator_api::EtcdCluster;
use etcd_operator_common::ClusterRef;
use etcd_operator_resource::templates::tls::{Purpose, ca_secret, certificate_secret};

use crate::{
    ServiceError,
    config::component,
    core::Core,
    security::{
        certs::Pair,
        decide::{CertificateReport, Issue, Lifetimes, ca_state, plan, rotation::CaKeys},
    },
};

/// Certificates of clusters with spec.tls (the design's SecurityService).
#[derive(Clone)]
pub struct SecurityService {
    pub(crate) core: Arc<Core>,
}

impl SecurityService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Issues what is missing and renews what is due (operator-managed), then reports every
    /// certificate; `None` for a cluster without spec.tls.
    #[tracing::instrument(name = "ReconcileCertificates", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "ReconcileCertificates"))]
    pub async fn reconcile(&self, r: &ClusterRef) -> Result<Option<CertificateReport>, ServiceError> {
        let cluster = self.core.get(r).await?;
        self.ensure(&cluster).await?;
        self.core.certificates(&cluster).await
    }

    /// The CAs the members trust and a rotation in progress, as recorded.
    pub async fn certificate_authority(
        &self,
        r: &ClusterRef,
    ) -> Result<etcd_operator_api::cluster::CertificateAuthorityStatus, ServiceError> {
        let cluster = self.core.get(r).await?;
        Ok(cluster.status.and_then(|s| s.certificate_authority).unwrap_or_default())
    }

    /// What each certificate Secret holds, without changing anything.
    pub async fn report(&self, r: &ClusterRef) -> Result<Option<CertificateReport>, ServiceError> {
        self.core.certificates(&self.core.get(r).await?).await
    }

    /// Issues the operator-managed certificates that are missing, unusable or due for renewal
    /// (the lifecycle calls it before members that mount them are created). A CA is only ever
    /// created for a cluster none of whose certificates exist: a lost CA is reported, not replaced.
    pub(crate) async fn ensure(&self, cluster: &EtcdCluster) -> Result<(), ServiceError> {
        // Also for a spec.tls about to be turned on: members mount its certificates once they exist.
        let Some(tls) = cluster.tls_in_use() else { return Ok(()) };
        let Some(managed) = &tls.operator_managed else { return Ok(()) };
        if cluster.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let ctx = self.core.template(cluster);
        let names = &ctx.names;
        let ca_view = self.core.read_secret(&names.namespace, &names.ca_secret()).await?;
        let leaves = self.core.certificate_secrets(names, tls).await?;
        let now = etcd_operator_common::time::now();
        let lifetimes = Lifetimes::of(managed);
        let ca = ca_state(&ca_view);
        // A lost CA is reported by the status (CertificatesReady), so it is not an error here.
        let Ok(issues) = plan(&ca, &ca_view.name, &leaves, now, lifetimes) else {
            return Ok(());
        };
        if issues.is_empty() {
            return Ok(());
        }
        let secrets = self.core.managers_as(&names.namespace, component::SECURITY).secrets;
        // What every ca.crt holds: the CA, and during a rotation the other one too.
        let mut issuing = match ca {
            Ok(_) => Some(rotate::issuing(CaKeys::of(ca_view.data.as_ref()))?),
            Err(_) => None,
        };
        for issue in issues {
            match issue {
                Issue::Ca => {
                    let new = certs::issue_ca(names, now).map_err(internal)?;
                    secrets.apply(&ca_secret(&ctx, &new.crt, &new.key, &[])?).await?;
                    tracing::info!(secret = names.ca_secret(), "issued the cluster's CA");
                    let bundle = new.crt.clone();
                    issuing = Some((new, bundle));
                }
                Issue::Leaf(purpose) => {
                    let (ca, bundle) = issuing.as_ref().ok_or_else(|| internal("no CA to issue from"))?;
                    self.issue_leaf(&ctx, purpose, ca, bundle, lifetimes).await?;
                }
            }
        }
        Ok(())
    }

    async fn issue_leaf(
        &self,
        ctx: &etcd_operator_resource::templates::TemplateContext<'_>,
        purpose: Purpose,
        ca: &Pair,
        bundle: &str,
        lifetimes: Lifetimes,
    ) -> Result<(), ServiceError> {
        let leaf =
            certs::issue(&ctx.names, purpose, ca, etcd_operator_common::time::now(), lifetimes.validity)
                .map_err(internal)?;
        let secret = certificate_secret(ctx, purpose, &leaf.crt, &leaf.key, bundle)?;
        self.core.managers_as(&ctx.names.namespace, component::SECURITY).secrets.apply(&secret).await?;
        tracing::info!(
            secret = ctx.names.tls_secret(purpose.as_str()),
            purpose = purpose.as_str(),
            "issued a certificate"
        );
        Ok(())
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}
