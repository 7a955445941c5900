//! NetworkPolicy ingress enforcement, as a CNI plugin would do it: for each
//! pod that an Ingress policy selects, an nftables ruleset in the pod's
//! network namespace lets in what any of those policies allows and drops
//! the rest. Traffic from the node (the host's gateway address and the
//! kubelet's) is always allowed, as Kubernetes documents; replies to the
//! pod's own connections pass. Egress rules are not enforced.
//!
//! Supported: `podSelector`, `namespaceSelector` (both with matchLabels and
//! matchExpressions), `ipBlock` (with `except`), and `ports` (number or named
//! container port, TCP/UDP, `endPort`). Needs `nft` (Debian `nftables`).

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    process::{Command, Stdio},
};

use serde_json::Value;

/// A running pod as the policy sees it.
#[derive(Clone, Debug)]
pub struct PolicyPod {
    /// The pod object (namespace, labels, container ports).
    pub pod: Value,
    /// Its address.
    pub ip: Ipv4Addr,
}

/// What may reach a pod: `None` when no Ingress policy selects it (everything may).
pub type Allowed = Option<Vec<Allow>>;

/// One allowed (sources, ports) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allow {
    /// Source addresses or CIDRs, minus exceptions; `None` is any source.
    pub from: Option<Vec<Source>>,
    /// `(protocol, first port, last port)`; `None` is any port.
    pub ports: Option<Vec<(String, u16, u16)>>,
}

/// A source: an address or CIDR, and CIDRs carved out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Address or CIDR.
    pub cidr: String,
    /// Excluded CIDRs.
    pub except: Vec<String>,
}

/// Whether a metav1.LabelSelector matches `labels` (an empty selector matches everything).
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_label =
        selector["matchLabels"].as_object().into_iter().flatten().all(|(k, v)| get(k) == v.as_str());
    let by_expression = selector["matchExpressions"].as_array().into_iter().flatten().all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> =
            e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        match e["operator"].as_str().unwrap_or_default() {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

/// A namespace's labels, with `kubernetes.io/metadata.name` as the API server sets it.
fn namespace_labels(namespaces: &[Value], name: &str) -> Value {
    let found = namespaces.iter().find(|n| n["metadata"]["name"] == name);
    let mut labels =
        found.map(|n| n["metadata"]["labels"].clone()).filter(Value::is_object).unwrap_or_default();
    if !labels.is_object() {
        labels = Value::Object(serde_json::Map::new());
    }
    labels["kubernetes.io/metadata.name"] = Value::String(name.to_owned());
    labels
}

fn ns_of(pod: &Value) -> &str {
    pod["metadata"]["namespace"].as_str().unwrap_or("default")
}

/// What may reach `target`, from the policies of its namespace.
pub fn allowed(target: &PolicyPod, pods: &[PolicyPod], namespaces: &[Value], policies: &[Value]) -> Allowed {
    let ns = ns_of(&target.pod);
    let selecting: Vec<&Value> = policies
        .iter()
        .filter(|p| p["metadata"]["namespace"] == ns)
        .filter(|p| selects(&p["spec"]["podSelector"], &target.pod["metadata"]["labels"]))
        .filter(|p| match p["spec"]["policyTypes"].as_array() {
            Some(types) => types.iter().any(|t| t == "Ingress"),
            None => true,
        })
        .collect();
    if selecting.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for policy in selecting {
        for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
            let from = rule["from"].as_array().filter(|f| !f.is_empty()).map(|peers| {
                peers.iter().flat_map(|peer| sources(peer, ns, pods, namespaces)).collect::<Vec<_>>()
            });
            let ports = rule["ports"]
                .as_array()
                .filter(|p| !p.is_empty())
                .map(|ports| ports.iter().filter_map(|p| port_range(p, &target.pod)).collect::<Vec<_>>());
            out.push(Allow { from, ports });
        }
    }
    Some(out)
}

fn sources(peer: &Value, policy_ns: &str, pods: &[PolicyPod], namespaces: &[Value]) -> Vec<Source> {
    if let Some(cidr) = peer["ipBlock"]["cidr"].as_str() {
        let except = peer["ipBlock"]["except"].as_array().into_iter().flatten().filter_map(Value::as_str);
        return vec![Source { cidr: cidr.to_owned(), except: except.map(str::to_owned).collect() }];
    }
    let (pod_sel, ns_sel) = (peer.get("podSelector"), peer.get("namespaceSelector"));
    pods.iter()
        .filter(|p| match ns_sel {
            Some(sel) => selects(sel, &namespace_labels(namespaces, ns_of(&p.pod))),
            None => ns_of(&p.pod) == policy_ns,
        })
        .filter(|p| pod_sel.is_none_or(|sel| selects(sel, &p.pod["metadata"]["labels"])))
        .map(|p| Source { cidr: p.ip.to_string(), except: Vec::new() })
        .collect()
}

/// A rule's port as `(protocol, first, last)`; a named port is looked up in the pod's containers
/// (no such name: the rule allows nothing on it).
fn port_range(p: &Value, pod: &Value) -> Option<(String, u16, u16)> {
    let protocol = p["protocol"].as_str().unwrap_or("TCP").to_lowercase();
    let first = match &p["port"] {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        Value::String(name) => pod["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|cp| cp["name"] == name.as_str())
            .and_then(|cp| u16::try_from(cp["containerPort"].as_u64()?).ok())?,
        // No port: every port of the protocol.
        _ => return Some((protocol, 1, u16::MAX)),
    };
    let last = p["endPort"].as_u64().and_then(|e| u16::try_from(e).ok()).unwrap_or(first);
    Some((protocol, first, last))
}

/// The nftables script that makes a pod's namespace enforce `allowed`; `node` are the node's
/// own addresses (always allowed).
pub fn nft_script(allowed: &Allowed, node: &[Ipv4Addr]) -> String {
    let mut s = String::from("flush ruleset\n");
    let Some(allows) = allowed else { return s };
    s.push_str("table inet kube_sim_policy {\n  chain ingress {\n");
    s.push_str("    type filter hook input priority 0; policy drop;\n");
    s.push_str("    ct state established,related accept\n    iif lo accept\n");
    let node: Vec<String> = node.iter().map(ToString::to_string).collect();
    s.push_str(&format!("    ip saddr {{ {} }} accept\n", node.join(", ")));
    for allow in allows {
        let from: Vec<String> = match &allow.from {
            None => vec![String::new()],
            // A rule whose selectors match no pod allows nothing.
            Some(sources) if sources.is_empty() => continue,
            Some(sources) => sources
                .iter()
                .map(|src| {
                    let except = if src.except.is_empty() {
                        String::new()
                    } else {
                        format!("ip saddr != {{ {} }} ", src.except.join(", "))
                    };
                    format!("ip saddr {} {except}", src.cidr)
                })
                .collect(),
        };
        let ports: Vec<String> =
            match &allow.ports {
                None => vec![String::new()],
                Some(ports) if ports.is_empty() => continue,
                Some(ports) => ports
                    .iter()
                    .map(|(proto, a, b)| {
                        if a == b { format!("{proto} dport {a} ") } else { format!("{proto} dport {a}-{b} ") }
                    })
                    .collect(),
            };
        for f in &from {
            for p in &ports {
                s.push_str(&format!("    {f}{p}accept\n"));
            }
        }
    }
    s.push_str("  }\n}\n");
    s
}

/// Loads `script` into network namespace `netns`.
pub fn apply(netns: &str, script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft in {netns}: {e} (kube-sim's NetworkPolicy needs nftables)"))?;
    child.stdin.take().ok_or("no stdin")?.write_all(script.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft in {netns}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Scripts last loaded, by namespace, so that only changes are loaded.
#[derive(Default)]
pub struct Loaded(std::sync::Mutex<BTreeMap<String, String>>);

impl Loaded {
    /// Loads `script` into `netns` unless it is what was loaded there last; `open`: no policy
    /// selects the pod (the script only flushes).
    pub fn ensure(&self, netns: &str, script: &str, open: bool) {
        let mut loaded = self.0.lock().unwrap();
        // A pod no policy ever selected has nothing to flush: nft is needed only once one does.
        if loaded.get(netns).map(String::as_str) == Some(script) || (open && !loaded.contains_key(netns)) {
            return;
        }
        match apply(netns, script) {
            Ok(()) => drop(loaded.insert(netns.to_owned(), script.to_owned())),
            Err(e) => tracing::warn!("NetworkPolicy not enforced: {e}"),
        }
    }

    /// Forgets namespaces that are gone.
    pub fn retain(&self, live: &[String]) {
        self.0.lock().unwrap().retain(|ns, _| live.contains(ns));
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
