//! ClusterService over gRPC (the lifecycle): validate the request, call the service layer, map the answer.

use etcd_operator_common::Violations;
use etcd_operator_proto::v1alpha1::{self as pb, cluster_service_server::ClusterService as ClusterRpc};
use etcd_operator_service::{ClusterOutcome, LifecycleService, ServiceError};
use tonic::{Request, Response, Status};

use super::{convert, status::to_status};

/// The gRPC face of [`LifecycleService`].
#[derive(Clone)]
pub struct ClusterApi {
    service: LifecycleService,
}

impl ClusterApi {
    /// Wraps the service layer.
    pub fn new(service: LifecycleService) -> Self {
        Self { service }
    }
}

/// Reference and optional spec of a create or update request, all violations together.
fn ref_and_spec(
    cluster: Option<&pb::ClusterRef>,
    spec: Option<&pb::ClusterSpec>,
) -> Result<(etcd_operator_common::ClusterRef, Option<etcd_operator_api::EtcdClusterSpec>), Status> {
    let r = convert::cluster_ref(cluster);
    let s = spec.map(convert::spec).transpose();
    match (r, s) {
        (Ok(r), Ok(s)) => Ok((r, s)),
        (r, s) => {
            let mut all = Violations::default();
            all.0.extend(r.err().into_iter().flat_map(|v| v.0));
            all.0.extend(s.err().into_iter().flat_map(|v| v.0));
            Err(to_status(ServiceError::InvalidArgument(all)))
        }
    }
}

/// The status message of an outcome.
pub(super) fn status_of(r: &etcd_operator_common::ClusterRef, o: &ClusterOutcome) -> pb::ClusterStatus {
    let mut s = convert::status(r, None, &o.status);
    s.generation = o.generation;
    s.desired_size = o.desired_size;
    s
}

#[tonic::async_trait]
impl ClusterRpc for ClusterApi {
    async fn create_cluster(
        &self,
        request: Request<pb::CreateClusterRequest>,
    ) -> Result<Response<pb::CreateClusterResponse>, Status> {
        let req = request.into_inner();
        let (r, spec) = ref_and_spec(req.cluster.as_ref(), req.spec.as_ref())?;
        let out = self.service.create_cluster(&r, spec).await.map_err(to_status)?;
        Ok(Response::new(pb::CreateClusterResponse {
            status: Some(status_of(&r, &out)),
            requeue: Some(convert::requeue(out.requeue_after)),
        }))
    }

    async fn update_cluster(
        &self,
        request: Request<pb::UpdateClusterRequest>,
    ) -> Result<Response<pb::UpdateClusterResponse>, Status> {
        let req = request.into_inner();
        let (r, spec) = ref_and_spec(req.cluster.as_ref(), req.spec.as_ref())?;
        let out = self.service.update_cluster(&r, spec).await.map_err(to_status)?;
        Ok(Response::new(pb::UpdateClusterResponse {
            status: Some(status_of(&r, &out)),
            requeue: Some(convert::requeue(out.requeue_after)),
        }))
    }

    async fn delete_cluster(
        &self,
        request: Request<pb::DeleteClusterRequest>,
    ) -> Result<Response<pb::DeleteClusterResponse>, Status> {
        let (r, _) = ref_and_spec(request.get_ref().cluster.as_ref(), None)?;
        let out = self.service.delete_cluster(&r).await.map_err(to_status)?;
        let again = (!out.done).then_some(std::time::Duration::from_secs(2));
        Ok(Response::new(pb::DeleteClusterResponse {
            done: out.done,
            retained_pvcs: out.retained_pvcs,
            requeue: Some(convert::requeue(again)),
        }))
    }

    async fn get_cluster_status(
        &self,
        request: Request<pb::GetClusterStatusRequest>,
    ) -> Result<Response<pb::GetClusterStatusResponse>, Status> {
        let (r, _) = ref_and_spec(request.get_ref().cluster.as_ref(), None)?;
        let out = self.service.get_cluster_status(&r).await.map_err(to_status)?;
        Ok(Response::new(pb::GetClusterStatusResponse {
            status: Some(status_of(&r, &out)),
            requeue: Some(convert::requeue(out.requeue_after)),
        }))
    }

    async fn list_clusters(
        &self,
        request: Request<pb::ListClustersRequest>,
    ) -> Result<Response<pb::ListClustersResponse>, Status> {
        let namespace = request.into_inner().namespace;
        if !namespace.is_empty() && !etcd_operator_common::cluster_ref::is_dns_label(&namespace) {
            let mut v = Violations::default();
            v.push("namespace", "must be empty (all namespaces) or a DNS label");
            return Err(to_status(ServiceError::InvalidArgument(v)));
        }
        let clusters = self.service.list_clusters(&namespace).await.map_err(to_status)?;
        let clusters = clusters
            .iter()
            .map(|c| {
                let r = etcd_operator_common::ClusterRef {
                    namespace: c.metadata.namespace.clone().unwrap_or_default(),
                    name: c.metadata.name.clone().unwrap_or_default(),
                };
                convert::status(&r, Some(c), &c.status.clone().unwrap_or_default())
            })
            .collect();
        Ok(Response::new(pb::ListClustersResponse { clusters }))
    }
}
