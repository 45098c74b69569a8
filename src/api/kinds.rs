//! Per-kind behaviour of the API server: defaulting, validation, the
//! server-owned adjustments on create and update, and the field-selector
//! attributes of each built-in kind (upstream's "registry strategies").
//!
//! The generic machinery in `api` looks a kind's [`Strategy`] up with
//! [`strategy_for`] and calls it on every write; objects are handled as JSON
//! values so that fields this skiff does not know are never lost.

mod batch;
mod config;
mod coordination;
mod cron;
mod disruption;
mod labelselector;
mod namespace;
mod networking;
mod node;
mod pod;
mod podspec;
pub mod quantity;
mod quota;
mod rbac;
mod scheduling;
mod service;
mod storage;
pub mod validation;
mod workloads;

use serde_json::Value;

/// One reason an object is invalid, as an entry of `Status.details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Upstream's cause type: `FieldValueRequired`, `FieldValueInvalid`,
    /// `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldValueForbidden`,
    /// `FieldValueTooLong`, `FieldValueTypeInvalid`.
    pub reason: &'static str,
    /// Human-readable text, as upstream words it
    /// (e.g. `Required value`, `Invalid value: "x": must be ...`).
    pub message: String,
    /// The JSON path of the field, e.g. `spec.containers[0].image`.
    pub field: String,
}

/// How one kind is defaulted, validated and adjusted on writes.
/// Every method has a neutral default, so a kind only overrides what it needs.
pub trait Strategy: Send + Sync {
    /// Fill defaulted fields as upstream's defaulting functions do
    /// (e.g. a container's `terminationMessagePath`, a Service's `sessionAffinity`).
    fn default(&self, _obj: &mut Value) {}

    /// Server-owned changes to a new object before validation
    /// (e.g. a new Pod's status reset to `Pending`).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Server-owned changes to an updated object before validation
    /// (e.g. immutable fields a client may not touch).
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// Validation of a new object.
    fn validate_create(&self, _obj: &Value) -> Vec<Cause> {
        Vec::new()
    }

    /// Validation of an update (including immutability rules).
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        self.validate_create(new)
    }

    /// Field-selector attributes beyond `metadata.name` and
    /// `metadata.namespace` (which the generic code handles for every kind),
    /// e.g. pods' `spec.nodeName` and `status.phase`.
    fn field_attributes(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Whether `metadata.generation` tracks spec changes for this kind.
    fn tracks_generation(&self) -> bool {
        false
    }
}

/// The strategy of kinds with no special behaviour.
pub struct Plain;

/// Every kind validates its labels, annotations and finalizers.
impl Strategy for Plain {
    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        validation::validate_meta(obj)
    }
}

/// The strategy of a built-in kind, by API group (`""` for core) and kind.
pub fn strategy_for(group: &str, kind: &str) -> &'static dyn Strategy {
    match (group, kind) {
        ("", "Pod") => &pod::PodStrategy,
        ("", "ReplicationController") => &workloads::ReplicationControllerStrategy,
        ("", "PodTemplate") => &workloads::PodTemplateStrategy,
        ("", "Service") => &service::ServiceStrategy,
        ("", "ConfigMap") => &config::ConfigMapStrategy,
        ("", "Secret") => &config::SecretStrategy,
        ("", "Namespace") => &namespace::NamespaceStrategy,
        ("", "Node") => &node::NodeStrategy,
        ("apps", "Deployment") => &workloads::DeploymentStrategy,
        ("apps", "ReplicaSet") => &workloads::ReplicaSetStrategy,
        ("apps", "StatefulSet") => &workloads::StatefulSetStrategy,
        ("apps", "DaemonSet") => &workloads::DaemonSetStrategy,
        ("apps", "ControllerRevision") => &workloads::ControllerRevisionStrategy,
        ("", "PersistentVolume") => &storage::PersistentVolumeStrategy,
        ("", "PersistentVolumeClaim") => &storage::PersistentVolumeClaimStrategy,
        ("storage.k8s.io", "StorageClass") => &storage::StorageClassStrategy,
        ("rbac.authorization.k8s.io", "Role") => &rbac::RoleStrategy,
        ("rbac.authorization.k8s.io", "ClusterRole") => &rbac::ClusterRoleStrategy,
        ("rbac.authorization.k8s.io", "RoleBinding") => &rbac::RoleBindingStrategy,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &rbac::ClusterRoleBindingStrategy,
        ("", "Endpoints") => &networking::EndpointsStrategy,
        ("discovery.k8s.io", "EndpointSlice") => &networking::EndpointSliceStrategy,
        ("networking.k8s.io", "Ingress") => &networking::IngressStrategy,
        ("networking.k8s.io", "IngressClass") => &networking::IngressClassStrategy,
        ("networking.k8s.io", "NetworkPolicy") => &networking::NetworkPolicyStrategy,
        ("", "LimitRange") => &quota::LimitRangeStrategy,
        ("", "ResourceQuota") => &quota::ResourceQuotaStrategy,
        ("policy", "PodDisruptionBudget") => &disruption::PodDisruptionBudgetStrategy,
        ("scheduling.k8s.io", "PriorityClass") => &scheduling::PriorityClassStrategy,
        ("coordination.k8s.io", "Lease") => &coordination::LeaseStrategy,
        ("batch", "Job") => &batch::JobStrategy,
        ("batch", "CronJob") => &batch::CronJobStrategy,
        _ => &Plain,
    }
}
