//! RecoveryService over gRPC.

use etcd_operator_proto::v1alpha1::{self as pb, recovery_service_server::RecoveryService as RecoveryRpc};
use etcd_operator_service::RecoveryService;
use tonic::{Request, Response, Status};

use super::{cluster::status_of, convert, status::to_status};
use crate::auth::{Auth, Rpc};

/// The gRPC face of member replacement and quorum-loss recovery.
#[derive(Clone)]
pub struct RecoveryApi {
    service: RecoveryService,
    auth: Auth,
}

impl RecoveryApi {
    /// Wraps the service layer; `auth` authorizes each call.
    pub fn new(service: RecoveryService, auth: Auth) -> Self {
        Self { service, auth }
    }
}

#[tonic::async_trait]
impl RecoveryRpc for RecoveryApi {
    async fn replace_member(
        &self,
        request: Request<pb::ReplaceMemberRequest>,
    ) -> Result<Response<pb::ReplaceMemberResponse>, Status> {
        let req = request.get_ref();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::MemberMaintenance.on(&r.namespace, &r.name)).await?;
        let member = (!req.member.is_empty()).then_some(req.member.as_str());
        let out = self.service.replace_member(&r, member).await.map_err(to_status)?;
        Ok(Response::new(pb::ReplaceMemberResponse {
            status: Some(status_of(&r, &out)),
            requeue: Some(convert::requeue(out.requeue_after)),
        }))
    }

    async fn recover_quorum(
        &self,
        request: Request<pb::RecoverQuorumRequest>,
    ) -> Result<Response<pb::RecoverQuorumResponse>, Status> {
        let req = request.get_ref();
        let (r, seen) =
            convert::look(req.cluster.as_ref(), req.seen_generation).map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::MemberMaintenance.on(&r.namespace, &r.name)).await?;
        let out = self.service.recover_quorum_seen(&r, seen).await.map_err(to_status)?;
        Ok(Response::new(pb::RecoverQuorumResponse {
            status: Some(status_of(&r, &out.cluster)),
            requeue: Some(convert::requeue(out.cluster.requeue_after)),
            decision: out.decision,
            quorum_holds: out.quorum_holds,
        }))
    }
}
