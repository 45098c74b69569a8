//! Upstream's strategic-merge markers: `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key`, from the `patchStrategy` /
//! `patchMergeKey` struct tags of k8s.io/api for the groups skiff serves.
//! k8s-openapi's schemas leave them out; [`annotate`] puts them back on the
//! properties, where upstream's OpenAPI has them and where kubectl and the
//! strategic-merge patcher (`api/patch/strategic.rs`) read them.

use serde_json::{Map, Value, json};

/// (definition, property, patch strategy, merge key).
pub static PATCH_MARKERS: &[(&str, &str, &str, Option<&str>)] = &[
    (META_OBJECT, "finalizers", "merge", None),
    (META_OBJECT, "ownerReferences", "merge", Some("uid")),
    (CORE_CONTAINER, "env", "merge", Some("name")),
    (CORE_CONTAINER, "ports", "merge", Some("containerPort")),
    (CORE_CONTAINER, "volumeDevices", "merge", Some("devicePath")),
    (CORE_CONTAINER, "volumeMounts", "merge", Some("mountPath")),
    (CORE_EPHEMERAL, "env", "merge", Some("name")),
    (CORE_EPHEMERAL, "ports", "merge", Some("containerPort")),
    (CORE_EPHEMERAL, "volumeDevices", "merge", Some("devicePath")),
    (CORE_EPHEMERAL, "volumeMounts", "merge", Some("mountPath")),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", None),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (CORE_POD_SPEC, "containers", "merge", Some("name")),
    (CORE_POD_SPEC, "ephemeralContainers", "merge", Some("name")),
    (CORE_POD_SPEC, "hostAliases", "merge", Some("ip")),
    (CORE_POD_SPEC, "imagePullSecrets", "merge", Some("name")),
    (CORE_POD_SPEC, "initContainers", "merge", Some("name")),
    (
        CORE_POD_SPEC,
        "resourceClaims",
        "merge,retainKeys",
        Some("name"),
    ),
    (CORE_POD_SPEC, "schedulingGates", "merge", Some("name")),
    (
        CORE_POD_SPEC,
        "topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    (CORE_POD_SPEC, "volumes", "merge,retainKeys", Some("name")),
    (CORE_POD_STATUS, "conditions", "merge", Some("type")),
    (CORE_POD_STATUS, "hostIPs", "merge", Some("ip")),
    (CORE_POD_STATUS, "podIPs", "merge", Some("ip")),
    (
        CORE_POD_STATUS,
        "resourceClaimStatuses",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "merge",
        Some("port"),
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        None,
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        "x-kubernetes-validations",
        "merge",
        Some("rule"),
    ),
];

const META_OBJECT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const CORE_CONTAINER: &str = "io.k8s.api.core.v1.Container";
const CORE_EPHEMERAL: &str = "io.k8s.api.core.v1.EphemeralContainer";
const CORE_POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const CORE_POD_STATUS: &str = "io.k8s.api.core.v1.PodStatus";

/// Puts the markers of [`PATCH_MARKERS`] on the properties of `definitions`.
pub fn annotate(definitions: &mut Map<String, Value>) {
    for (def, field, strategy, key) in PATCH_MARKERS {
        let Some(prop) = definitions
            .get_mut(*def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        prop.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        if let Some(key) = key {
            prop.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
    }
}

/// The patch strategy and merge key a property schema carries.
pub fn markers(property: &Value) -> (Option<&str>, Option<&str>) {
    (
        property
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str),
        property
            .get("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schema::catalog;

    #[test]
    fn every_marker_lands_on_a_property() {
        let catalog = catalog();
        for (def, field, strategy, key) in PATCH_MARKERS {
            let prop = catalog
                .definition(def)
                .and_then(|d| d.get("properties"))
                .and_then(|p| p.get(*field))
                .unwrap_or_else(|| panic!("{def}.{field} is in the catalog"));
            assert_eq!(markers(prop), (Some(*strategy), *key), "{def}.{field}");
        }
    }
}
