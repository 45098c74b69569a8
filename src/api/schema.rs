//! The schemas of the built-in kinds, as OpenAPI v3 component schemas.
//!
//! They are generated from k8s-openapi's types (field names, types,
//! descriptions) and annotated with upstream's merge markers
//! ([`shapes`]), upstream's strategic-merge markers ([`patching`]) and
//! `x-kubernetes-group-version-kind`. The catalog is built
//! once, on first use, and shared by everything that needs the shape of an
//! object: the OpenAPI documents (`kubectl explain`), field validation, and
//! the strategic-merge and apply patchers.
//!
//! Schemas refer to each other by `$ref: #/components/schemas/<name>`, with
//! upstream's definition names (`io.k8s.api.core.v1.PodSpec`). A property
//! that carries a description besides its reference is written as
//! `allOf: [{$ref}]`; [`Catalog::resolve`] follows both forms.

pub mod patching;
pub mod shapes;

use std::collections::HashMap;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

pub use shapes::Shape;

/// The prefix of every `$ref` in the catalog.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// Every built-in schema, by definition name.
pub struct Catalog {
    definitions: Map<String, Value>,
    /// (group, version, kind) → definition name.
    roots: HashMap<(&'static str, &'static str, &'static str), String>,
}

/// The catalog, built on first use.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::build)
}

/// Adds the schema of each type to the generator and records it as the root
/// of its group, version and kind.
macro_rules! roots {
    ($generator:ident, $roots:ident; $($t:ty),* $(,)?) => {
        $(
            $generator.subschema_for::<$t>();
            $roots.insert(
                (
                    <$t as k8s_openapi::Resource>::GROUP,
                    <$t as k8s_openapi::Resource>::VERSION,
                    <$t as k8s_openapi::Resource>::KIND,
                ),
                <$t as JsonSchema>::schema_name().into_owned(),
            );
        )*
    };
}

/// Adds the schema of each type that is not a root (subresource bodies and
/// the meta types requests carry).
macro_rules! also {
    ($generator:ident; $($t:ty),* $(,)?) => {
        $( $generator.subschema_for::<$t>(); )*
    };
}

impl Catalog {
    fn build() -> Catalog {
        use k8s_openapi::api::{
            apps, authentication, authorization, autoscaling, batch, coordination, core, discovery,
            events, networking, policy, rbac, scheduling, storage,
        };
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
        use k8s_openapi::apimachinery::pkg::apis::meta;

        let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
        let mut roots = HashMap::new();
        roots!(generator, roots;
            core::v1::Namespace, core::v1::Pod, core::v1::Service, core::v1::Endpoints,
            core::v1::ConfigMap, core::v1::Secret, core::v1::ServiceAccount, core::v1::Node,
            core::v1::Event, core::v1::PersistentVolume, core::v1::PersistentVolumeClaim,
            core::v1::LimitRange, core::v1::ResourceQuota, core::v1::ReplicationController,
            core::v1::PodTemplate, core::v1::Binding,
            apps::v1::Deployment, apps::v1::ReplicaSet, apps::v1::StatefulSet,
            apps::v1::DaemonSet, apps::v1::ControllerRevision,
            batch::v1::Job, batch::v1::CronJob,
            coordination::v1::Lease,
            discovery::v1::EndpointSlice,
            events::v1::Event,
            networking::v1::Ingress, networking::v1::IngressClass, networking::v1::NetworkPolicy,
            policy::v1::PodDisruptionBudget, policy::v1::Eviction,
            rbac::v1::Role, rbac::v1::RoleBinding, rbac::v1::ClusterRole,
            rbac::v1::ClusterRoleBinding,
            storage::v1::StorageClass,
            scheduling::v1::PriorityClass,
            autoscaling::v2::HorizontalPodAutoscaler, autoscaling::v1::HorizontalPodAutoscaler,
            autoscaling::v1::Scale,
            apiextensions::v1::CustomResourceDefinition,
            authorization::v1::SelfSubjectAccessReview, authorization::v1::SubjectAccessReview,
            authorization::v1::LocalSubjectAccessReview,
            authorization::v1::SelfSubjectRulesReview,
            authentication::v1::SelfSubjectReview, authentication::v1::TokenRequest,
        );
        also!(generator;
            meta::v1::Status, meta::v1::DeleteOptions, meta::v1::WatchEvent<()>,
            meta::v1::APIResourceList,
        );
        let mut definitions = generator.take_definitions(true);
        for (def, field, shape) in shapes::SHAPES {
            let Some(prop) = definitions
                .get_mut(*def)
                .and_then(|d| d.get_mut("properties"))
                .and_then(|p| p.get_mut(*field))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            match shape {
                Shape::Map(keys) => {
                    prop.insert("x-kubernetes-list-type".into(), json!("map"));
                    prop.insert("x-kubernetes-list-map-keys".into(), json!(keys));
                }
                Shape::Set => {
                    prop.insert("x-kubernetes-list-type".into(), json!("set"));
                }
                Shape::AtomicMap => {
                    prop.insert("x-kubernetes-map-type".into(), json!("atomic"));
                }
            }
        }
        patching::annotate(&mut definitions);
        for ((group, version, kind), name) in &roots {
            if let Some(def) = definitions.get_mut(name).and_then(Value::as_object_mut) {
                let gvk = json!({"group": group, "version": version, "kind": kind});
                match def
                    .entry("x-kubernetes-group-version-kind")
                    .or_insert_with(|| json!([]))
                {
                    Value::Array(list) => list.push(gvk),
                    other => *other = json!([gvk]),
                }
            }
        }
        Catalog { definitions, roots }
    }

    /// Every definition, by name.
    pub fn definitions(&self) -> &Map<String, Value> {
        &self.definitions
    }

    /// One definition by name.
    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }

    /// The definition name of a built-in kind's schema.
    pub fn root_name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.roots
            .iter()
            .find(|((g, v, k), _)| *g == group && *v == version && *k == kind)
            .map(|(_, name)| name.as_str())
    }

    /// The schema of a built-in kind.
    pub fn root(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        self.root_name(group, version, kind)
            .and_then(|n| self.definition(n))
    }

    /// The definition a schema refers to (`$ref`, or `allOf: [{$ref}]`), or
    /// the schema itself when it refers to none.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match ref_name(schema).and_then(|n| self.definition(n)) {
            Some(def) => def,
            None => schema,
        }
    }

    /// The schema of one property of an object schema (resolved), with the
    /// merge markers of the property itself in [`Catalog::property_shape`].
    pub fn property<'a>(&'a self, schema: &'a Value, field: &str) -> Option<&'a Value> {
        self.resolve(schema)
            .get("properties")
            .and_then(|p| p.get(field))
            .map(|p| self.resolve(p))
    }

    /// The merge marker of a property, if it has one.
    pub fn property_shape(&self, schema: &Value, field: &str) -> Option<Shape> {
        let prop = self.resolve(schema).get("properties")?.get(field)?;
        shape_of(prop)
    }

    /// The schema of the items of an array schema (resolved).
    pub fn items<'a>(&'a self, schema: &'a Value) -> Option<&'a Value> {
        self.resolve(schema).get("items").map(|i| self.resolve(i))
    }

    /// The schema of the values of a map schema (resolved).
    pub fn values<'a>(&'a self, schema: &'a Value) -> Option<&'a Value> {
        match self.resolve(schema).get("additionalProperties") {
            Some(Value::Bool(_)) | None => None,
            Some(v) => Some(self.resolve(v)),
        }
    }
}

/// The definition name a schema refers to, if it is a reference.
pub fn ref_name(schema: &Value) -> Option<&str> {
    let reference = schema.get("$ref").or_else(|| {
        schema
            .get("allOf")
            .and_then(Value::as_array)
            .filter(|all| all.len() == 1)
            .and_then(|all| all[0].get("$ref"))
    })?;
    reference.as_str()?.strip_prefix(REF_PREFIX)
}

/// The merge marker a (property) schema carries.
pub fn shape_of(schema: &Value) -> Option<Shape> {
    if schema.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
        return Some(Shape::AtomicMap);
    }
    match schema
        .get("x-kubernetes-list-type")
        .and_then(Value::as_str)?
    {
        "set" => Some(Shape::Set),
        "map" => {
            let keys = schema.get("x-kubernetes-list-map-keys")?.as_array()?;
            // Keys of catalog schemas come from the static table; find the
            // matching row so the shape can stay `'static`.
            shapes::SHAPES.iter().find_map(|(_, _, s)| match s {
                Shape::Map(k) if k.iter().copied().eq(keys.iter().filter_map(Value::as_str)) => {
                    Some(*s)
                }
                _ => None,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_has_a_schema() {
        let catalog = catalog();
        for kind in crate::api::registry::KINDS {
            assert!(
                catalog.root(kind.group, kind.version, kind.kind).is_some(),
                "no schema for {}/{} {}",
                kind.group,
                kind.version,
                kind.kind
            );
        }
    }

    #[test]
    fn navigates_from_a_kind_to_nested_fields() {
        let catalog = catalog();
        let deployment = catalog
            .root("apps", "v1", "Deployment")
            .expect("deployment");
        let template = catalog
            .property(deployment, "spec")
            .and_then(|s| catalog.property(s, "template"))
            .expect("spec.template");
        let pod_spec = catalog.property(template, "spec").expect("template.spec");
        assert_eq!(
            catalog.property_shape(pod_spec, "containers"),
            Some(Shape::Map(&["name"]))
        );
        let container = catalog
            .property(pod_spec, "containers")
            .and_then(|c| catalog.items(c))
            .expect("container");
        assert!(
            catalog
                .property(container, "image")
                .and_then(|i| i.get("description"))
                .is_some()
        );
        assert_eq!(
            catalog.property_shape(container, "ports"),
            Some(Shape::Map(&["containerPort", "protocol"]))
        );
        let labels = catalog
            .property(deployment, "metadata")
            .and_then(|m| catalog.property(m, "labels"))
            .expect("labels");
        assert_eq!(
            catalog.values(labels).and_then(|v| v.get("type")),
            Some(&json!("string"))
        );
    }

    #[test]
    fn roots_carry_their_group_version_kind() {
        let catalog = catalog();
        let hpa = catalog
            .root("autoscaling", "v2", "HorizontalPodAutoscaler")
            .expect("hpa");
        assert_eq!(
            hpa["x-kubernetes-group-version-kind"][0]["version"],
            json!("v2")
        );
    }
}
