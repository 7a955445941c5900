//! What the kubelet gives every pod to reach the API server, as the
//! ServiceAccount admission plugin and kube-proxy arrange it: the `kubernetes`
//! Service (a forwarder on the node's address to the API server, named
//! `kubernetes.default.svc` in pods' hosts files), `KUBERNETES_SERVICE_HOST`/
//! `_PORT`, and the service account files (`token`, `ca.crt`, `namespace`)
//! mounted read-only at `/var/run/secrets/kubernetes.io/serviceaccount`
//! unless `automountServiceAccountToken` is false.
//!
//! The token is signed by the API server and bound to the pod: it stops
//! working when the pod or its account goes. It is valid for a year, as
//! kube-apiserver's `--service-account-extend-token-expiration` makes the
//! default mount's tokens for clients that do not reread them.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::{
    auth::{API_AUDIENCE, Tokens, tokens},
    store::Txn,
};

/// Lifetime of the default mount's token.
const EXTENDED_EXPIRATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where the files are mounted in containers.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The volume name the node uses for them.
pub const VOLUME: &str = "kube-api-access";
/// The API server's name as pods see it.
pub const SERVICE_HOST: &str = "kubernetes.default.svc";

/// Whether a pod gets the service account files and environment.
pub fn automount(pod: &Value) -> bool {
    pod["spec"]["automountServiceAccountToken"] != false
}

/// A token for `pod`'s service account, bound to the pod, for `audiences` during `ttl`; an error
/// (the kubelet's) when the account does not exist.
pub fn token(
    txn: &Txn<'_>,
    signer: &Tokens,
    pod: &Value,
    audiences: Vec<String>,
    ttl: Duration,
) -> Result<String, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let account = pod["spec"]["serviceAccountName"].as_str().unwrap_or("default");
    let found = txn.get(&("/serviceaccounts".into(), ns.into(), account.into()));
    let found =
        found.ok_or_else(|| format!("failed to fetch token: serviceaccounts \"{account}\" not found"))?;
    let claim = tokens::KubernetesClaim {
        namespace: ns.into(),
        serviceaccount: tokens::Bound::of(found),
        pod: Some(tokens::Bound::of(pod)),
    };
    signer.issue(claim, audiences, ttl).map(|(token, _)| token)
}

/// Writes the service account files of `pod` under its directory; returns the directory.
pub fn write_files(
    txn: &Txn<'_>,
    signer: &Tokens,
    pod_dir: &Path,
    pod: &Value,
    ca_pem: &str,
) -> Result<PathBuf, String> {
    let dir = pod_dir.join("serviceaccount");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let token = token(txn, signer, pod, vec![API_AUDIENCE.into()], EXTENDED_EXPIRATION)?;
    for (name, content) in [("token", token.as_str()), ("ca.crt", ca_pem), ("namespace", ns)] {
        std::fs::write(dir.join(name), content).map_err(|e| format!("service account {name}: {e}"))?;
    }
    Ok(dir)
}

/// The environment variables of the `kubernetes` Service.
pub fn environment(api_port: u16) -> Vec<(String, String)> {
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), SERVICE_HOST.into()),
        ("KUBERNETES_SERVICE_PORT".into(), api_port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), api_port.to_string()),
        ("KUBERNETES_PORT".into(), format!("tcp://{SERVICE_HOST}:{api_port}")),
    ]
}

/// Forwards `node_ip:<api port>` to the API server until the task is dropped.
pub async fn forward(listener: TcpListener, api: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else { continue };
        let api = api.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&api).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
