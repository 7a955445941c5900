//! What the kubelet gives every pod to reach the API server, as the
//! ServiceAccount admission plugin and kube-proxy arrange it: the `kubernetes`
//! Service (a forwarder on the node's address to the API server, named
//! `kubernetes.default.svc` in pods' hosts files), `KUBERNETES_SERVICE_HOST`/
//! `_PORT`, and the service account files (`token`, `ca.crt`, `namespace`)
//! mounted read-only at `/var/run/secrets/kubernetes.io/serviceaccount`
//! unless `automountServiceAccountToken` is false.
//!
//! kube-sim authenticates nobody, so the token only names the account.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

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

/// Writes the service account files of `pod` under its directory; returns the directory.
pub fn write_files(pod_dir: &Path, pod: &Value, ca_pem: &str) -> Result<PathBuf, String> {
    let dir = pod_dir.join("serviceaccount");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let account = pod["spec"]["serviceAccountName"].as_str().unwrap_or("default");
    let token = format!("kube-sim:serviceaccount:{ns}:{account}");
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
