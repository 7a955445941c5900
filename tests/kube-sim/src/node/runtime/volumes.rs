//! Pod volumes as host directories: a PVC is a directory named by the PVC's
//! UID that outlives its pods and goes when the PVC goes; emptyDir lives in
//! the pod's directory and dies with it; ConfigMap and Secret volumes are
//! written as the kubelet's atomic writer does (each key a symlink through
//! `..data` to a timestamped directory) when the pod starts and again whenever
//! their object changes ([`refresh`]); projected volumes combine service
//! account tokens, ConfigMaps, Secrets and the pod's own fields the same way
//! (their tokens renewed at 80% of their lifetime, [`super::projected`]);
//! hostPath is used as is.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use base64::Engine;
use serde_json::Value;

use crate::{auth::Tokens, store::Txn};

/// A volume's files: path in the volume → bytes.
pub(super) type Files = Vec<(String, Vec<u8>)>;

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
    tokens: &Tokens,
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
        } else if v["projected"].is_object() {
            let dir = pod_dir.join("volumes").join(&name);
            let (files, mode) = super::projected::files(txn, tokens, pod, &v["projected"], None)?;
            publish(&dir, &files, mode)?;
            dir
        } else {
            return Err(format!(
                "volume {name:?}: kube-sim's node supports persistentVolumeClaim, emptyDir, hostPath, configMap, secret and projected volumes"
            ));
        };
        std::fs::create_dir_all(&path).map_err(|e| format!("volume {name:?}: {}: {e}", path.display()))?;
        out.insert(name, path);
    }
    Ok(out)
}

fn write_keys(txn: &Txn<'_>, ns: &str, volume: &Value, dir: &Path) -> Result<(), String> {
    let Some((files, mode)) = object_volume(txn, ns, volume)? else { return Ok(()) };
    publish(dir, &files, mode).map(drop)
}

/// Rewrites the ConfigMap and Secret volumes of a running pod whose objects changed, as the
/// kubelet does on its periodic sync (it takes up to a minute or so; kube-sim takes one refresh
/// period). Volumes whose object is gone keep their last contents, as in Kubernetes.
pub fn refresh(txn: &Txn<'_>, tokens: &Tokens, pod_dir: &Path, pod: &Value) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let dir = pod_dir.join("volumes").join(v["name"].as_str().unwrap_or_default());
        if !dir.exists() {
            continue;
        }
        let files = if v["configMap"].is_object() || v["secret"].is_object() {
            object_volume(txn, ns, v).ok().flatten()
        } else if v["projected"].is_object() {
            super::projected::files(txn, tokens, pod, &v["projected"], Some(&dir)).ok()
        } else {
            None
        };
        if let Some((files, mode)) = files {
            let _ = publish(&dir, &files, mode);
        }
    }
}

/// A ConfigMap or Secret volume's files and mode.
#[allow(clippy::type_complexity)]
fn object_volume(
    txn: &Txn<'_>,
    ns: &str,
    volume: &Value,
) -> Result<Option<(Vec<(String, Vec<u8>)>, u32)>, String> {
    let (kind, source) = match volume["configMap"].is_object() {
        true => ("configmaps", &volume["configMap"]),
        false => ("secrets", &volume["secret"]),
    };
    let mode = source["defaultMode"].as_u64().unwrap_or(0o644) as u32;
    Ok(object_files(txn, ns, kind, source)?.map(|files| (files, mode)))
}

/// The files a ConfigMap or Secret (`kind`) source projects (path → bytes); `None` for an
/// optional source whose object does not exist.
pub(super) fn object_files(
    txn: &Txn<'_>,
    ns: &str,
    kind: &str,
    source: &Value,
) -> Result<Option<Files>, String> {
    // A secret volume names it `secretName`; a projected secret source, `name`.
    let name = source["name"].as_str().or(source["secretName"].as_str()).unwrap_or_default();
    let Some(object) = txn.get(&(format!("/{kind}"), ns.to_owned(), name.to_owned())) else {
        if source["optional"] == true {
            return Ok(None);
        }
        return Err(format!("{kind} \"{name}\" not found"));
    };
    let items: Option<Vec<(String, String)>> = source["items"].as_array().map(|items| {
        items
            .iter()
            .map(|i| {
                (i["key"].as_str().unwrap_or_default().into(), i["path"].as_str().unwrap_or_default().into())
            })
            .collect()
    });
    let mut files = Vec::new();
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
        files.push((target, bytes));
    }
    files.sort();
    Ok(Some(files))
}

/// The kubelet's atomic writer: the files go into a new timestamped directory, `..data` is
/// switched to it with one rename, and every top-level name is a symlink through `..data`, so a
/// reader sees the old set or the new one, never a mix. Returns whether anything changed.
pub(super) fn publish(dir: &Path, files: &[(String, Vec<u8>)], mode: u32) -> Result<bool, String> {
    let data = dir.join("..data");
    let current = files.iter().all(|(path, bytes)| std::fs::read(data.join(path)).is_ok_and(|b| &b == bytes));
    let listed = |d: &Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    if current && data.exists() && listed(&data) == top_level(files).len() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let stamp = format!("..{nanos}");
    let target = dir.join(&stamp);
    for (path, bytes) in files {
        let file = target.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&file, bytes).map_err(io(&file))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).map_err(io(&file))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &data).map_err(io(&data))?;
    let names = top_level(files);
    for name in &names {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).map_err(io(&link))?;
        }
    }
    // What the new set no longer holds, and the directories of earlier sets.
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old_set = name.starts_with("..") && name != "..data" && name != stamp;
        if old_set {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if !name.starts_with("..") && !names.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(true)
}

fn io(p: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", p.display())
}

fn top_level(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut names: Vec<String> =
        files.iter().map(|(p, _)| p.split('/').next().unwrap_or_default().to_owned()).collect();
    names.dedup();
    names
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

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn a_changed_object_replaces_the_whole_set_at_once_and_an_unchanged_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("tls");
        assert!(publish(&vol, &files(&[("tls.crt", "old"), ("tls.key", "k1")]), 0o400).unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("tls.crt")).unwrap(), "old");
        assert!(std::fs::symlink_metadata(vol.join("tls.crt")).unwrap().file_type().is_symlink());
        assert!(!publish(&vol, &files(&[("tls.crt", "old"), ("tls.key", "k1")]), 0o400).unwrap());
        assert!(publish(&vol, &files(&[("tls.crt", "new"), ("ca.crt", "ca")]), 0o400).unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("tls.crt")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(vol.join("ca.crt")).unwrap(), "ca");
        assert!(!vol.join("tls.key").exists(), "a key the object no longer has goes");
        let sets = std::fs::read_dir(&vol)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("..") && e.file_name() != "..data")
            .count();
        assert_eq!(sets, 1, "earlier sets are removed");
        let mode = std::fs::metadata(vol.join("..data/tls.crt")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
    }
}
