//! Pod volumes as host directories: a PVC is a directory named by the PVC's
//! UID that outlives its pods and goes when the PVC goes; emptyDir lives in
//! the pod's directory and dies with it; ConfigMap and Secret volumes are
//! written once when the pod starts; hostPath is used as is.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use base64::Engine;
use serde_json::Value;

use crate::store::Txn;

/// Where a PVC's data lives on the node.
pub fn pvc_dir(node_dir: &Path, pvc_uid: &str) -> PathBuf {
    node_dir.join("pv").join(pvc_uid)
}

/// Prepares every volume of a pod; returns volume name → host path.
///
/// An error (a missing PVC or ConfigMap, an unsupported type) keeps the pod
/// Pending with the message, as the kubelet does.
pub fn prepare(
    txn: &Txn<'_>,
    node_dir: &Path,
    pod_dir: &Path,
    pod: &Value,
) -> Result<HashMap<String, PathBuf>, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut out = HashMap::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let path = if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
            let pvc = txn
                .get(&("/persistentvolumeclaims".into(), ns.into(), claim.into()))
                .ok_or_else(|| format!("persistentvolumeclaim \"{claim}\" not found"))?;
            if pvc["metadata"].get("deletionTimestamp").is_some() {
                return Err(format!("persistentvolumeclaim \"{claim}\" is being deleted"));
            }
            pvc_dir(node_dir, pvc["metadata"]["uid"].as_str().unwrap_or_default())
        } else if v["emptyDir"].is_object() {
            pod_dir.join("volumes").join(&name)
        } else if let Some(p) = v["hostPath"]["path"].as_str() {
            PathBuf::from(p)
        } else if v["configMap"].is_object() || v["secret"].is_object() {
            let dir = pod_dir.join("volumes").join(&name);
            write_keys(txn, ns, v, &dir)?;
            dir
        } else {
            return Err(format!(
                "volume {name:?}: kube-sim's node supports persistentVolumeClaim, emptyDir, hostPath, configMap and secret volumes"
            ));
        };
        std::fs::create_dir_all(&path).map_err(|e| format!("volume {name:?}: {}: {e}", path.display()))?;
        out.insert(name, path);
    }
    Ok(out)
}

fn write_keys(txn: &Txn<'_>, ns: &str, volume: &Value, dir: &Path) -> Result<(), String> {
    let (kind, source, name) = if volume["configMap"].is_object() {
        ("configmaps", &volume["configMap"], volume["configMap"]["name"].as_str())
    } else {
        ("secrets", &volume["secret"], volume["secret"]["secretName"].as_str())
    };
    let name = name.unwrap_or_default();
    let Some(object) = txn.get(&(format!("/{kind}"), ns.to_owned(), name.to_owned())) else {
        if source["optional"] == true {
            return Ok(());
        }
        return Err(format!("{kind} \"{name}\" not found"));
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mode = source["defaultMode"].as_u64().unwrap_or(0o644) as u32;
    let items: Option<Vec<(String, String)>> = source["items"].as_array().map(|items| {
        items
            .iter()
            .map(|i| {
                (i["key"].as_str().unwrap_or_default().into(), i["path"].as_str().unwrap_or_default().into())
            })
            .collect()
    });
    for (key, value) in object["data"].as_object().into_iter().flatten() {
        let target = match &items {
            Some(items) => match items.iter().find(|(k, _)| k == key) {
                Some((_, path)) => path.clone(),
                None => continue,
            },
            None => key.clone(),
        };
        let bytes = if kind == "secrets" {
            base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or_default())
                .map_err(|e| format!("secret {name} key {key}: {e}"))?
        } else {
            value.as_str().unwrap_or_default().as_bytes().to_vec()
        };
        let file = dir.join(&target);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// Removes the directories of PVCs that no longer exist, except those in use.
pub fn collect_garbage(node_dir: &Path, live_pvc_uids: &[String], in_use: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(node_dir.join("pv")) else { return };
    for e in entries.flatten() {
        let uid = e.file_name().to_string_lossy().into_owned();
        if !live_pvc_uids.contains(&uid) && !in_use.contains(&e.path()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
