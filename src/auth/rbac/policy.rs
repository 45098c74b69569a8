//! The bootstrap policy: the ClusterRoles, ClusterRoleBindings, Roles and
//! RoleBindings every cluster starts with, taken from upstream's
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy` (v1.33, feature-gated
//! alpha/beta entries left out). The controller roles cover the
//! controllers skiff runs or is about to run.
//!
//! As upstream, the `system:node` binding has no subjects: kubelets are
//! authorized by the node authorizer (`auth/node.rs`), whose static rules
//! are the `system:node` ClusterRole's ([`node_rules`]).

use serde_json::{Value, json};

use super::rules::Rule;

/// One rule of the table.
pub struct R {
    verbs: &'static [&'static str],
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    names: &'static [&'static str],
    urls: &'static [&'static str],
}

const fn res(
    verbs: &'static [&'static str],
    groups: &'static [&'static str],
    resources: &'static [&'static str],
) -> R {
    R {
        verbs,
        groups,
        resources,
        names: &[],
        urls: &[],
    }
}

const fn named(
    verbs: &'static [&'static str],
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    names: &'static [&'static str],
) -> R {
    R {
        verbs,
        groups,
        resources,
        names,
        urls: &[],
    }
}

const fn urls(verbs: &'static [&'static str], urls: &'static [&'static str]) -> R {
    R {
        verbs,
        groups: &[],
        resources: &[],
        names: &[],
        urls,
    }
}

impl R {
    pub fn rule(&self) -> Rule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Rule {
            verbs: v(self.verbs),
            api_groups: v(self.groups),
            resources: v(self.resources),
            resource_names: v(self.names),
            non_resource_urls: v(self.urls),
        }
    }
}

/// A ClusterRole (or, with a namespace, a Role).
pub struct RoleDef {
    pub namespace: Option<&'static str>,
    pub name: &'static str,
    /// Extra labels (aggregation targets).
    pub labels: &'static [&'static str],
    /// `aggregationRule.clusterRoleSelectors`, one `matchLabels` key each
    /// (value `"true"`).
    pub aggregate_from: &'static [&'static str],
    pub rules: &'static [R],
}

/// A subject of a bootstrap binding.
pub enum Who {
    User(&'static str),
    Group(&'static str),
    /// A service account: namespace, name.
    Sa(&'static str, &'static str),
}

/// A ClusterRoleBinding (or, with a namespace, a RoleBinding).
pub struct BindingDef {
    pub namespace: Option<&'static str>,
    pub name: &'static str,
    /// `("ClusterRole" | "Role", name)`.
    pub role: (&'static str, &'static str),
    pub subjects: &'static [Who],
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
const READ_UPDATE: &[&str] = &["get", "list", "watch", "update", "patch"];
const CORE: &[&str] = &[""];
const APPS: &[&str] = &["apps"];
const APPS_EXT: &[&str] = &["apps", "extensions"];
const BATCH: &[&str] = &["batch"];
const AUTHN: &[&str] = &["authentication.k8s.io"];
const AUTHZ: &[&str] = &["authorization.k8s.io"];
const RBAC: &[&str] = &["rbac.authorization.k8s.io"];
const STORAGE: &[&str] = &["storage.k8s.io"];
const COORDINATION: &[&str] = &["coordination.k8s.io"];
const ANY: &[&str] = &["*"];
const EVENTS: R = res(
    &["create", "update", "patch"],
    &["", "events.k8s.io"],
    &["events"],
);

const AGG_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGG_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGG_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const fn cluster_role(name: &'static str, rules: &'static [R]) -> RoleDef {
    RoleDef {
        namespace: None,
        name,
        labels: &[],
        aggregate_from: &[],
        rules,
    }
}

const fn role(namespace: &'static str, name: &'static str, rules: &'static [R]) -> RoleDef {
    RoleDef {
        namespace: Some(namespace),
        name,
        labels: &[],
        aggregate_from: &[],
        rules,
    }
}

/// Every bootstrap ClusterRole and Role.
#[rustfmt::skip]
pub static ROLES: &[RoleDef] = &[
    cluster_role("cluster-admin", &[res(&["*"], ANY, &["*"]), urls(&["*"], &["*"])]),
    cluster_role("system:discovery",
        &[
            urls(&["get"], &["/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*",
                "/api", "/api/*", "/apis", "/apis/*"]),
        ],
    ),
    cluster_role("system:monitoring",
        &[
            urls(&["get"], &["/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*",
                "/readyz/*", "/healthz/*"]),
        ],
    ),
    cluster_role("system:basic-user",
        &[
            res(&["create"], AUTHZ, &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            res(&["create"], AUTHN, &["selfsubjectreviews"]),
        ],
    ),
    cluster_role("system:public-info-viewer",
        &[
            urls(&["get"], &["/livez", "/readyz", "/healthz", "/version", "/version/"]),
        ],
    ),
    RoleDef {
        namespace: None,
        name: "admin",
        labels: &[],
        aggregate_from: &[AGG_ADMIN],
        rules: &[],
    },
    RoleDef {
        namespace: None,
        name: "edit",
        labels: &[AGG_ADMIN],
        aggregate_from: &[AGG_EDIT],
        rules: &[],
    },
    RoleDef {
        namespace: None,
        name: "view",
        labels: &[AGG_EDIT],
        aggregate_from: &[AGG_VIEW],
        rules: &[],
    },
    RoleDef {
        namespace: None,
        name: "system:aggregate-to-admin",
        labels: &[AGG_ADMIN],
        aggregate_from: &[],
        rules: &[
            res(&["create"], AUTHZ, &["localsubjectaccessreviews"]),
            res(READ_WRITE, RBAC, &["roles", "rolebindings"]),
        ],
    },
    RoleDef {
        namespace: None,
        name: "system:aggregate-to-edit",
        labels: &[AGG_EDIT],
        aggregate_from: &[],
        rules: &[
            res(READ, CORE, &["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets",
                "services/proxy"]),
            res(&["impersonate"], CORE, &["serviceaccounts"]),
            res(WRITE, CORE, &["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
            res(&["create"], CORE, &["pods/eviction"]),
            res(WRITE, CORE, &["replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                "services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets"]),
            res(&["create"], CORE, &["serviceaccounts/token"]),
            res(WRITE, APPS, &["statefulsets", "statefulsets/scale", "daemonsets", "deployments",
                "deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale"]),
            res(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
            res(WRITE, BATCH, &["jobs", "cronjobs"]),
            res(WRITE, &["extensions"], &["daemonsets", "deployments", "deployments/scale",
                "deployments/rollback", "ingresses", "replicasets", "replicasets/scale",
                "replicationcontrollers/scale", "networkpolicies"]),
            res(WRITE, &["policy"], &["poddisruptionbudgets"]),
            res(WRITE, &["networking.k8s.io"], &["networkpolicies", "ingresses"]),
        ],
    },
    RoleDef {
        namespace: None,
        name: "system:aggregate-to-view",
        labels: &[AGG_VIEW],
        aggregate_from: &[],
        rules: &[
            res(READ, CORE, &["pods", "replicationcontrollers", "replicationcontrollers/scale",
                "serviceaccounts", "services", "services/status", "endpoints",
                "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"]),
            res(READ, CORE, &["limitranges", "resourcequotas", "bindings", "events", "pods/status",
                "resourcequotas/status", "namespaces/status", "replicationcontrollers/status",
                "pods/log"]),
            res(READ, CORE, &["namespaces"]),
            res(READ, APPS, &["controllerrevisions", "statefulsets", "statefulsets/status",
                "statefulsets/scale", "daemonsets", "daemonsets/status", "deployments",
                "deployments/status", "deployments/scale", "replicasets", "replicasets/status",
                "replicasets/scale"]),
            res(READ, &["autoscaling"], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
            res(READ, BATCH, &["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
            res(READ, &["extensions"], &["daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                "deployments/status", "ingresses", "ingresses/status", "replicasets",
                "replicasets/scale", "replicasets/status", "replicationcontrollers/scale",
                "networkpolicies"]),
            res(READ, &["policy"], &["poddisruptionbudgets", "poddisruptionbudgets/status"]),
            res(READ, &["networking.k8s.io"], &["networkpolicies", "ingresses", "ingresses/status"]),
        ],
    },
    cluster_role("system:node",
        &[
            res(&["create"], AUTHN, &["tokenreviews"]),
            res(&["create"], AUTHZ, &["subjectaccessreviews", "localsubjectaccessreviews"]),
            res(READ, CORE, &["services"]),
            res(&["create", "get", "list", "watch"], CORE, &["nodes"]),
            res(&["update", "patch"], CORE, &["nodes/status"]),
            res(&["update", "patch"], CORE, &["nodes"]),
            res(&["create", "update", "patch"], CORE, &["events"]),
            res(READ, CORE, &["pods"]),
            res(&["create", "delete"], CORE, &["pods"]),
            res(&["update", "patch"], CORE, &["pods/status"]),
            res(&["create"], CORE, &["pods/eviction"]),
            res(READ, CORE, &["secrets", "configmaps"]),
            res(&["get"], CORE, &["persistentvolumeclaims", "persistentvolumes"]),
            res(&["get"], CORE, &["endpoints"]),
            res(&["create", "get", "list", "watch"], &["certificates.k8s.io"], &["certificatesigningrequests"]),
            res(&["get", "create", "update", "patch", "delete"], COORDINATION, &["leases"]),
            res(&["get"], STORAGE, &["volumeattachments"]),
            res(&["get", "update", "patch"], CORE, &["persistentvolumeclaims/status"]),
            res(&["create"], CORE, &["serviceaccounts/token"]),
            res(&["get", "watch", "list"], STORAGE, &["csidrivers"]),
            res(&["get", "create", "update", "patch", "delete"], STORAGE, &["csinodes"]),
            res(READ, &["node.k8s.io"], &["runtimeclasses"]),
        ],
    ),
    cluster_role("system:kubelet-api-admin",
        &[
            res(&["get", "list", "watch", "proxy"], CORE, &["nodes"]),
            res(&["*"], CORE, &["nodes/proxy", "nodes/metrics", "nodes/spec", "nodes/stats", "nodes/log"]),
        ],
    ),
    cluster_role("system:node-proxier",
        &[
            res(&["list", "watch"], CORE, &["services", "endpoints"]),
            res(READ, CORE, &["nodes"]),
            EVENTS,
            res(&["list", "watch"], &["discovery.k8s.io"], &["endpointslices"]),
        ],
    ),
    // k3s's CoreDNS role; skiff's in-process DNS runs with each node's
    // credentials, so it is bound to the nodes' group.
    cluster_role("system:coredns",
        &[
            res(&["list", "watch"], CORE, &["endpoints", "services", "pods", "namespaces"]),
            res(&["list", "watch"], &["discovery.k8s.io"], &["endpointslices"]),
        ],
    ),
    cluster_role("system:auth-delegator",
        &[
            res(&["create"], AUTHN, &["tokenreviews"]),
            res(&["create"], AUTHZ, &["subjectaccessreviews"]),
        ],
    ),
    cluster_role("system:kube-controller-manager",
        &[
            EVENTS,
            res(&["create"], COORDINATION, &["leases"]),
            named(&["get", "update"], COORDINATION, &["leases"], &["kube-controller-manager"]),
            res(&["create"], CORE, &["secrets", "serviceaccounts"]),
            res(&["delete"], CORE, &["secrets"]),
            res(&["get"], CORE, &["namespaces", "secrets", "serviceaccounts", "configmaps"]),
            res(&["update"], CORE, &["secrets", "serviceaccounts"]),
            res(&["create"], AUTHN, &["tokenreviews"]),
            res(&["create"], AUTHZ, &["subjectaccessreviews"]),
            res(&["list", "watch"], ANY, &["*"]),
            res(&["create"], CORE, &["serviceaccounts/token"]),
        ],
    ),
    cluster_role("system:kube-scheduler",
        &[
            EVENTS,
            res(&["create"], COORDINATION, &["leases"]),
            named(&["get", "update"], COORDINATION, &["leases"], &["kube-scheduler"]),
            res(READ, CORE, &["nodes"]),
            res(&["get", "list", "watch", "delete"], CORE, &["pods"]),
            res(&["create"], CORE, &["pods/binding", "bindings"]),
            res(&["patch", "update"], CORE, &["pods/status"]),
            res(READ, CORE, &["services", "replicationcontrollers"]),
            res(READ, APPS_EXT, &["replicasets"]),
            res(READ, APPS, &["statefulsets"]),
            res(READ, &["policy"], &["poddisruptionbudgets"]),
            res(READ, CORE, &["persistentvolumeclaims", "persistentvolumes"]),
            res(&["create"], AUTHN, &["tokenreviews"]),
            res(&["create"], AUTHZ, &["subjectaccessreviews"]),
            res(READ, STORAGE, &["csinodes"]),
            res(READ, CORE, &["namespaces"]),
            res(READ, STORAGE, &["csidrivers"]),
            res(READ, STORAGE, &["csistoragecapacities"]),
        ],
    ),
    cluster_role("system:volume-scheduler",
        &[
            res(READ_UPDATE, CORE, &["persistentvolumes"]),
            res(READ, STORAGE, &["storageclasses"]),
            res(READ_UPDATE, CORE, &["persistentvolumeclaims"]),
        ],
    ),
    // Controller roles, bound to `kube-system` service accounts of the same
    // name (see CONTROLLER_BINDINGS).
    cluster_role("system:controller:clusterrole-aggregation-controller",
        &[
            res(&["escalate", "get", "list", "watch", "update", "patch"], RBAC, &["clusterroles"]),
        ],
    ),
    cluster_role("system:controller:cronjob-controller",
        &[
            res(&["get", "list", "watch", "update"], BATCH, &["cronjobs"]),
            res(&["get", "list", "watch", "create", "update", "delete", "patch"], BATCH, &["jobs"]),
            res(&["update"], BATCH, &["cronjobs/status"]),
            res(&["update"], BATCH, &["cronjobs/finalizers"]),
            res(&["list", "delete"], CORE, &["pods"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:daemon-set-controller",
        &[
            res(READ, APPS_EXT, &["daemonsets"]),
            res(&["update"], APPS_EXT, &["daemonsets/status"]),
            res(&["update"], APPS_EXT, &["daemonsets/finalizers"]),
            res(&["list", "watch"], CORE, &["nodes"]),
            res(&["list", "watch", "create", "delete", "patch"], CORE, &["pods"]),
            res(&["create"], CORE, &["pods/binding"]),
            res(&["get", "list", "watch", "create", "delete", "update", "patch"], APPS, &["controllerrevisions"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:deployment-controller",
        &[
            res(&["get", "list", "watch", "update"], APPS_EXT, &["deployments"]),
            res(&["update"], APPS_EXT, &["deployments/status"]),
            res(&["update"], APPS_EXT, &["deployments/finalizers"]),
            res(&["get", "list", "watch", "create", "update", "patch", "delete"], APPS_EXT, &["replicasets"]),
            res(&["get", "list", "watch", "update"], CORE, &["pods"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:endpoint-controller",
        &[
            res(&["get", "list", "watch"], CORE, &["services", "pods"]),
            res(&["get", "list", "create", "update", "delete"], CORE, &["endpoints"]),
            res(&["create"], CORE, &["endpoints/restricted"]),
            EVENTS,
        ],
    ),
    // skiff's ServiceLB (k3s's, without svclb pods).
    cluster_role("system:controller:service-lb-controller",
        &[
            res(&["get", "list", "watch"], CORE, &["services", "nodes"]),
            res(&["patch", "update"], CORE, &["services/status"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:endpointslice-controller",
        &[
            res(&["get", "list", "watch"], CORE, &["services", "pods", "nodes"]),
            res(&["update"], CORE, &["services/finalizers"]),
            res(&["get", "list", "create", "update", "delete"], &["discovery.k8s.io"], &["endpointslices"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:generic-garbage-collector",
        &[
            res(&["get", "list", "watch", "patch", "update", "delete"], ANY, &["*"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:job-controller",
        &[
            res(&["get", "list", "watch", "update", "patch"], BATCH, &["jobs"]),
            res(&["update", "patch"], BATCH, &["jobs/status"]),
            res(&["update"], BATCH, &["jobs/finalizers"]),
            res(&["list", "watch", "create", "delete", "patch"], CORE, &["pods"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:namespace-controller",
        &[
            res(&["get", "list", "watch", "delete"], CORE, &["namespaces"]),
            res(&["update"], CORE, &["namespaces/finalize", "namespaces/status"]),
            res(&["get", "list", "watch", "delete", "deletecollection"], ANY, &["*"]),
        ],
    ),
    cluster_role("system:controller:disruption-controller",
        &[
            res(&["get", "list", "watch"], APPS_EXT, &["deployments"]),
            res(&["get", "list", "watch"], APPS_EXT, &["replicasets"]),
            res(&["get", "list", "watch"], CORE, &["replicationcontrollers"]),
            res(&["get", "list", "watch"], &["policy"], &["poddisruptionbudgets"]),
            res(&["get", "list", "watch"], APPS, &["statefulsets"]),
            res(&["update"], &["policy"], &["poddisruptionbudgets/status"]),
            res(&["get"], &["*"], &["*/scale"]),
            res(&["patch", "update"], CORE, &["pods/status"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:node-controller",
        &[
            res(&["get", "list", "watch", "update", "delete", "patch"], CORE, &["nodes"]),
            res(&["patch", "update"], CORE, &["nodes/status"]),
            res(&["patch", "update"], CORE, &["pods/status"]),
            res(&["list", "watch", "get", "delete"], CORE, &["pods"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:persistent-volume-binder",
        &[
            res(&["get", "list", "watch", "update", "create", "delete"], CORE, &["persistentvolumes"]),
            res(&["update"], CORE, &["persistentvolumes/status"]),
            res(&["get", "list", "watch", "update"], CORE, &["persistentvolumeclaims"]),
            res(&["update"], CORE, &["persistentvolumeclaims/status"]),
            res(&["list", "watch", "get", "create", "delete"], CORE, &["pods"]),
            res(READ, STORAGE, &["storageclasses"]),
            res(&["get", "create", "update", "delete"], CORE, &["endpoints"]),
            res(&["get", "create", "delete"], CORE, &["services"]),
            res(&["get"], CORE, &["secrets"]),
            res(&["get", "list"], CORE, &["nodes"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:pod-garbage-collector",
        &[
            res(&["list", "watch", "delete"], CORE, &["pods"]),
            res(&["get", "list"], CORE, &["nodes"]),
            res(&["patch"], CORE, &["pods/status"]),
        ],
    ),
    cluster_role("system:controller:replicaset-controller",
        &[
            res(&["get", "list", "watch", "update"], APPS_EXT, &["replicasets"]),
            res(&["update"], APPS_EXT, &["replicasets/status"]),
            res(&["update"], APPS_EXT, &["replicasets/finalizers"]),
            res(&["list", "watch", "patch", "create", "delete"], CORE, &["pods"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:replication-controller",
        &[
            res(&["get", "list", "watch", "update"], CORE, &["replicationcontrollers"]),
            res(&["update"], CORE, &["replicationcontrollers/status"]),
            res(&["update"], CORE, &["replicationcontrollers/finalizers"]),
            res(&["list", "watch", "patch", "create", "delete"], CORE, &["pods"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:statefulset-controller",
        &[
            res(&["list", "watch"], CORE, &["pods"]),
            res(READ, APPS, &["statefulsets"]),
            res(&["update"], APPS, &["statefulsets/status"]),
            res(&["update"], APPS, &["statefulsets/finalizers"]),
            res(&["get", "create", "delete", "update", "patch"], CORE, &["pods"]),
            res(&["get", "create", "delete", "update", "patch", "list", "watch"], APPS, &["controllerrevisions"]),
            res(&["get", "create", "list", "watch"], CORE, &["persistentvolumeclaims"]),
            res(&["update", "delete"], CORE, &["persistentvolumeclaims"]),
            res(&["update"], CORE, &["pods/finalizers"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:ttl-after-finished-controller",
        &[
            res(&["delete", "get", "list", "watch"], BATCH, &["jobs"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:service-account-controller",
        &[
            res(&["create"], CORE, &["serviceaccounts"]),
            EVENTS,
        ],
    ),
    cluster_role("system:controller:root-ca-cert-publisher",
        &[
            res(&["create", "update"], CORE, &["configmaps"]),
            EVENTS,
        ],
    ),
    // Namespaced roles.
    role("kube-system", "extension-apiserver-authentication-reader",
        &[
            named(READ, CORE, &["configmaps"], &["extension-apiserver-authentication"]),
        ],
    ),
    role("kube-system", "system::leader-locking-kube-controller-manager",
        &[
            res(&["watch"], CORE, &["configmaps"]),
            named(&["get", "update"], CORE, &["configmaps"], &["kube-controller-manager"]),
        ],
    ),
    role("kube-system", "system::leader-locking-kube-scheduler",
        &[
            res(&["watch"], CORE, &["configmaps"]),
            named(&["get", "update"], CORE, &["configmaps"], &["kube-scheduler"]),
        ],
    ),
    role("kube-system", "system:controller:bootstrap-signer", &[res(READ, CORE, &["secrets"])]),
    role("kube-system", "system:controller:cloud-provider",
        &[
            res(&["create", "get", "list", "watch"], CORE, &["configmaps"]),
        ],
    ),
    role("kube-system", "system:controller:token-cleaner",
        &[
            res(&["delete", "get", "list", "watch"], CORE, &["secrets"]),
            EVENTS,
        ],
    ),
    role("kube-public", "system:controller:bootstrap-signer",
        &[
            res(READ, CORE, &["configmaps"]),
            named(&["update"], CORE, &["configmaps"], &["cluster-info"]),
            EVENTS,
        ],
    ),
];

const fn cluster_binding(
    name: &'static str,
    role: &'static str,
    subjects: &'static [Who],
) -> BindingDef {
    BindingDef {
        namespace: None,
        name,
        role: ("ClusterRole", role),
        subjects,
    }
}

/// Every bootstrap ClusterRoleBinding and RoleBinding.
#[rustfmt::skip]
pub static BINDINGS: &[BindingDef] = &[
    cluster_binding("cluster-admin", "cluster-admin", &[Who::Group("system:masters")]),
    cluster_binding("system:monitoring", "system:monitoring", &[Who::Group("system:monitoring")]),
    cluster_binding("system:discovery", "system:discovery", &[Who::Group("system:authenticated")]),
    cluster_binding("system:basic-user", "system:basic-user", &[Who::Group("system:authenticated")]),
    cluster_binding("system:public-info-viewer", "system:public-info-viewer",
        &[Who::Group("system:authenticated"), Who::Group("system:unauthenticated")]),
    cluster_binding("system:node-proxier", "system:node-proxier", &[Who::User("system:kube-proxy")]),
    cluster_binding("system:kube-controller-manager", "system:kube-controller-manager",
        &[Who::User("system:kube-controller-manager")]),
    cluster_binding("system:kube-scheduler", "system:kube-scheduler",
        &[Who::User("system:kube-scheduler")]),
    cluster_binding("system:volume-scheduler", "system:volume-scheduler",
        &[Who::User("system:kube-scheduler")]),
    cluster_binding("system:node", "system:node", &[]),
    // skiff's nodes run the service proxy in-process with their own
    // credentials (upstream's kube-proxy has a user of its own).
    cluster_binding("skiff:node-proxier", "system:node-proxier", &[Who::Group("system:nodes")]),
    cluster_binding("system:coredns", "system:coredns", &[Who::Group("system:nodes")]),
    // The API server's client certificate at kubelets (pods/log, exec, ...).
    cluster_binding("system:kubelet-api-admin", "system:kubelet-api-admin",
        &[Who::User("kube-apiserver-kubelet-client")]),
    cluster_binding("system:controller:clusterrole-aggregation-controller", "system:controller:clusterrole-aggregation-controller",
        &[Who::Sa("kube-system", "clusterrole-aggregation-controller")]),
    cluster_binding("system:controller:cronjob-controller", "system:controller:cronjob-controller",
        &[Who::Sa("kube-system", "cronjob-controller")]),
    cluster_binding("system:controller:daemon-set-controller", "system:controller:daemon-set-controller",
        &[Who::Sa("kube-system", "daemon-set-controller")]),
    cluster_binding("system:controller:deployment-controller", "system:controller:deployment-controller",
        &[Who::Sa("kube-system", "deployment-controller")]),
    cluster_binding("system:controller:disruption-controller", "system:controller:disruption-controller",
        &[Who::Sa("kube-system", "disruption-controller")]),
    cluster_binding("system:controller:endpoint-controller", "system:controller:endpoint-controller",
        &[Who::Sa("kube-system", "endpoint-controller")]),
    cluster_binding("system:controller:service-lb-controller", "system:controller:service-lb-controller",
        &[Who::Sa("kube-system", "service-lb-controller")]),
    cluster_binding("system:controller:endpointslice-controller", "system:controller:endpointslice-controller",
        &[Who::Sa("kube-system", "endpointslice-controller")]),
    cluster_binding("system:controller:generic-garbage-collector", "system:controller:generic-garbage-collector",
        &[Who::Sa("kube-system", "generic-garbage-collector")]),
    cluster_binding("system:controller:job-controller", "system:controller:job-controller",
        &[Who::Sa("kube-system", "job-controller")]),
    cluster_binding("system:controller:namespace-controller", "system:controller:namespace-controller",
        &[Who::Sa("kube-system", "namespace-controller")]),
    cluster_binding("system:controller:node-controller", "system:controller:node-controller",
        &[Who::Sa("kube-system", "node-controller")]),
    cluster_binding("system:controller:persistent-volume-binder", "system:controller:persistent-volume-binder",
        &[Who::Sa("kube-system", "persistent-volume-binder")]),
    cluster_binding("system:controller:pod-garbage-collector", "system:controller:pod-garbage-collector",
        &[Who::Sa("kube-system", "pod-garbage-collector")]),
    cluster_binding("system:controller:replicaset-controller", "system:controller:replicaset-controller",
        &[Who::Sa("kube-system", "replicaset-controller")]),
    cluster_binding("system:controller:replication-controller", "system:controller:replication-controller",
        &[Who::Sa("kube-system", "replication-controller")]),
    cluster_binding("system:controller:statefulset-controller", "system:controller:statefulset-controller",
        &[Who::Sa("kube-system", "statefulset-controller")]),
    cluster_binding("system:controller:ttl-after-finished-controller", "system:controller:ttl-after-finished-controller",
        &[Who::Sa("kube-system", "ttl-after-finished-controller")]),
    cluster_binding("system:controller:service-account-controller", "system:controller:service-account-controller",
        &[Who::Sa("kube-system", "service-account-controller")]),
    cluster_binding("system:controller:root-ca-cert-publisher", "system:controller:root-ca-cert-publisher",
        &[Who::Sa("kube-system", "root-ca-cert-publisher")]),
    BindingDef {
        namespace: Some("kube-system"),
        name: "system::extension-apiserver-authentication-reader",
        role: ("Role", "extension-apiserver-authentication-reader"),
        subjects: &[
            Who::User("system:kube-controller-manager"),
            Who::User("system:kube-scheduler"),
        ],
    },
    BindingDef {
        namespace: Some("kube-system"),
        name: "system::leader-locking-kube-controller-manager",
        role: ("Role", "system::leader-locking-kube-controller-manager"),
        subjects: &[
            Who::User("system:kube-controller-manager"),
            Who::Sa("kube-system", "kube-controller-manager"),
        ],
    },
    BindingDef {
        namespace: Some("kube-system"),
        name: "system::leader-locking-kube-scheduler",
        role: ("Role", "system::leader-locking-kube-scheduler"),
        subjects: &[
            Who::User("system:kube-scheduler"),
            Who::Sa("kube-system", "kube-scheduler"),
        ],
    },
    BindingDef {
        namespace: Some("kube-system"),
        name: "system:controller:bootstrap-signer",
        role: ("Role", "system:controller:bootstrap-signer"),
        subjects: &[Who::Sa("kube-system", "bootstrap-signer")],
    },
    BindingDef {
        namespace: Some("kube-system"),
        name: "system:controller:cloud-provider",
        role: ("Role", "system:controller:cloud-provider"),
        subjects: &[Who::Sa("kube-system", "cloud-provider")],
    },
    BindingDef {
        namespace: Some("kube-system"),
        name: "system:controller:token-cleaner",
        role: ("Role", "system:controller:token-cleaner"),
        subjects: &[Who::Sa("kube-system", "token-cleaner")],
    },
    BindingDef {
        namespace: Some("kube-public"),
        name: "system:controller:bootstrap-signer",
        role: ("Role", "system:controller:bootstrap-signer"),
        subjects: &[Who::Sa("kube-system", "bootstrap-signer")],
    },
];

fn metadata(namespace: Option<&str>, name: &str, extra_labels: &[&str]) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for l in extra_labels {
        labels.insert(l.to_string(), json!("true"));
    }
    let mut meta = json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

/// Subjects older skiff versions bound that the policy no longer grants:
/// (ClusterRoleBinding, subject kind, subject name). Reconciling removes
/// them (the node authorizer now decides for `system:nodes`).
pub const RETIRED_SUBJECTS: &[(&str, &str, &str)] = &[("system:node", "Group", "system:nodes")];

/// The static rules of the node authorizer (upstream's `NodeRules`): the
/// `system:node` ClusterRole's.
pub fn node_rules() -> Vec<Rule> {
    ROLES
        .iter()
        .find(|r| r.namespace.is_none() && r.name == "system:node")
        .map(RoleDef::rules)
        .unwrap_or_default()
}

impl RoleDef {
    pub fn rules(&self) -> Vec<Rule> {
        self.rules.iter().map(R::rule).collect()
    }

    /// The object as it is created.
    pub fn object(&self) -> Value {
        let kind = if self.namespace.is_some() {
            "Role"
        } else {
            "ClusterRole"
        };
        let mut obj = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": metadata(self.namespace, self.name, self.labels),
            "rules": self.rules(),
        });
        if !self.aggregate_from.is_empty() {
            let selectors: Vec<Value> = self
                .aggregate_from
                .iter()
                .map(|l| json!({"matchLabels": {*l: "true"}}))
                .collect();
            obj["aggregationRule"] = json!({"clusterRoleSelectors": selectors});
        }
        obj
    }
}

impl Who {
    pub fn subject(&self) -> Value {
        match self {
            Who::User(name) => {
                json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name})
            }
            Who::Group(name) => {
                json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name})
            }
            Who::Sa(ns, name) => json!({"kind": "ServiceAccount", "name": name, "namespace": ns}),
        }
    }
}

impl BindingDef {
    /// The object as it is created.
    pub fn object(&self) -> Value {
        let kind = if self.namespace.is_some() {
            "RoleBinding"
        } else {
            "ClusterRoleBinding"
        };
        let subjects: Vec<Value> = self.subjects.iter().map(Who::subject).collect();
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": metadata(self.namespace, self.name, &[]),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": self.role.0, "name": self.role.1},
            "subjects": subjects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binding_refers_to_a_bootstrap_role() {
        for b in BINDINGS {
            let found = ROLES.iter().any(|r| {
                r.name == b.role.1
                    && match b.role.0 {
                        "ClusterRole" => r.namespace.is_none(),
                        _ => r.namespace == b.namespace,
                    }
            });
            assert!(found, "{} refers to missing {:?}", b.name, b.role);
        }
    }

    #[test]
    fn names_are_unique_per_kind_and_namespace() {
        let mut seen = std::collections::HashSet::new();
        for r in ROLES {
            assert!(seen.insert((r.namespace, r.name, "role")), "{}", r.name);
        }
        for b in BINDINGS {
            assert!(seen.insert((b.namespace, b.name, "binding")), "{}", b.name);
        }
    }

    #[test]
    fn objects_carry_the_bootstrap_label_and_autoupdate_annotation() {
        let view = ROLES.iter().find(|r| r.name == "view").map(RoleDef::object);
        let Some(view) = view else {
            panic!("view missing")
        };
        assert_eq!(
            view["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        assert_eq!(
            view["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
            "true"
        );
        assert_eq!(
            view["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"][AGG_VIEW],
            "true"
        );
    }
}
