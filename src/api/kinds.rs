//! Per-kind behaviour of the API server: defaulting, validation, the
//! server-owned adjustments on create and update, and the field-selector
//! attributes of each built-in kind (upstream's "registry strategies").
//!
//! The generic machinery in `api` looks a kind's [`Strategy`] up with
//! [`strategy_for`] and calls it on every write; objects are handled as JSON
//! values so that fields this skiff does not know are never lost. The
//! strategies expect upstream's order: on create `default`, then (with
//! `metadata.uid` already set) `prepare_for_create`, then `validate_create`;
//! on update `default`, `prepare_for_update`, `validate_update`. They never
//! touch `status` on update: the status/spec split is the caller's. Names are
//! checked with [`validate_name`], whose rule differs by kind.

mod affinity;
mod autoscaling;
mod batch;
mod config;
mod container;
mod coordination;
mod crd;
pub mod cron;
mod daemonset;
mod disruption;
mod endpoints;
mod event;
mod ingress;
pub mod labelselector;
pub mod namespace;
mod networkpolicy;
mod node;
mod pod;
mod podspec;
pub mod quantity;
mod quota;
mod rbac;
pub mod scheduling;
mod service;
mod statefulset;
mod storage;
pub mod validation;
mod workloads;

use serde_json::Value;

/// One reason an object is invalid, as an entry of `Status.details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Upstream's cause type: `FieldValueRequired`, `FieldValueInvalid`,
    /// `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldValueForbidden`,
    /// `FieldValueTooLong`, `FieldValueTooMany`, `FieldValueNotFound`,
    /// `FieldValueTypeInvalid`.
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

/// The problems with `name` as a kind's `metadata.name`, in upstream's
/// words (empty when valid). Most kinds take an RFC 1123 subdomain;
/// Namespaces take an RFC 1123 label, Services an RFC 1035 label, and RBAC
/// objects any path segment (`system:controller:...` names contain colons).
/// The generic code should check names with this rather than a fixed rule.
pub fn validate_name(group: &str, kind: &str, name: &str) -> Vec<String> {
    match (group, kind) {
        ("", "Namespace") => validation::dns1123_label(name),
        ("", "Service") => validation::dns1035_label(name),
        ("rbac.authorization.k8s.io", _) => validation::path_segment_name(name),
        _ => validation::dns1123_subdomain(name),
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
        ("apps", "StatefulSet") => &statefulset::StatefulSetStrategy,
        ("apps", "DaemonSet") => &daemonset::DaemonSetStrategy,
        ("apps", "ControllerRevision") => &workloads::ControllerRevisionStrategy,
        ("", "PersistentVolume") => &storage::PersistentVolumeStrategy,
        ("", "PersistentVolumeClaim") => &storage::PersistentVolumeClaimStrategy,
        ("storage.k8s.io", "StorageClass") => &storage::StorageClassStrategy,
        ("rbac.authorization.k8s.io", "Role") => &rbac::RoleStrategy,
        ("rbac.authorization.k8s.io", "ClusterRole") => &rbac::ClusterRoleStrategy,
        ("rbac.authorization.k8s.io", "RoleBinding") => &rbac::RoleBindingStrategy,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &rbac::ClusterRoleBindingStrategy,
        ("", "Endpoints") => &endpoints::EndpointsStrategy,
        ("discovery.k8s.io", "EndpointSlice") => &endpoints::EndpointSliceStrategy,
        ("networking.k8s.io", "Ingress") => &ingress::IngressStrategy,
        ("networking.k8s.io", "IngressClass") => &ingress::IngressClassStrategy,
        ("networking.k8s.io", "NetworkPolicy") => &networkpolicy::NetworkPolicyStrategy,
        ("", "LimitRange") => &quota::LimitRangeStrategy,
        ("", "ResourceQuota") => &quota::ResourceQuotaStrategy,
        ("policy", "PodDisruptionBudget") => &disruption::PodDisruptionBudgetStrategy,
        ("scheduling.k8s.io", "PriorityClass") => &scheduling::PriorityClassStrategy,
        ("coordination.k8s.io", "Lease") => &coordination::LeaseStrategy,
        ("autoscaling", "HorizontalPodAutoscaler") => &autoscaling::HorizontalPodAutoscalerStrategy,
        ("" | "events.k8s.io", "Event") => &event::EventStrategy,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            &crd::CustomResourceDefinitionStrategy
        }
        ("batch", "Job") => &batch::JobStrategy,
        ("batch", "CronJob") => &batch::CronJobStrategy,
        _ if crate::api::crd::is_custom(group, kind) => &crate::api::crd::CustomStrategy,
        _ => &Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, strategy_for};
    use proptest::prelude::*;
    use serde_json::json;

    /// Every kind with its own strategy.
    const KINDS: &[(&str, &str)] = &[
        ("", "Pod"),
        ("", "ReplicationController"),
        ("", "PodTemplate"),
        ("", "Service"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("", "Endpoints"),
        ("", "LimitRange"),
        ("", "ResourceQuota"),
        ("", "Event"),
        ("", "ServiceAccount"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ControllerRevision"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("storage.k8s.io", "StorageClass"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("policy", "PodDisruptionBudget"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("coordination.k8s.io", "Lease"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("events.k8s.io", "Event"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ];

    /// Runs every strategy method of every kind on `new` (and `old`),
    /// creating and then updating one copy to keep the run short.
    fn exercise(new: &Value, old: &Value) {
        for (group, kind) in KINDS {
            let s = strategy_for(group, kind);
            let _ = s.validate_create(new);
            let mut obj = new.clone();
            s.default(&mut obj);
            s.prepare_for_create(&mut obj);
            let _ = s.validate_create(&obj);
            let _ = s.field_attributes(&obj);
            s.prepare_for_update(&mut obj, old);
            let _ = s.validate_update(&obj, old);
        }
    }

    /// An object holding the fields of many kinds at once, so that
    /// replacing any of its nodes reaches deep into each strategy.
    fn kitchen_sink() -> Value {
        let container = json!({"name": "c", "image": "busybox", "imagePullPolicy": "Always",
            "ports": [{"containerPort": 80, "hostPort": 80, "name": "http", "protocol": "TCP"}],
            "env": [{"name": "A", "value": "b"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"},
                "secretKeyRef": {"key": "k", "name": "s"}}}],
            "envFrom": [{"prefix": "P_"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m"}},
            "volumeMounts": [{"name": "v", "mountPath": "/v"}],
            "livenessProbe": {"httpGet": {"port": "http", "path": "/"}, "successThreshold": 1},
            "readinessProbe": {"tcpSocket": {"port": 80}},
            "lifecycle": {"preStop": {"exec": {"command": ["true"]}}},
            "restartPolicy": "Always"});
        let pod_spec = json!({"containers": [container], "initContainers": [{"name": "i", "image": "x", "restartPolicy": "Always"}],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}, {"name": "s", "secret": {"secretName": "s"}},
                {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                    {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}],
            "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 5}],
            "nodeSelector": {"a": "b"}, "hostNetwork": true, "activeDeadlineSeconds": 10,
            "schedulingGates": [{"name": "g"}], "restartPolicy": "Never", "nodeName": "n1"});
        let template = json!({"metadata": {"labels": {"app": "a"}}, "spec": pod_spec.clone()});
        let spec = sink_spec(template.clone(), &pod_spec);
        json!({
            "apiVersion": "v1", "kind": "Thing", "type": "kubernetes.io/tls", "immutable": true,
            "metadata": {"name": "x.example.com", "namespace": "default", "uid": "u",
                "labels": {"app": "a"}, "annotations": {"a": "b"}, "finalizers": ["example.com/f"]},
            "data": {"tls.crt": "eA==", ".dockerconfigjson": "e30="}, "binaryData": {"b": "eA=="},
            "stringData": {"s": "t"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "nonResourceURLs": ["/x"]}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "s"}, {"kind": "User", "name": "u"}],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "hostname": "h"}],
            "ports": [{"name": "p", "port": 80, "protocol": "TCP"}],
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}],
            "involvedObject": {"kind": "Pod", "namespace": "default"}, "source": {"component": "c"},
            "provisioner": "a/b", "parameters": {"a": "b"}, "reclaimPolicy": "Delete",
            "value": 10, "preemptionPolicy": "Never", "revision": 1,
            "template": template.clone(),
            "spec": spec,
            "status": {"phase": "Bound", "podIPs": [{"ip": "10.42.0.1"}], "replicas": 1, "succeeded": 1,
                "capacity": {"cpu": "1"}}
        })
    }

    /// The `spec` of the kitchen sink, built in parts (the `json!` macro
    /// has a recursion limit).
    fn sink_spec(template: Value, pod_spec: &Value) -> Value {
        let parts = [
            json!({
                "replicas": 3, "selector": {"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]},
                "template": template.clone(), "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain"},
                "volumeClaimTemplates": [{"spec": {"accessModes": ["ReadWriteOnce"]}}],
                "completions": 2, "parallelism": 2, "completionMode": "Indexed", "manualSelector": false,
                "podFailurePolicy": {"rules": [{"onPodConditions": [{"type": "DisruptionTarget"}]}]},
                "schedule": "*/5 * * * *", "timeZone": "UTC",
                "jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {"template": template}},
                "containers": pod_spec["containers"].clone(), "volumes": pod_spec["volumes"].clone()
            }),
            json!({
                "type": "NodePort", "clusterIP": "10.43.0.1", "clusterIPs": ["10.43.0.1"], "externalIPs": ["1.2.3.4"],
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"}],
                "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}},
                "ipFamilies": ["IPv4"], "loadBalancerSourceRanges": ["10.0.0.0/8"], "externalName": "a.b",
                "finalizers": ["kubernetes"], "podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"],
                "taints": [{"key": "k", "effect": "NoSchedule"}], "unschedulable": true, "providerID": "p",
                "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/"},
                "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "s", "volumeName": "v",
                "rules": [{"host": "a.b", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}],
            }),
            json!({
                "tls": [{"hosts": ["a.b"]}], "defaultBackend": {"resource": {"kind": "K", "name": "n"}},
                "controller": "a.b/c", "parameters": {"kind": "K", "name": "n", "scope": "Namespace"},
                "podSelector": {"matchLabels": {"a": "b"}},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}], "ports": [{"port": 80, "endPort": 90}]}],
                "egress": [{"to": [{"podSelector": {}}]}], "policyTypes": ["Ingress"],
                "minAvailable": "50%", "maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
                "limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "1"}, "default": {"cpu": "1"}}],
                "hard": {"pods": "1"}, "scopes": ["BestEffort"],
                "holderIdentity": "h", "leaseDurationSeconds": 10, "renewTime": "2026-01-01T00:00:00.000000Z",
                "scaleTargetRef": {"kind": "Deployment", "name": "d"}, "minReplicas": 1, "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
                "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1}]}},
                "group": "example.com", "scope": "Namespaced", "names": {"plural": "xs", "kind": "X"},
                "versions": [{"name": "v1", "storage": true, "schema": {"openAPIV3Schema": {}}}]
            }),
        ];
        let mut spec = serde_json::Map::new();
        for part in parts {
            if let Value::Object(m) = part {
                spec.extend(m);
            }
        }
        Value::Object(spec)
    }

    const ODD: fn() -> Vec<Value> = || {
        vec![
            Value::Null,
            json!("odd"),
            json!(""),
            json!(-1),
            json!(0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e308),
            json!(true),
            json!([]),
            json!([null, 1, "x", {}]),
            json!({}),
            json!("99999999999999999999999999999999999999999Ei"),
        ]
    };

    /// Copies of a pod template that the kitchen sink holds more than once;
    /// only their roots are mutated (the `spec.template` copy is walked).
    const SHALLOW: [&str; 3] = [
        "/template/spec",
        "/spec/jobTemplate/spec/template/spec",
        "/spec/volumes",
    ];

    /// The JSON pointers of `v` worth mutating.
    fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
        out.push(prefix.clone());
        if SHALLOW.contains(&prefix.as_str()) {
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    pointers(
                        child,
                        format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    pointers(child, format!("{prefix}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// Replaces every `stride`-th node of the kitchen sink by an odd value
    /// (rotating through them, so every value meets every depth) and runs
    /// every strategy on the result, as a new object and, for every fourth
    /// node, as the stored one. Spread over the machine's cores.
    fn run_odd_shapes(stride: usize) {
        let sink = kitchen_sink();
        exercise(&sink, &sink);
        let mut paths = Vec::new();
        pointers(&sink, String::new(), &mut paths);
        let odd_values = ODD();
        let workers = std::thread::available_parallelism().map_or(4, |n| n.get());
        std::thread::scope(|scope| {
            for w in 0..workers {
                let (sink, paths, odd_values) = (&sink, &paths, &odd_values);
                scope.spawn(move || {
                    let mine = paths
                        .iter()
                        .enumerate()
                        .step_by(stride)
                        .skip(w)
                        .step_by(workers);
                    for (i, path) in mine {
                        let mut v = sink.clone();
                        match v.pointer_mut(path) {
                            Some(slot) => {
                                *slot = odd_values[(i / stride) % odd_values.len()].clone()
                            }
                            None => continue,
                        }
                        exercise(&v, sink);
                        if i % 4 == 0 {
                            exercise(sink, &v);
                        }
                    }
                });
            }
        });
    }

    /// Every node of the sample objects, replaced by every odd shape.
    #[test]
    fn no_strategy_panics_when_any_field_has_an_odd_shape() {
        run_odd_shapes(1);
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "metadata",
            "spec",
            "status",
            "template",
            "containers",
            "initContainers",
            "ports",
            "selector",
            "matchLabels",
            "labels",
            "annotations",
            "name",
            "image",
            "resources",
            "limits",
            "requests",
            "data",
            "stringData",
            "type",
            "clusterIP",
            "volumes",
            "rules",
            "roleRef",
            "subjects",
            "endpoints",
            "schedule",
            "jobTemplate",
            "replicas",
            "strategy",
            "rollingUpdate",
            "updateStrategy",
            "uid",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-zA-Z0-9./%*@ :-]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn no_strategy_panics_on_arbitrary_json(new in arbitrary_json(), old in arbitrary_json()) {
            exercise(&new, &old);
        }
    }

    #[test]
    fn names_follow_each_kinds_rule() {
        assert!(super::validate_name("", "Pod", "web.1").is_empty());
        assert!(!super::validate_name("", "Namespace", "team.a").is_empty());
        assert!(!super::validate_name("", "Service", "1web").is_empty());
        assert!(
            super::validate_name("rbac.authorization.k8s.io", "ClusterRole", "system:node")
                .is_empty()
        );
        assert!(!super::validate_name("rbac.authorization.k8s.io", "Role", "a/b").is_empty());
    }

    #[test]
    fn unknown_kinds_get_plain_metadata_validation() {
        let s = strategy_for("example.com", "Widget");
        let errs = s.validate_create(&json!({"metadata": {"labels": {"a": "-bad-"}}}));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.labels");
        assert!(!s.tracks_generation());
    }
}
