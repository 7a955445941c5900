//! ScalingService over gRPC.

use etcd_operator_proto::v1alpha1::{self as pb, scaling_service_server::ScalingService as ScalingRpc};
use etcd_operator_service::{ClusterOutcome, ScalingService};
use tonic::{Request, Response, Status};

use super::{cluster::status_of, convert, status::to_status};
use crate::auth::{Auth, Rpc};

/// The gRPC face of the scaling operations of the service layer.
#[derive(Clone)]
pub struct ScalingApi {
    service: ScalingService,
    auth: Auth,
}

impl ScalingApi {
    /// Wraps the service layer; `auth` authorizes each call.
    pub fn new(service: ScalingService, auth: Auth) -> Self {
        Self { service, auth }
    }
}

fn answer(r: &etcd_operator_common::ClusterRef, out: &ClusterOutcome) -> (pb::ClusterStatus, pb::Requeue) {
    (status_of(r, out), convert::requeue(out.requeue_after))
}

#[tonic::async_trait]
impl ScalingRpc for ScalingApi {
    async fn converge(
        &self,
        request: Request<pb::ConvergeRequest>,
    ) -> Result<Response<pb::ConvergeResponse>, Status> {
        let req = request.get_ref();
        let (r, seen) =
            convert::look(req.cluster.as_ref(), req.seen_generation).map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::Scale.on(&r.namespace, &r.name)).await?;
        let done = self.service.converge_seen(&r, seen).await.map_err(to_status)?;
        let (status, requeue) = answer(&r, &done.outcome);
        Ok(Response::new(pb::ConvergeResponse {
            status: Some(status),
            requeue: Some(requeue),
            operation: done.operation.map(|t| t.as_str().to_owned()).unwrap_or_default(),
            reason: done.reason,
        }))
    }

    async fn scale_up(
        &self,
        request: Request<pb::ScaleUpRequest>,
    ) -> Result<Response<pb::ScaleUpResponse>, Status> {
        let req = request.get_ref();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::Scale.on(&r.namespace, &r.name)).await?;
        let out = self.service.scale_up(&r, req.target).await.map_err(to_status)?;
        let (status, requeue) = answer(&r, &out);
        Ok(Response::new(pb::ScaleUpResponse { status: Some(status), requeue: Some(requeue) }))
    }

    async fn scale_down(
        &self,
        request: Request<pb::ScaleDownRequest>,
    ) -> Result<Response<pb::ScaleDownResponse>, Status> {
        let req = request.get_ref();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::Scale.on(&r.namespace, &r.name)).await?;
        let out = self.service.scale_down(&r, req.target).await.map_err(to_status)?;
        let (status, requeue) = answer(&r, &out);
        Ok(Response::new(pb::ScaleDownResponse { status: Some(status), requeue: Some(requeue) }))
    }

    async fn scale_to_zero(
        &self,
        request: Request<pb::ScaleToZeroRequest>,
    ) -> Result<Response<pb::ScaleToZeroResponse>, Status> {
        let req = request.get_ref();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::Scale.on(&r.namespace, &r.name)).await?;
        let out = self.service.scale_to_zero(&r).await.map_err(to_status)?;
        let snapshot_key = out
            .status
            .stopped
            .as_ref()
            .and_then(|s| s.snapshot.as_ref())
            .map(|s| s.location.clone())
            .unwrap_or_default();
        let (status, requeue) = answer(&r, &out);
        Ok(Response::new(pb::ScaleToZeroResponse {
            status: Some(status),
            snapshot_key,
            requeue: Some(requeue),
        }))
    }

    async fn restart_from_zero(
        &self,
        request: Request<pb::RestartFromZeroRequest>,
    ) -> Result<Response<pb::RestartFromZeroResponse>, Status> {
        let req = request.get_ref();
        let r = convert::cluster_ref(req.cluster.as_ref()).map_err(|v| to_status(v.into()))?;
        self.auth.allow(&request, Rpc::Scale.on(&r.namespace, &r.name)).await?;
        let (out, source) = self.service.restart_from_zero(&r, req.target).await.map_err(to_status)?;
        let (status, requeue) = answer(&r, &out);
        Ok(Response::new(pb::RestartFromZeroResponse {
            status: Some(status),
            source: source.as_str().into(),
            requeue: Some(requeue),
        }))
    }
}
