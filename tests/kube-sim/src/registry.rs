//! Which resources are served: the built-in types the operator and its tests
//! use, plus every resource a CustomResourceDefinition defines.

use std::sync::RwLock;

use serde_json::Value;

/// Paths of a scale subresource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// JSON path of desired replicas (`.spec.replicas`).
    pub spec_replicas: String,
    /// JSON path of observed replicas (`.status.replicas`).
    pub status_replicas: String,
    /// JSON path of the label selector string, if any.
    pub label_selector: Option<String>,
}

/// One served resource (group, version, plural) and how it behaves.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether `.status` is a subresource (main endpoint ignores it, /status changes only it).
    pub status: bool,
    /// Scale subresource, if any.
    pub scale: Option<ScalePaths>,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// openAPIV3Schema of a custom resource version (shared: every request finds its type).
    pub schema: Option<std::sync::Arc<Value>>,
    /// Its CEL rules, compiled once when the CRD is stored (as kube-apiserver does), not per write.
    pub cel: Option<std::sync::Arc<kube_cel::CompiledSchema>>,
    /// Name of the CRD that defines it.
    pub crd: Option<String>,
    /// `additionalPrinterColumns` of a custom resource version.
    pub printer_columns: Vec<Value>,
}

impl ResourceType {
    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool, status: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
            status,
            scale: None,
            short_names: vec![],
            categories: vec![],
            schema: None,
            cel: None,
            crd: None,
            printer_columns: Vec::new(),
        }
    }

    /// `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The storage key of the resource this one is a view of (`convert` serves it): Events of
    /// events.k8s.io are the core Events.
    pub fn viewed(&self) -> Option<&'static str> {
        (self.group == "events.k8s.io" && self.plural == "events").then_some("/events")
    }

    /// Storage key of the resource (versions share storage, and so do views).
    pub fn key(&self) -> String {
        self.viewed().map_or_else(|| format!("{}/{}", self.group, self.plural), str::to_owned)
    }
}

/// The served resources.
#[derive(Debug)]
pub struct Registry {
    types: RwLock<Vec<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        let t = ResourceType::builtin;
        let mut sts = t("apps", "v1", "StatefulSet", "statefulsets", true, true);
        sts.scale = Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        });
        sts.short_names = vec!["sts".into()];
        sts.categories = vec!["all".into()];
        let short = |mut rt: ResourceType, names: &[&str]| {
            rt.short_names = names.iter().map(|n| (*n).to_owned()).collect();
            // The kinds of `kubectl get all`, as Kubernetes lists them.
            if matches!(rt.kind.as_str(), "Pod" | "Service" | "StatefulSet" | "Deployment") {
                rt.categories = vec!["all".into()];
            }
            rt
        };
        let types = vec![
            short(t("", "v1", "Namespace", "namespaces", false, true), &["ns"]),
            short(t("", "v1", "ConfigMap", "configmaps", true, false), &["cm"]),
            t("", "v1", "Secret", "secrets", true, false),
            short(t("", "v1", "Service", "services", true, true), &["svc"]),
            short(t("", "v1", "ServiceAccount", "serviceaccounts", true, false), &["sa"]),
            short(t("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true), &["pvc"]),
            short(t("", "v1", "Pod", "pods", true, true), &["po"]),
            short(t("", "v1", "Event", "events", true, false), &["ev"]),
            short(t("", "v1", "Endpoints", "endpoints", true, false), &["ep"]),
            sts,
            short(t("apps", "v1", "Deployment", "deployments", true, true), &["deploy"]),
            t("coordination.k8s.io", "v1", "Lease", "leases", true, false),
            // Enforced for every request (api/authz.rs); the reviews answer and store nothing.
            t("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false),
            t("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false),
            t("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false),
            t("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, false),
            t("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", false, false),
            t("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", false, false),
            t(
                "authorization.k8s.io",
                "v1",
                "SelfSubjectAccessReview",
                "selfsubjectaccessreviews",
                false,
                false,
            ),
            short(t("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, false), &["netpol"]),
            short(t("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, true), &["pdb"]),
            short(t("events.k8s.io", "v1", "Event", "events", true, false), &["ev"]),
            short(
                t(
                    "apiextensions.k8s.io",
                    "v1",
                    "CustomResourceDefinition",
                    "customresourcedefinitions",
                    false,
                    true,
                ),
                &["crd", "crds"],
            ),
        ];
        Self { types: RwLock::new(types) }
    }
}

impl Registry {
    /// Finds a served resource.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .read()
            .unwrap()
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// Every served resource.
    pub fn all(&self) -> Vec<ResourceType> {
        self.types.read().unwrap().clone()
    }

    /// Serves the resources a CRD defines (replacing any previous definition of it).
    pub fn register_crd(&self, crd: &Value) -> Result<(), String> {
        let defined = crd_types(crd)?;
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let mut types = self.types.write().unwrap();
        types.retain(|t| t.crd.as_deref() != Some(name));
        types.extend(defined);
        Ok(())
    }

    /// Stops serving what a CRD defined.
    pub fn unregister_crd(&self, name: &str) {
        self.types.write().unwrap().retain(|t| t.crd.as_deref() != Some(name));
    }
}

/// The resources a CRD defines, or why it is invalid.
pub fn crd_types(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let name = crd["metadata"]["name"].as_str().ok_or("CRD without metadata.name")?.to_owned();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().ok_or("spec.group is required")?;
    let names = &spec["names"];
    let plural = names["plural"].as_str().ok_or("spec.names.plural is required")?;
    let kind = names["kind"].as_str().ok_or("spec.names.kind is required")?;
    if name != format!("{plural}.{group}") {
        return Err(format!("metadata.name must be spec.names.plural+\".\"+spec.group ({plural}.{group})"));
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut defined = Vec::new();
    for version in spec["versions"].as_array().ok_or("spec.versions is required")? {
        if version["served"].as_bool() != Some(true) {
            continue;
        }
        let sub = &version["subresources"];
        defined.push(ResourceType {
            group: group.into(),
            version: version["name"].as_str().ok_or("spec.versions[].name is required")?.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: names["singular"].as_str().map_or_else(|| kind.to_lowercase(), String::from),
            namespaced: spec["scope"].as_str() == Some("Namespaced"),
            status: sub.get("status").is_some(),
            scale: sub.get("scale").map(|s| ScalePaths {
                spec_replicas: s["specReplicasPath"].as_str().unwrap_or(".spec.replicas").into(),
                status_replicas: s["statusReplicasPath"].as_str().unwrap_or(".status.replicas").into(),
                label_selector: s["labelSelectorPath"].as_str().map(String::from),
            }),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            schema: version["schema"].get("openAPIV3Schema").cloned().map(std::sync::Arc::new),
            cel: version["schema"]
                .get("openAPIV3Schema")
                .map(|s| std::sync::Arc::new(kube_cel::compile_schema(s))),
            crd: Some(name.clone()),
            printer_columns: version["additionalPrinterColumns"].as_array().cloned().unwrap_or_default(),
        });
    }
    Ok(defined)
}
