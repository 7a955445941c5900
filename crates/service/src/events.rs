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
