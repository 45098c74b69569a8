//! The kind table: one row per built-in kind the API server serves.
//!
//! Everything generic — discovery, routing, storage keys, the OpenAPI index —
//! is derived from these rows, so adding a kind is adding a row.

/// A subresource a kind serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: writes change only `.status` (and labels/annotations).
    Status,
    /// `/scale`: an `autoscaling/v1` Scale view of `.spec.replicas`.
    Scale,
    /// `pods/binding`: the scheduler assigns a node.
    Binding,
    /// `pods/eviction`: a `policy/v1` Eviction deletes the pod.
    Eviction,
    /// `serviceaccounts/token`: an `authentication.k8s.io/v1` TokenRequest
    /// returns a signed token.
    Token,
    /// `namespaces/finalize`: replaces `spec.finalizers` (the namespace
    /// controller removes `kubernetes` from it once the namespace is empty).
    Finalize,
    /// `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward` and
    /// `nodes/proxy`: proxied to the node's kubelet (`handlers/proxy.rs`).
    Log,
    Exec,
    Attach,
    PortForward,
    Proxy,
}

impl Subresource {
    /// The path segment of the subresource.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Token => "token",
            Subresource::Finalize => "finalize",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Proxy => "proxy",
        }
    }

    /// The group, version and kind of the subresource's object; `None` means
    /// the parent kind itself.
    pub fn response_kind(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Subresource::Status | Subresource::Finalize => None,
            Subresource::Scale => Some(("autoscaling", "v1", "Scale")),
            Subresource::Binding => Some(("", "v1", "Binding")),
            Subresource::Eviction => Some(("policy", "v1", "Eviction")),
            Subresource::Token => Some(("authentication.k8s.io", "v1", "TokenRequest")),
            Subresource::Log => None,
            Subresource::Exec => Some(("", "v1", "PodExecOptions")),
            Subresource::Attach => Some(("", "v1", "PodAttachOptions")),
            Subresource::PortForward => Some(("", "v1", "PodPortForwardOptions")),
            Subresource::Proxy => Some(("", "v1", "NodeProxyOptions")),
        }
    }

    /// The verbs the subresource serves.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale => &["get", "patch", "update"],
            Subresource::Binding | Subresource::Eviction | Subresource::Token => &["create"],
            Subresource::Finalize => &["update"],
            Subresource::Log => &["get"],
            Subresource::Exec | Subresource::Attach | Subresource::PortForward => {
                &["create", "get"]
            }
            Subresource::Proxy => &["create", "delete", "get", "patch", "update"],
        }
    }
}

/// One built-in kind.
#[derive(Debug)]
pub struct KindInfo {
    /// API group, `""` for core.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The storage prefix segment: keys are `/registry/<storage>/<ns>/<name>`.
    /// Kinds served in several versions or groups share one.
    pub storage: &'static str,
}

/// The verbs every kind serves.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl KindInfo {
    /// `apiVersion` as written in objects: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        group_version(self.group, self.version)
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The key prefix of all objects of this kind (in `namespace` if given).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{ns}/", self.storage),
            _ => format!("/registry/{}/", self.storage),
        }
    }

    /// How long objects live without being written again: Events expire
    /// after an hour, as with upstream's default `--event-ttl`.
    pub fn ttl(&self) -> Option<std::time::Duration> {
        (self.storage == "events").then_some(std::time::Duration::from_secs(3600))
    }

    /// Whether a PUT of a missing object creates it, as upstream's
    /// strategies allow for these kinds.
    pub fn allows_create_on_update(&self) -> bool {
        matches!(
            (self.group, self.kind),
            ("", "Endpoints" | "Event" | "LimitRange")
                | ("events.k8s.io", "Event")
                | ("coordination.k8s.io", "Lease")
                | ("rbac.authorization.k8s.io", _)
        )
    }

    /// The create-only review kinds of `authentication.k8s.io` and
    /// `authorization.k8s.io`: answered at once, never stored.
    pub fn is_review(&self) -> bool {
        matches!(self.group, "authentication.k8s.io" | "authorization.k8s.io")
    }

    /// The verbs the kind serves.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.is_review() { &["create"] } else { VERBS }
    }

    /// The key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.prefix(namespace))
    }
}

/// `v1` for core, `group/version` otherwise.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

use Subresource::{
    Attach, Binding, Eviction, Exec, Finalize, Log, PortForward, Proxy, Scale, Status, Token,
};

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

macro_rules! kind {
    ($g:expr, $v:expr, $k:expr, $p:expr, $s:expr, $ns:expr, $short:expr, $cat:expr, $subs:expr) => {
        kind!($g, $v, $k, $p, $s, $ns, $short, $cat, $subs, $p)
    };
    ($g:expr, $v:expr, $k:expr, $p:expr, $s:expr, $ns:expr, $short:expr, $cat:expr, $subs:expr, $st:expr) => {
        KindInfo {
            group: $g,
            version: $v,
            kind: $k,
            plural: $p,
            singular: $s,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            subresources: $subs,
            storage: $st,
        }
    };
}

/// Every built-in kind, grouped by group and version in discovery order.
pub static KINDS: &[KindInfo] = &[
    kind!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        NONE,
        &[Status, Finalize]
    ),
    kind!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        ALL,
        &[Status, Binding, Eviction, Log, Exec, Attach, PortForward]
    ),
    kind!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        ALL,
        &[Status]
    ),
    kind!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        &["ep"],
        NONE,
        &[]
    ),
    kind!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        &["cm"],
        NONE,
        &[]
    ),
    kind!(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        true,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"],
        NONE,
        &[Token]
    ),
    kind!(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        &["no"],
        NONE,
        &[Status, Proxy]
    ),
    kind!(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        NONE,
        &[]
    ),
    kind!(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        false,
        &["pv"],
        NONE,
        &[Status]
    ),
    kind!(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        true,
        &["pvc"],
        NONE,
        &[Status]
    ),
    kind!(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        true,
        &["limits"],
        NONE,
        &[]
    ),
    kind!(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        true,
        &["quota"],
        NONE,
        &[Status]
    ),
    kind!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        true,
        &["rc"],
        ALL,
        &[Status, Scale]
    ),
    kind!(
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        "podtemplate",
        true,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        &["deploy"],
        ALL,
        &[Status, Scale]
    ),
    kind!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        &["rs"],
        ALL,
        &[Status, Scale]
    ),
    kind!(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        &["sts"],
        ALL,
        &[Status, Scale]
    ),
    kind!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        &["ds"],
        ALL,
        &[Status]
    ),
    kind!(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        NONE,
        ALL,
        &[Status]
    ),
    kind!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        true,
        &["cj"],
        ALL,
        &[Status]
    ),
    kind!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        NONE,
        &[],
        "events"
    ),
    kind!(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        true,
        &["ing"],
        NONE,
        &[Status]
    ),
    kind!(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        false,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        true,
        &["netpol"],
        NONE,
        &[]
    ),
    kind!(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        true,
        &["pdb"],
        NONE,
        &[Status]
    ),
    kind!(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        false,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        true,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        false,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        false,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        false,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        true,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        true,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        false,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
        NONE,
        NONE,
        &[]
    ),
    kind!(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        false,
        &["sc"],
        NONE,
        &[]
    ),
    kind!(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        false,
        &["pc"],
        NONE,
        &[]
    ),
    kind!(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        &["hpa"],
        ALL,
        &[Status]
    ),
    kind!(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        &["hpa"],
        ALL,
        &[Status]
    ),
    kind!(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        &[Status]
    ),
];

/// The kind served at `group`/`version` under `plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
        .or_else(|| {
            crate::api::crd::served()
                .into_iter()
                .find(|k| k.group == group && k.version == version && k.plural == plural)
        })
}

/// The API groups (excluding core) with their versions, preferred first, in
/// table order, then the custom resources' groups.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    let custom = crate::api::crd::served();
    for k in KINDS.iter().chain(custom).filter(|k| !k.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == k.group) {
            Some((_, versions)) if !versions.contains(&k.version) => versions.push(k.version),
            Some(_) => {}
            None => out.push((k.group, vec![k.version])),
        }
    }
    out
}

/// The kinds served in one group version.
pub fn kinds_in(group: &str, version: &str) -> impl Iterator<Item = &'static KindInfo> {
    let (group, version) = (group.to_string(), version.to_string());
    KINDS
        .iter()
        .chain(crate::api::crd::served())
        .filter(move |k| k.group == group && k.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_are_unique_within_a_group_version() {
        for k in KINDS {
            assert_eq!(
                kinds_in(k.group, k.version)
                    .filter(|o| o.plural == k.plural)
                    .count(),
                1,
                "{}",
                k.plural
            );
        }
    }

    #[test]
    fn shared_storage_only_for_the_same_kind() {
        for a in KINDS {
            for b in KINDS.iter().filter(|b| b.storage == a.storage) {
                assert_eq!(a.kind, b.kind);
            }
        }
    }

    #[test]
    fn autoscaling_prefers_v2() {
        let groups = groups();
        let autoscaling = groups.iter().find(|(g, _)| *g == "autoscaling");
        assert_eq!(autoscaling.map(|(_, v)| v.clone()), Some(vec!["v2", "v1"]));
    }

    #[test]
    fn keys_follow_upstream_layout() {
        let cm = lookup("", "v1", "configmaps").map(|k| k.key(Some("default"), "x"));
        assert_eq!(cm.as_deref(), Some("/registry/configmaps/default/x"));
        let ns = lookup("", "v1", "namespaces").map(|k| k.key(None, "x"));
        assert_eq!(ns.as_deref(), Some("/registry/namespaces/x"));
    }
}
