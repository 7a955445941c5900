//! HealthService over gRPC.

use etcd_operator_common::Violations;
use etcd_operator_proto::v1alpha1::{self as pb, health_service_server::HealthService as HealthRpc};
use etcd_operator_service::{HealthService, ServiceError};
use tonic::{Request, Response, Status};

use super::{cluster::status_of, convert, status::to_status};
use crate::auth::{Auth, Rpc};

/// The gRPC face of the health operations of the service layer.
#[derive(Clone)]
pub struct HealthApi {
    service: HealthService,
    auth: Auth,
}

impl HealthApi {
    /// Wraps the service layer; `auth` authorizes each call.
    pub fn new(service: HealthService, auth: Auth) -> Self {
        Self { service, auth }
    }
}

#[tonic::async_trait]
impl HealthRpc for HealthApi {
    async fn check_health(
        &self,
        request: Request<pb::CheckHealthRequest>,
    ) -> Result<Response<pb::CheckHealthResponse>, Status> {
        let req = request.get_ref();
        let (r, seen) =
            convert::look(req.cluster.as_ref(), req.seen_generation).map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::CheckHealth.on(&r.namespace, &r.name)).await?;
        let out = self.service.check_health_seen(&r, seen).await.map_err(to_status)?;
        Ok(Response::new(pb::CheckHealthResponse {
            status: Some(status_of(&r, &out)),
            requeue: Some(convert::requeue(out.requeue_after)),
        }))
    }

    async fn defragment_member(
        &self,
        request: Request<pb::DefragmentMemberRequest>,
    ) -> Result<Response<pb::DefragmentMemberResponse>, Status> {
        let req = request.get_ref();
        let mut violations = Violations::default();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| violations.0.extend(v.0)).ok();
        violations.check(
            etcd_operator_common::cluster_ref::is_dns_label(&req.member),
            "member",
            "must be a member (pod) name of the cluster",
        );
        let Some(r) = r.filter(|_| violations.is_empty()) else {
            return Err(to_status(ServiceError::InvalidArgument(violations)));
        };
        self.auth.allow(&request, Rpc::MemberMaintenance.on(&r.namespace, &r.name)).await?;
        let out = self.service.defragment_member(&r, &req.member).await.map_err(to_status)?;
        Ok(Response::new(pb::DefragmentMemberResponse {
            db_size_before_bytes: out.before,
            db_size_after_bytes: out.after,
        }))
    }
}
