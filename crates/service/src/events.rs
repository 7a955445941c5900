//! Kubernetes Events the services publish; failing to publish is logged, never fatal.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

/// An Event to publish on an object.
pub(crate) struct Note<'a> {
    /// Normal or Warning.
    pub type_: EventType,
    /// CamelCase reason.
    pub reason: &'a str,
    /// What was done (`Scale`, `Backup`, ...).
    pub action: &'a str,
    /// Human text.
    pub note: &'a str,
}

/// Publishes `note` on `object` as `component` of replica `identity`.
pub(crate) async fn publish(
    client: Client,
    component: &str,
    identity: String,
    object: &ObjectReference,
    note: Note<'_>,
) {
    let reporter = Reporter {
        controller: etcd_operator_client::kubernetes::field_manager(component),
        instance: Some(identity),
    };
    let ev = Event {
        type_: note.type_,
        reason: note.reason.into(),
        note: Some(note.note.into()),
        action: note.action.into(),
        secondary: None,
    };
    if let Err(e) = Recorder::new(client, reporter).publish(&ev, object).await {
        tracing::warn!("could not publish event {}: {e}", note.reason);
    }
}

impl crate::core::Core {
    /// Publishes `note` on `cluster` as `component` of this replica.
    pub(crate) async fn announce(
        &self,
        cluster: &etcd_operator_api::EtcdCluster,
        component: &str,
        note: Note<'_>,
    ) {
        use kube::Resource;
        publish(self.kube(), component, self.identity(), &cluster.object_ref(&()), note).await;
    }

    /// Writes one field of a cluster's status as `component`, leaving every other field to its
    /// writer (server-side apply).
    pub(crate) async fn apply_status_field(
        &self,
        r: &etcd_operator_common::ClusterRef,
        component: &str,
        field: serde_json::Value,
    ) -> Result<(), crate::ServiceError> {
        let fm = etcd_operator_client::kubernetes::field_manager(component);
        let clusters: etcd_operator_resource::managers::Manager<etcd_operator_api::EtcdCluster> =
            etcd_operator_resource::managers::Manager::new(self.kube(), &r.namespace, &fm);
        let began = std::time::Instant::now();
        let written = clusters.apply_status(&r.name, &field).await?;
        self.reads.saw(began, &written);
        Ok(())
    }
}
