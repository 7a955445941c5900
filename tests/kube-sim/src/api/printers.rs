//! kube-apiserver's columns for the built-in kinds `kubectl get` shows most (its internal
//! printers): pods' READY, STATUS and RESTARTS, StatefulSets' READY, claims' STATUS, and so on.
//! The rest print NAME and AGE.

use serde_json::{Value, json};

/// A column: name, its type, priority (1: only with `-o wide`), description.
type Column = (&'static str, &'static str, u8, &'static str);

/// The cells of one object (after its name).
type Cells = fn(&Value) -> Vec<Value>;

/// A kind's columns (after NAME) and its cells.
pub type Printer = (Vec<Column>, Cells);

/// Human age of an RFC 3339 time, as kubectl prints it.
pub fn age(timestamp: &str) -> Value {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(timestamp) else { return Value::Null };
    let s = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    json!(match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    })
}

fn created(o: &Value) -> Value {
    o["metadata"]["creationTimestamp"].as_str().map_or(Value::Null, age)
}

fn entries(v: &Value) -> usize {
    v.as_object().map_or(0, serde_json::Map::len)
}

fn config_map(o: &Value) -> Vec<Value> {
    vec![json!(entries(&o["data"]) + entries(&o["binaryData"])), created(o)]
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

/// The STATUS kubectl prints for a pod: its phase, or what holds a container, or Terminating.
fn pod_status(pod: &Value) -> String {
    let status = &pod["status"];
    let mut reason = status["reason"].as_str().or(status["phase"].as_str()).unwrap_or("Unknown").to_owned();
    let inits = status["initContainerStatuses"].as_array().cloned().unwrap_or_default();
    let mut initializing = false;
    for (i, c) in inits.iter().enumerate() {
        let (waiting, terminated) = (&c["state"]["waiting"], &c["state"]["terminated"]);
        if terminated["exitCode"] == 0 && terminated.is_object() {
            continue;
        }
        initializing = true;
        reason = match (terminated["reason"].as_str(), waiting["reason"].as_str()) {
            (Some(r), _) => format!("Init:{r}"),
            (None, Some(r)) if r != "PodInitializing" => format!("Init:{r}"),
            _ => format!("Init:{i}/{}", inits.len()),
        };
        break;
    }
    if !initializing {
        for c in status["containerStatuses"].as_array().into_iter().flatten().rev() {
            if let Some(r) =
                c["state"]["waiting"]["reason"].as_str().or(c["state"]["terminated"]["reason"].as_str())
            {
                reason = r.to_owned();
            }
        }
    }
    if pod["metadata"].get("deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    reason
}

fn pod(o: &Value) -> Vec<Value> {
    let statuses = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses.iter().filter_map(|c| c["restartCount"].as_i64()).sum();
    let last = statuses.iter().filter_map(|c| c["lastState"]["terminated"]["finishedAt"].as_str()).max();
    let restarts = match last {
        Some(at) if restarts > 0 => format!("{restarts} ({} ago)", text(&age(at))),
        _ => restarts.to_string(),
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(pod_status(o)),
        json!(restarts),
        created(o),
        json!(o["status"]["podIP"].as_str().unwrap_or("<none>")),
        json!(o["spec"]["nodeName"].as_str().unwrap_or("<none>")),
    ]
}

fn images(o: &Value) -> (Value, Value) {
    let containers = o["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let join =
        |key: &str| json!(containers.iter().filter_map(|c| c[key].as_str()).collect::<Vec<_>>().join(","));
    (join("name"), join("image"))
}

fn statefulset(o: &Value) -> Vec<Value> {
    let (names, images) = images(o);
    let ready = o["status"]["readyReplicas"].as_i64().unwrap_or(0);
    let replicas = o["spec"]["replicas"].as_i64().unwrap_or(1);
    vec![json!(format!("{ready}/{replicas}")), created(o), names, images]
}

fn deployment(o: &Value) -> Vec<Value> {
    let (names, images) = images(o);
    let s = &o["status"];
    let n = |k: &str| s[k].as_i64().unwrap_or(0);
    let replicas = o["spec"]["replicas"].as_i64().unwrap_or(1);
    vec![
        json!(format!("{}/{replicas}", n("readyReplicas"))),
        json!(n("updatedReplicas")),
        json!(n("availableReplicas")),
        created(o),
        names,
        images,
    ]
}

fn claim(o: &Value) -> Vec<Value> {
    let phase = if o["metadata"].get("deletionTimestamp").is_some() {
        json!("Terminating")
    } else {
        o["status"]["phase"].clone()
    };
    let modes = o["spec"]["accessModes"].as_array().into_iter().flatten().filter_map(Value::as_str).map(
        |m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        },
    );
    vec![
        phase,
        json!(o["spec"]["volumeName"].as_str().unwrap_or_default()),
        o["status"]["capacity"]["storage"].clone(),
        json!(modes.collect::<Vec<_>>().join(",")),
        json!(o["spec"]["storageClassName"].as_str().unwrap_or("<unset>")),
        created(o),
    ]
}

fn service(o: &Value) -> Vec<Value> {
    let ports: Vec<String> = o["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}/{}", text(&p["port"]), p["protocol"].as_str().unwrap_or("TCP")))
        .collect();
    let ports = if ports.is_empty() { "<none>".to_owned() } else { ports.join(",") };
    vec![
        json!(o["spec"]["type"].as_str().unwrap_or("ClusterIP")),
        json!(o["spec"]["clusterIP"].as_str().unwrap_or("<none>")),
        json!("<none>"),
        json!(ports),
        created(o),
    ]
}

const AGE: Column = ("Age", "string", 0, "Time since creation");
const CONTAINERS: Column = ("Containers", "string", 1, "Names of each container in the template.");
const IMAGES: Column = ("Images", "string", 1, "Images referenced by each container in the template.");
const READY: Column = ("Ready", "string", 0, "Number of the pod with ready state");
const POD: &[Column] = &[
    ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "string", 0, "The aggregate status of the containers in this pod."),
    (
        "Restarts",
        "string",
        0,
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    ("IP", "string", 1, "IP address allocated to the pod."),
    ("Node", "string", 1, "Name of the node assigned to the pod."),
];
const STATEFULSET: &[Column] = &[READY, AGE, CONTAINERS, IMAGES];
const DEPLOYMENT: &[Column] = &[
    READY,
    (
        "Up-to-date",
        "integer",
        0,
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    (
        "Available",
        "integer",
        0,
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
];
const CLAIM: &[Column] = &[
    ("Status", "string", 0, "The phase of the claim."),
    ("Volume", "string", 0, "The volume bound to the claim."),
    ("Capacity", "string", 0, "The capacity of the volume."),
    ("Access Modes", "string", 0, "The access modes of the volume."),
    ("StorageClass", "string", 0, "The storage class of the claim."),
    AGE,
];
const SERVICE: &[Column] = &[
    ("Type", "string", 0, "The type of the service."),
    ("Cluster-IP", "string", 0, "The cluster IP of the service."),
    ("External-IP", "string", 0, "The external IP of the service."),
    ("Port(s)", "string", 0, "The ports of the service."),
    AGE,
];
const CONFIG_MAP: &[Column] = &[("Data", "integer", 0, "Number of data entries."), AGE];
const SECRET: &[Column] = &[
    ("Type", "string", 0, "The type of the secret."),
    ("Data", "integer", 0, "Number of data entries."),
    AGE,
];
const NAMESPACE: &[Column] = &[("Status", "string", 0, "The status of the namespace."), AGE];
const LEASE: &[Column] = &[("Holder", "string", 0, "The holder of the lease."), AGE];

fn secret(o: &Value) -> Vec<Value> {
    vec![o["type"].clone(), json!(entries(&o["data"])), created(o)]
}

fn namespace(o: &Value) -> Vec<Value> {
    vec![o["status"]["phase"].clone(), created(o)]
}

fn lease(o: &Value) -> Vec<Value> {
    vec![json!(o["spec"]["holderIdentity"].as_str().unwrap_or_default()), created(o)]
}

/// The columns and cells of a built-in kind kube-apiserver prints its own way, if it is one.
pub fn builtin(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&[Column], Cells) = match (group, kind) {
        ("", "Pod") => (POD, pod),
        ("apps", "StatefulSet") => (STATEFULSET, statefulset),
        ("apps", "Deployment") => (DEPLOYMENT, deployment),
        ("", "PersistentVolumeClaim") => (CLAIM, claim),
        ("", "Service") => (SERVICE, service),
        ("", "ConfigMap") => (CONFIG_MAP, config_map),
        ("", "Secret") => (SECRET, secret),
        ("", "Namespace") => (NAMESPACE, namespace),
        ("coordination.k8s.io", "Lease") => (LEASE, lease),
        _ => return None,
    };
    Some((columns.to_vec(), cells))
}
