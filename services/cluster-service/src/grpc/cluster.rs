//! ClusterService over gRPC (the lifecycle): validate the request, call the service layer, map the answer.

use etcd_operator_common::Violations;
use etcd_operator_proto::v1alpha1::{self as pb, cluster_service_server::ClusterService as ClusterRpc};
use etcd_operator_service::{ClusterOutcome, LifecycleService, ServiceError, SpecUpdate};
use tonic::{Request, Response, Status};

use super::{convert, status::to_status};
use crate::auth::{Auth, Rpc};

/// The gRPC face of [`LifecycleService`].
#[derive(Clone)]
pub struct ClusterApi {
    service: LifecycleService,
    auth: Auth,
}

impl ClusterApi {
    /// Wraps the service layer; `auth` authorizes each call.
    pub fn new(service: LifecycleService, auth: Auth) -> Self {
        Self { service, auth }
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
        let req = request.get_ref();
        let (r, spec) = ref_and_spec(req.cluster.as_ref(), req.spec.as_ref())?;
        let rpc = if spec.is_some() { Rpc::CreateClusterObject } else { Rpc::ReconcileCluster };
        self.auth.allow(&request, rpc.on(&r.namespace, &r.name)).await?;
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
        let req = request.get_ref();
        let paths = req.update_mask.as_ref().map(|m| m.paths.as_slice()).unwrap_or_default();
        let (r, update) = if paths.is_empty() {
            let (r, spec) = ref_and_spec(req.cluster.as_ref(), req.spec.as_ref())?;
            (r, spec.map(|s| SpecUpdate::Replace(Box::new(s))))
        } else {
            let (r, _) = ref_and_spec(req.cluster.as_ref(), None)?;
            let patch = convert::spec_patch(req.spec.as_ref(), paths)
                .map_err(|v| to_status(ServiceError::InvalidArgument(v)))?;
            (r, Some(SpecUpdate::Patch(patch)))
        };
        // Changing spec.size alone is what Kubernetes' scale subresource grants; anything else
        // changes the object.
        let rpc = if paths == ["size"] { Rpc::Scale } else { Rpc::ReconcileCluster };
        self.auth.allow(&request, rpc.on(&r.namespace, &r.name)).await?;
        let out = self.service.update_cluster(&r, update).await.map_err(to_status)?;
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
        let force = request.get_ref().force;
        let rpc = if force { Rpc::ForceDeleteCluster } else { Rpc::FinalizeCluster };
        self.auth.allow(&request, rpc.on(&r.namespace, &r.name)).await?;
        let out = self.service.delete_cluster(&r, force).await.map_err(to_status)?;
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
        let fresh = request.get_ref().fresh;
        let rpc = if fresh { Rpc::CheckHealth } else { Rpc::GetClusterStatus };
        self.auth.allow(&request, rpc.on(&r.namespace, &r.name)).await?;
        let out = if fresh {
            self.service.get_cluster_status(&r).await
        } else {
            self.service.recorded_cluster_status(&r).await
        };
        let out = out.map_err(to_status)?;
        Ok(Response::new(pb::GetClusterStatusResponse {
            status: Some(status_of(&r, &out)),
            requeue: Some(convert::requeue(out.requeue_after)),
            observed: fresh,
        }))
    }

    async fn list_clusters(
        &self,
        request: Request<pb::ListClustersRequest>,
    ) -> Result<Response<pb::ListClustersResponse>, Status> {
        let namespace = request.get_ref().namespace.clone();
        let page = Page::of(request.get_ref()).map_err(|v| to_status(ServiceError::InvalidArgument(v)))?;
        self.auth.allow(&request, Rpc::ListClusters.on(&namespace, "")).await?;
        let clusters = self.service.list_clusters(&namespace).await.map_err(to_status)?;
        let mut refs: Vec<(etcd_operator_common::ClusterRef, &etcd_operator_api::EtcdCluster)> = clusters
            .iter()
            .map(|c| {
                let r = etcd_operator_common::ClusterRef {
                    namespace: c.metadata.namespace.clone().unwrap_or_default(),
                    name: c.metadata.name.clone().unwrap_or_default(),
                };
                (r, c)
            })
            .collect();
        refs.sort_by(|(a, _), (b, _)| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let (shown, next_page_token) = page.select(refs, |(r, _)| format!("{}/{}", r.namespace, r.name));
        let clusters = shown
            .into_iter()
            .map(|(r, c)| convert::status(&r, Some(c), &c.status.clone().unwrap_or_default()))
            .collect();
        Ok(Response::new(pb::ListClustersResponse { clusters, next_page_token }))
    }
}

/// A page of a listing: how many, after which key.
struct Page {
    size: usize,
    after: Option<String>,
}

impl Page {
    const DEFAULT: usize = 100;
    const MAX: i32 = 500;

    /// The page a request asks for; every broken rule of the request together (its namespace's
    /// too).
    fn of(req: &pb::ListClustersRequest) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let ns = &req.namespace;
        v.check(
            ns.is_empty() || etcd_operator_common::cluster_ref::is_dns_label(ns),
            "namespace",
            "must be empty (all namespaces) or a DNS label",
        );
        v.check((0..=Self::MAX).contains(&req.page_size), "page_size", "must be between 0 (100) and 500");
        let after = (!req.page_token.is_empty()).then(|| req.page_token.clone());
        v.check(
            after.as_deref().is_none_or(|t| t.split_once('/').is_some()),
            "page_token",
            "must be a next_page_token this API returned",
        );
        v.into_result()?;
        let size = if req.page_size == 0 { Self::DEFAULT } else { req.page_size as usize };
        Ok(Self { size, after })
    }

    /// The items after the token (ordered by `key`), at most a page; and the next token.
    fn select<T>(&self, ordered: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, String) {
        let rest: Vec<T> =
            ordered.into_iter().filter(|t| self.after.as_ref().is_none_or(|a| key(t) > *a)).collect();
        let more = rest.len() > self.size;
        let page: Vec<T> = rest.into_iter().take(self.size).collect();
        let next = if more { page.last().map(&key).unwrap_or_default() } else { String::new() };
        (page, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let keys: Vec<String> = ["a/x", "a/y", "b/x", "b/y", "c/z"].iter().map(|s| (*s).to_owned()).collect();
        let mut token = String::new();
        let mut seen = Vec::new();
        loop {
            let req = pb::ListClustersRequest { namespace: String::new(), page_size: 2, page_token: token };
            let (page, next) = Page::of(&req).unwrap().select(keys.clone(), Clone::clone);
            seen.extend(page);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, keys);
        let bad =
            pb::ListClustersRequest { namespace: "Team_A".into(), page_size: 501, page_token: "x".into() };
        let v = Page::of(&bad).err().unwrap();
        let fields: Vec<&str> = v.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["namespace", "page_size", "page_token"]);
    }
}
