//! ScalingService over gRPC.

use etcd_operator_proto::v1alpha1::{self as pb, scaling_service_server::ScalingService as ScalingRpc};
use etcd_operator_service::{ClusterService, cluster::ClusterOutcome};
use tonic::{Request, Response, Status};

use super::{cluster::status_of, convert, status::to_status};

/// The gRPC face of the scaling operations of the service layer.
#[derive(Clone)]
pub struct ScalingApi {
    service: ClusterService,
}

impl ScalingApi {
    /// Wraps the service layer.
    pub fn new(service: ClusterService) -> Self {
        Self { service }
    }
}

fn answer(r: &etcd_operator_common::ClusterRef, out: &ClusterOutcome) -> (pb::ClusterStatus, pb::Requeue) {
    (status_of(r, out), convert::requeue(out.requeue_after))
}

#[tonic::async_trait]
impl ScalingRpc for ScalingApi {
    async fn scale_up(
        &self,
        request: Request<pb::ScaleUpRequest>,
    ) -> Result<Response<pb::ScaleUpResponse>, Status> {
        let req = request.into_inner();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| to_status(v.into()))?;
        let out = self.service.scale_up(&r, req.target).await.map_err(to_status)?;
        let (status, requeue) = answer(&r, &out);
        Ok(Response::new(pb::ScaleUpResponse { status: Some(status), requeue: Some(requeue) }))
    }

    async fn scale_down(
        &self,
        request: Request<pb::ScaleDownRequest>,
    ) -> Result<Response<pb::ScaleDownResponse>, Status> {
        let req = request.into_inner();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| to_status(v.into()))?;
        let out = self.service.scale_down(&r, req.target).await.map_err(to_status)?;
        let (status, requeue) = answer(&r, &out);
        Ok(Response::new(pb::ScaleDownResponse { status: Some(status), requeue: Some(requeue) }))
    }

    async fn scale_to_zero(
        &self,
        _request: Request<pb::ScaleToZeroRequest>,
    ) -> Result<Response<pb::ScaleToZeroResponse>, Status> {
        Err(Status::unimplemented("ScaleToZero is not available in this version: the cluster keeps running"))
    }

    async fn restart_from_zero(
        &self,
        _request: Request<pb::RestartFromZeroRequest>,
    ) -> Result<Response<pb::RestartFromZeroResponse>, Status> {
        Err(Status::unimplemented("RestartFromZero is not available in this version"))
    }
}
