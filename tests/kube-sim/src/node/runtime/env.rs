//! A container's environment as the kubelet builds it: `envFrom`, then
//! `env` with `$(VAR)` references, downward-API fields, ConfigMap and Secret
//! keys; and the same expansion applied to command and args.

use base64::Engine;
use serde_json::Value;

use crate::store::Txn;

/// PATH every container starts with (the images' usual default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the downward API can refer to besides the pod object.
pub struct PodFacts<'a> {
    /// The pod object.
    pub pod: &'a Value,
    /// Its IP.
    pub pod_ip: String,
    /// The node's address.
    pub host_ip: String,
    /// Port of the `kubernetes` Service.
    pub api_port: u16,
}

/// Builds the environment; an error is reported as CreateContainerConfigError.
pub fn environment(
    txn: &Txn<'_>,
    facts: &PodFacts<'_>,
    container: &Value,
) -> Result<Vec<(String, String)>, String> {
    let ns = facts.pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut env: Vec<(String, String)> = vec![("PATH".into(), DEFAULT_PATH.into())];
    if super::service_account::automount(facts.pod) {
        env.extend(super::service_account::environment(facts.api_port));
    }
    if let Some(hostname) = facts.pod["spec"]["hostname"].as_str().or(facts.pod["metadata"]["name"].as_str())
    {
        env.push(("HOSTNAME".into(), hostname.into()));
    }
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or_default();
        let (kind, r) = if source["configMapRef"].is_object() {
            ("configmaps", &source["configMapRef"])
        } else if source["secretRef"].is_object() {
            ("secrets", &source["secretRef"])
        } else {
            return Err("envFrom: only configMapRef and secretRef are supported".into());
        };
        let name = r["name"].as_str().unwrap_or_default();
        match data_of(txn, kind, ns, name)? {
            Some(data) => {
                for (k, v) in data {
                    set(&mut env, format!("{prefix}{k}"), v);
                }
            }
            None if r["optional"] == true => {}
            None => return Err(format!("{} {ns}/{name} not found", singular(kind))),
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_owned();
        let value = if let Some(v) = var["value"].as_str() {
            expand(v, &env)
        } else if var["valueFrom"].is_object() {
            match value_from(txn, facts, ns, &var["valueFrom"])? {
                Some(v) => v,
                None => continue,
            }
        } else {
            String::new()
        };
        set(&mut env, name, value);
    }
    Ok(env)
}

fn set(env: &mut Vec<(String, String)>, name: String, value: String) {
    env.retain(|(k, _)| *k != name);
    env.push((name, value));
}

fn singular(kind: &str) -> &'static str {
    if kind == "secrets" { "secret" } else { "configmap" }
}

/// A ConfigMap's or Secret's data as strings, `None` when it does not exist.
pub fn data_of(
    txn: &Txn<'_>,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<Option<Vec<(String, String)>>, String> {
    let Some(object) = txn.get(&(format!("/{kind}"), ns.to_owned(), name.to_owned())) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (k, v) in object["data"].as_object().into_iter().flatten() {
        let text = v.as_str().unwrap_or_default();
        let value = if kind == "secrets" {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("secret {ns}/{name} key {k}: {e}"))?;
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            text.to_owned()
        };
        out.push((k.clone(), value));
    }
    for (k, v) in object["stringData"].as_object().into_iter().flatten() {
        out.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
    }
    Ok(Some(out))
}

fn value_from(txn: &Txn<'_>, facts: &PodFacts<'_>, ns: &str, from: &Value) -> Result<Option<String>, String> {
    if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
        return field(facts, path).map(Some);
    }
    for (kind, r) in [("configmaps", &from["configMapKeyRef"]), ("secrets", &from["secretKeyRef"])] {
        if !r.is_object() {
            continue;
        }
        let name = r["name"].as_str().unwrap_or_default();
        let key = r["key"].as_str().unwrap_or_default();
        let optional = r["optional"] == true;
        let found = data_of(txn, kind, ns, name)?.and_then(|d| d.into_iter().find(|(k, _)| k == key));
        return match found {
            Some((_, v)) => Ok(Some(v)),
            None if optional => Ok(None),
            None => Err(format!("couldn't find key {key} in {} {ns}/{name}", singular(kind))),
        };
    }
    Err("valueFrom: only fieldRef, configMapKeyRef and secretKeyRef are supported".into())
}

/// A downward-API field.
/// A `metadata.*` field of the downward API (what env and downwardAPI volumes both offer):
/// name, namespace, uid, `labels['k']`, `annotations['k']`.
pub(super) fn metadata_field(pod: &Value, path: &str) -> Option<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let keyed = |prefix: &str, map: &Value| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['"))
            .and_then(|rest| rest.strip_suffix("']"))
            .map(|k| text(&map[k]))
    };
    keyed("metadata.labels", &pod["metadata"]["labels"])
        .or_else(|| keyed("metadata.annotations", &pod["metadata"]["annotations"]))
        .or_else(|| match path {
            "metadata.name" | "metadata.namespace" | "metadata.uid" => {
                Some(text(&pod["metadata"][&path["metadata.".len()..]]))
            }
            _ => None,
        })
}

fn field(facts: &PodFacts<'_>, path: &str) -> Result<String, String> {
    if let Some(v) = metadata_field(facts.pod, path) {
        return Ok(v);
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Ok(match path {
        "spec.nodeName" => text(&facts.pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => text(&facts.pod["spec"]["serviceAccountName"]),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        other => return Err(format!("fieldRef.fieldPath {other:?} is not a supported downward-API field")),
    })
}

pub fn expand(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[i..i + 3 + end]),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let env = vec![("POD_NAME".to_owned(), "demo-0".to_owned()), ("NS".to_owned(), "prod".to_owned())];
        assert_eq!(expand("--name=$(POD_NAME)", &env), "--name=demo-0");
        assert_eq!(expand("$(POD_NAME).demo.$(NS).svc", &env), "demo-0.demo.prod.svc");
        assert_eq!(expand("$(MISSING)", &env), "$(MISSING)");
        assert_eq!(expand("$$(POD_NAME) costs $5", &env), "$(POD_NAME) costs $5");
        assert_eq!(expand("$(unterminated", &env), "$(unterminated");
    }
}
