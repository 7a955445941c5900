//! SecurityService over gRPC.

use etcd_operator_api::{
    Condition,
    cluster::{CONDITION_CERTIFICATES_READY, CertificateAuthorityStatus},
};
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use etcd_operator_proto::v1alpha1::{self as pb, security_service_server::SecurityService as SecurityRpc};
use etcd_operator_service::security::{SecurityService, decide::CertificateReport};
use tonic::{Request, Response, Status};

use super::{convert, status::to_status};
use crate::auth::{Auth, Rpc};

/// The gRPC face of the certificates of the service layer.
#[derive(Clone)]
pub struct SecurityApi {
    service: SecurityService,
    auth: Auth,
}

impl SecurityApi {
    /// Wraps the service layer; `auth` authorizes each call.
    pub fn new(service: SecurityService, auth: Auth) -> Self {
        Self { service, auth }
    }
}

fn cluster_of(r: Option<&pb::ClusterRef>) -> Result<ClusterRef, Status> {
    convert::cluster_ref(r).map_err(|v| to_status(v.into()))
}

/// The report as an answer; nothing but `tls: false` for a cluster without spec.tls.
fn response(report: Option<CertificateReport>) -> pb::CertificatesResponse {
    let Some(report) = report else { return pb::CertificatesResponse::default() };
    let (ready, reason, message) = report.condition(etcd_operator_common::time::now());
    let mut condition = Condition::new(CONDITION_CERTIFICATES_READY, ready, reason, message);
    condition.last_transition_time = now_rfc3339();
    pb::CertificatesResponse {
        tls: true,
        mode: if report.managed.is_some() { "OperatorManaged" } else { "Provided" }.into(),
        certificates: report
            .found
            .iter()
            .map(|f| {
                let s = f.status(report.managed);
                pb::Certificate {
                    purpose: s.purpose,
                    secret_name: s.secret_name,
                    not_after: s.not_after.unwrap_or_default(),
                    renews_at: s.renews_at.unwrap_or_default(),
                    problem: f.problem().unwrap_or_default(),
                }
            })
            .collect(),
        ready: Some(convert::condition(&condition)),
        ..pb::CertificatesResponse::default()
    }
}

/// The report with the CAs the members trust and a rotation in progress.
fn with_ca(report: Option<CertificateReport>, ca: CertificateAuthorityStatus) -> pb::CertificatesResponse {
    pb::CertificatesResponse {
        trusted_cas: ca.trusted,
        ca_rotation_phase: ca.rotation.map(|r| r.phase.as_str().to_owned()).unwrap_or_default(),
        ..response(report)
    }
}

#[tonic::async_trait]
impl SecurityRpc for SecurityApi {
    async fn reconcile_certificates(
        &self,
        request: Request<pb::ReconcileCertificatesRequest>,
    ) -> Result<Response<pb::CertificatesResponse>, Status> {
        let r = cluster_of(request.get_ref().cluster.as_ref())?;
        self.auth.allow(&request, Rpc::ManageCertificates.on(&r.namespace, &r.name)).await?;
        let report = self.service.reconcile(&r).await.map_err(to_status)?;
        Ok(Response::new(response(report)))
    }

    async fn rotate_certificate_authority(
        &self,
        request: Request<pb::RotateCertificateAuthorityRequest>,
    ) -> Result<Response<pb::CertificatesResponse>, Status> {
        let r = cluster_of(request.get_ref().cluster.as_ref())?;
        self.auth.allow(&request, Rpc::ManageCertificates.on(&r.namespace, &r.name)).await?;
        let ca = self.service.rotate_ca(&r).await.map_err(to_status)?;
        let report = self.service.report(&r).await.map_err(to_status)?;
        Ok(Response::new(with_ca(report, ca)))
    }

    async fn get_certificates(
        &self,
        request: Request<pb::GetCertificatesRequest>,
    ) -> Result<Response<pb::CertificatesResponse>, Status> {
        let r = cluster_of(request.get_ref().cluster.as_ref())?;
        self.auth.allow(&request, Rpc::GetCertificates.on(&r.namespace, &r.name)).await?;
        let report = self.service.report(&r).await.map_err(to_status)?;
        let ca = self.service.certificate_authority(&r).await.map_err(to_status)?;
        Ok(Response::new(with_ca(report, ca)))
    }
}
