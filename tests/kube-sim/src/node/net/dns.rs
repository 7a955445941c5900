//! Cluster DNS as hosts files: every pod's `/etc/hosts` (and one file for
//! processes on the host) lists the Services and the pods behind headless
//! Services, as CoreDNS would answer for them.
//!
//! Names follow the Kubernetes DNS spec: `<svc>.<ns>.svc.<domain>` for the
//! ready endpoints of a Service (all selected pods when it publishes
//! not-ready addresses) and `<hostname>.<subdomain>.<ns>.svc.<domain>` for a
//! pod whose subdomain names a headless Service selecting it. The search-path
//! short forms are listed as aliases (`<svc>` only within its namespace).
//! A ClusterIP Service resolves to its endpoints' pod IPs (there is no
//! kube-proxy and no virtual IP). Files are rewritten in place, because each
//! is bind-mounted into running pods.

use std::{
    collections::{BTreeSet, HashMap},
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde_json::Value;

use crate::selectors::LabelSelector;

/// One name for one address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    ip: String,
    fqdn: String,
    namespace: String,
    /// Resolvable from any namespace through the search path.
    global: Vec<String>,
    /// Resolvable only from the same namespace.
    local: Vec<String>,
}

/// The hosts files of one node.
pub struct Dns {
    domain: String,
    host_file: PathBuf,
    api_ip: Option<String>,
    written: Mutex<HashMap<PathBuf, String>>,
}

/// A pod whose processes get a hosts file.
pub struct Viewer<'a> {
    /// The pod.
    pub pod: &'a Value,
    /// Its hosts file.
    pub path: PathBuf,
}

fn ready(pod: &Value) -> bool {
    pod["metadata"].get("deletionTimestamp").is_none()
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn selects(svc: &Value, pod: &Value) -> bool {
    let Some(sel) = svc["spec"]["selector"].as_object().filter(|s| !s.is_empty()) else { return false };
    let text = sel
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    LabelSelector::parse(&text).is_ok_and(|s| s.matches(pod))
}

fn records(domain: &str, pods: &[Value], services: &[Value]) -> BTreeSet<Record> {
    let mut out = BTreeSet::new();
    for svc in services {
        let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = svc["metadata"]["name"].as_str().unwrap_or_default();
        let headless = svc["spec"]["clusterIP"] == "None";
        let not_ready_too = svc["spec"]["publishNotReadyAddresses"] == true;
        for pod in pods.iter().filter(|p| p["metadata"]["namespace"] == ns && selects(svc, p)) {
            let Some(ip) = pod["status"]["podIP"].as_str() else { continue };
            if !(ready(pod) || not_ready_too) {
                continue;
            }
            out.insert(Record {
                ip: ip.into(),
                fqdn: format!("{name}.{ns}.svc.{domain}"),
                namespace: ns.into(),
                global: vec![format!("{name}.{ns}"), format!("{name}.{ns}.svc")],
                local: vec![name.into()],
            });
            if headless
                && pod["spec"]["subdomain"] == name
                && let Some(host) = pod["spec"]["hostname"].as_str()
            {
                out.insert(Record {
                    ip: ip.into(),
                    fqdn: format!("{host}.{name}.{ns}.svc.{domain}"),
                    namespace: ns.into(),
                    global: vec![format!("{host}.{name}.{ns}"), format!("{host}.{name}.{ns}.svc")],
                    local: vec![format!("{host}.{name}")],
                });
            }
        }
    }
    out
}

fn render(records: &BTreeSet<Record>, viewer: Option<&Value>, domain: &str, api_ip: Option<&str>) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file (kube-sim cluster DNS).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    // The `kubernetes` Service: the API server, reached through the node's address.
    if let (Some(ip), Some(_)) = (api_ip, viewer) {
        s.push_str(&format!(
            "{ip}\tkubernetes.default.svc.{domain} kubernetes.default.svc kubernetes.default kubernetes\n"
        ));
    }
    let viewer_ns = viewer.and_then(|p| p["metadata"]["namespace"].as_str());
    if let Some(pod) = viewer
        && let Some(ip) = pod["status"]["podIP"].as_str()
    {
        let ns = viewer_ns.unwrap_or_default();
        let host = pod["spec"]["hostname"].as_str().or(pod["metadata"]["name"].as_str()).unwrap_or_default();
        match pod["spec"]["subdomain"].as_str() {
            Some(sub) => s.push_str(&format!("{ip}\t{host}.{sub}.{ns}.svc.{domain}\t{host}\n")),
            None => s.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    for r in records {
        let mut names = vec![r.fqdn.clone()];
        names.extend(r.global.iter().cloned());
        if viewer_ns == Some(r.namespace.as_str()) {
            names.extend(r.local.iter().cloned());
        }
        s.push_str(&format!("{}\t{}\n", r.ip, names.join(" ")));
    }
    s
}

impl Dns {
    /// Hosts files for `domain`; `host_file` is for processes outside pods.
    pub fn new(domain: &str, host_file: PathBuf) -> Self {
        Self { domain: domain.into(), host_file, api_ip: None, written: Mutex::default() }
    }

    /// Pods also resolve the `kubernetes` Service names to `ip` (where the node forwards to the API server).
    pub fn with_api_server(mut self, ip: String) -> Self {
        self.api_ip = Some(ip);
        self
    }

    /// The file processes on the host bind-mount as `/etc/hosts` to resolve cluster names.
    pub fn host_file(&self) -> &Path {
        &self.host_file
    }

    /// Writes a pod's `/etc/resolv.conf`: the cluster search path, and a
    /// nameserver that refuses at once, so lookups end in the hosts file
    /// instead of waiting on a DNS server the pod cannot reach.
    pub fn write_resolv_conf(&self, path: &Path, namespace: &str) -> std::io::Result<()> {
        let d = &self.domain;
        std::fs::write(
            path,
            format!(
                "# kube-sim: cluster names come from /etc/hosts; nothing answers on 127.0.0.1:53.\nsearch {namespace}.svc.{d} svc.{d} {d}\nnameserver 127.0.0.1\noptions ndots:5 timeout:1 attempts:1\n"
            ),
        )
    }

    /// Rewrites every file whose content changed.
    pub fn refresh(&self, pods: &[Value], services: &[Value], viewers: &[Viewer<'_>]) {
        let records = records(&self.domain, pods, services);
        let mut written = self.written.lock().unwrap();
        let api = self.api_ip.as_deref();
        let mut files = vec![(self.host_file.clone(), render(&records, None, &self.domain, api))];
        for v in viewers {
            files.push((v.path.clone(), render(&records, Some(v.pod), &self.domain, api)));
        }
        for (path, content) in files {
            // A pod recreated within one sync gets a new, empty namespace directory under the
            // same path: what was written for its predecessor is not there any more.
            if written.get(&path) == Some(&content) && path.exists() {
                continue;
            }
            let result = if path == self.host_file {
                // Replaced whole: host processes re-read it on every lookup, and a file truncated
                // in place reads empty for a moment, so every member looked unreachable at once
                // (cluster DNS never answers nothing for the pods that are still there).
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, content.as_bytes()).and_then(|()| std::fs::rename(&tmp, &path))
            } else {
                // In place: the pod's file is bind-mounted, a rename would not be seen.
                std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(content.as_bytes()))
            };
            match result {
                Ok(()) => {
                    written.insert(path, content);
                }
                Err(e) => tracing::warn!("hosts file {}: {e}", path.display()),
            }
        }
        written.retain(|p, _| p == &self.host_file || viewers.iter().any(|v| &v.path == p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "namespace": "prod", "labels": {"app": "demo"}},
               "spec": {"hostname": name, "subdomain": "demo"},
               "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn headless_service_publishing_not_ready_pods_names_every_member() {
        let pods = [pod("demo-0", "10.244.0.2", false), pod("demo-1", "10.244.0.3", true)];
        let services = [
            json!({"metadata": {"name": "demo", "namespace": "prod"},
                   "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app": "demo"}}}),
            json!({"metadata": {"name": "demo-client", "namespace": "prod"}, "spec": {"selector": {"app": "demo"}}}),
        ];
        let r = records("cluster.local", &pods, &services);
        let text = render(&r, Some(&pods[0]), "cluster.local", None);
        assert!(text.contains("10.244.0.2\tdemo-0.demo.prod.svc.cluster.local\tdemo-0\n"), "{text}");
        assert!(text.contains("10.244.0.3\tdemo-1.demo.prod.svc.cluster.local demo-1.demo.prod demo-1.demo.prod.svc demo-1.demo\n"), "{text}");
        // The ClusterIP service has only the ready pod.
        assert!(text.contains("10.244.0.3\tdemo-client.prod.svc.cluster.local"), "{text}");
        assert!(!text.contains("10.244.0.2\tdemo-client"), "{text}");
        // From the host there are no namespace-relative short names.
        let host = render(&r, None, "cluster.local", None);
        assert!(
            host.contains(
                "10.244.0.3\tdemo-1.demo.prod.svc.cluster.local demo-1.demo.prod demo-1.demo.prod.svc\n"
            ),
            "{host}"
        );
    }

    #[test]
    fn pods_without_a_matching_headless_service_get_no_pod_record() {
        let pods = [pod("demo-0", "10.244.0.2", true)];
        let services = [json!({"metadata": {"name": "other", "namespace": "prod"},
                               "spec": {"clusterIP": "None", "selector": {"app": "demo"}}})];
        let r = records("cluster.local", &pods, &services);
        assert!(r.iter().all(|x| !x.fqdn.starts_with("demo-0.")));
        assert!(r.iter().any(|x| x.fqdn == "other.prod.svc.cluster.local"));
    }
}
