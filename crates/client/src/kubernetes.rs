//! The Kubernetes client and how components identify themselves to it.

use kube::{Client, Config};

use crate::ClientError;

/// Field manager prefix; each component appends its name (`etcd-operator/lifecycle`).
pub const FIELD_MANAGER_PREFIX: &str = "etcd-operator";

/// Field manager name of a component, used for every server-side apply it makes.
pub fn field_manager(component: &str) -> String {
    format!("{FIELD_MANAGER_PREFIX}/{component}")
}

/// Builds a client from the in-cluster environment or `$KUBECONFIG`.
pub async fn connect() -> Result<Client, ClientError> {
    let config = Config::infer().await.map_err(|e| ClientError::Unavailable {
        target: "kubernetes".into(),
        message: format!("no usable kubeconfig or in-cluster config: {e}"),
    })?;
    Ok(Client::try_from(config)?)
}
