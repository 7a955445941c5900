//! Schemas of the built-in types kube-sim serves, from k8s-openapi (generated from Kubernetes'
//! own OpenAPI document, so descriptions and fields are kube-apiserver's).

use std::sync::LazyLock;

use k8s_openapi::{
    api::{
        apps::v1 as apps, authentication::v1 as authn, authorization::v1 as authz,
        autoscaling::v1 as autoscaling, coordination::v1 as coordination, core::v1 as core,
        events::v1 as events, networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions,
    apimachinery::pkg::apis::meta::v1 as meta,
};
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value};

/// The definitions of every built-in kind (and what they refer to), keyed by their OpenAPI name
/// (`io.k8s.api.core.v1.ConfigMap`), with `$ref`s into `#/components/schemas/`.
pub struct Builtins {
    /// Schemas by name.
    pub definitions: Map<String, Value>,
    /// (group, version, kind) → schema name.
    pub kinds: Vec<(&'static str, &'static str, &'static str, String)>,
}

impl Builtins {
    /// The schema name of a built-in kind.
    pub fn name_of(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|(g, v, k, _)| *g == group && *v == version && *k == kind)
            .map(|(.., n)| n.as_str())
    }

    /// ObjectMeta's schema name (a custom resource's `metadata` refers to it).
    pub fn object_meta(&self) -> String {
        meta::ObjectMeta::schema_name().into_owned()
    }
}

/// Computed once: a few hundred schemas.
pub static BUILTINS: LazyLock<Builtins> = LazyLock::new(generate);

struct Collect {
    generator: SchemaGenerator,
    kinds: Vec<(&'static str, &'static str, &'static str, String)>,
}

impl Collect {
    fn add<T: JsonSchema>(&mut self, group: &'static str, version: &'static str, kind: &'static str) {
        self.generator.subschema_for::<T>();
        self.kinds.push((group, version, kind, T::schema_name().into_owned()));
    }
}

fn generate() -> Builtins {
    let settings = SchemaSettings::openapi3().with(|s| s.meta_schema = None);
    let mut c = Collect { generator: settings.into_generator(), kinds: Vec::new() };
    c.add::<core::Namespace>("", "v1", "Namespace");
    c.add::<core::ConfigMap>("", "v1", "ConfigMap");
    c.add::<core::Secret>("", "v1", "Secret");
    c.add::<core::Service>("", "v1", "Service");
    c.add::<core::ServiceAccount>("", "v1", "ServiceAccount");
    c.add::<core::PersistentVolumeClaim>("", "v1", "PersistentVolumeClaim");
    c.add::<core::Pod>("", "v1", "Pod");
    c.add::<core::Event>("", "v1", "Event");
    c.add::<core::Endpoints>("", "v1", "Endpoints");
    c.add::<apps::StatefulSet>("apps", "v1", "StatefulSet");
    c.add::<apps::Deployment>("apps", "v1", "Deployment");
    c.add::<coordination::Lease>("coordination.k8s.io", "v1", "Lease");
    c.add::<rbac::Role>("rbac.authorization.k8s.io", "v1", "Role");
    c.add::<rbac::RoleBinding>("rbac.authorization.k8s.io", "v1", "RoleBinding");
    c.add::<rbac::ClusterRole>("rbac.authorization.k8s.io", "v1", "ClusterRole");
    c.add::<rbac::ClusterRoleBinding>("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding");
    c.add::<authn::TokenReview>("authentication.k8s.io", "v1", "TokenReview");
    c.add::<authn::TokenRequest>("authentication.k8s.io", "v1", "TokenRequest");
    c.add::<authz::SubjectAccessReview>("authorization.k8s.io", "v1", "SubjectAccessReview");
    c.add::<authz::SelfSubjectAccessReview>("authorization.k8s.io", "v1", "SelfSubjectAccessReview");
    c.add::<networking::NetworkPolicy>("networking.k8s.io", "v1", "NetworkPolicy");
    c.add::<policy::PodDisruptionBudget>("policy", "v1", "PodDisruptionBudget");
    c.add::<events::Event>("events.k8s.io", "v1", "Event");
    c.add::<autoscaling::Scale>("autoscaling", "v1", "Scale");
    c.add::<apiextensions::CustomResourceDefinition>(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    );
    // Answers and bodies every path names, not kinds of their own here.
    c.generator.subschema_for::<meta::Status>();
    c.generator.subschema_for::<meta::DeleteOptions>();
    let mut definitions = c.generator.take_definitions(true);
    for (group, version, kind, name) in &c.kinds {
        if let Some(schema) = definitions.get_mut(name).and_then(Value::as_object_mut) {
            // k8s-openapi marks metadata required (its Rust field is not optional); Kubernetes does not.
            if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    schema.remove("required");
                }
            }
            schema.insert(super::GVK.into(), super::gvk_list(group, version, kind));
        }
    }
    Builtins { definitions, kinds: c.kinds }
}
