//! The protobuf messages this server decodes: for each, its fields' numbers,
//! JSON names and types, as upstream's `generated.proto` defines them.
//! Only what kubectl's typed commands send is listed; extending coverage is
//! adding rows.

/// The JSON form of one field's type.
#[derive(Clone, Copy)]
pub enum Ty {
    Str,
    Int,
    Bool,
    /// Bytes, as base64 in JSON.
    Bytes,
    Msg(&'static Message),
    /// `metav1.Time`: seconds and nanos, as RFC 3339 in JSON.
    Time,
    /// `resource.Quantity` and other single-string wrappers.
    Quantity,
    IntOrString,
    /// A status sent with a create: not decoded (the server resets status
    /// on create), answered as an empty object.
    Ignored,
    MapStr,
    MapBytes,
    MapQuantity,
    /// An embedded Go struct (`json:",inline"`): its fields are the
    /// parent's in JSON.
    Inline(&'static Message),
}

pub struct Field {
    pub tag: u64,
    pub name: &'static str,
    pub ty: Ty,
    pub repeated: bool,
    /// A plain (non-pointer) Go field with `omitempty`: always on the wire,
    /// left out of JSON when zero or false.
    pub omit_zero: bool,
}

pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

const fn f(tag: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        name,
        ty,
        repeated: false,
        omit_zero: false,
    }
}

const fn r(tag: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        repeated: true,
        ..f(tag, name, ty)
    }
}

const fn z(tag: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        omit_zero: true,
        ..f(tag, name, ty)
    }
}

use Ty::{Bool, Int, IntOrString, MapBytes, MapQuantity, MapStr, Msg, Str, Time};

static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        f(1, "kind", Str),
        f(3, "name", Str),
        f(4, "uid", Str),
        f(5, "apiVersion", Str),
        f(6, "controller", Bool),
        f(7, "blockOwnerDeletion", Bool),
    ],
};
static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", Str),
        f(2, "generateName", Str),
        f(3, "namespace", Str),
        f(4, "selfLink", Str),
        f(5, "uid", Str),
        f(6, "resourceVersion", Str),
        z(7, "generation", Int),
        f(8, "creationTimestamp", Time),
        f(9, "deletionTimestamp", Time),
        f(10, "deletionGracePeriodSeconds", Int),
        f(11, "labels", MapStr),
        f(12, "annotations", MapStr),
        r(13, "ownerReferences", Msg(&OWNER_REFERENCE)),
        r(14, "finalizers", Str),
    ],
};
static META: Ty = Msg(&OBJECT_META);
static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        f(1, "metadata", META),
        f(2, "data", MapStr),
        f(3, "binaryData", MapBytes),
        f(4, "immutable", Bool),
    ],
};
static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        f(1, "metadata", META),
        f(2, "data", MapBytes),
        f(3, "type", Str),
        f(4, "stringData", MapStr),
        f(5, "immutable", Bool),
    ],
};
static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[r(1, "finalizers", Str)],
};
static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[f(1, "phase", Str)],
};
static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&NAMESPACE_SPEC)),
        f(3, "status", Msg(&NAMESPACE_STATUS)),
    ],
};
static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        f(1, "kind", Str),
        f(2, "namespace", Str),
        f(3, "name", Str),
        f(4, "uid", Str),
        f(5, "apiVersion", Str),
        f(6, "resourceVersion", Str),
        f(7, "fieldPath", Str),
    ],
};
static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[f(1, "name", Str)],
};
static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        f(1, "metadata", META),
        r(2, "secrets", Msg(&OBJECT_REFERENCE)),
        r(3, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        f(4, "automountServiceAccountToken", Bool),
    ],
};
static PRECONDITIONS: Message = Message {
    name: "Preconditions",
    fields: &[f(1, "uid", Str), f(2, "resourceVersion", Str)],
};
static DELETE_OPTIONS: Message = Message {
    name: "DeleteOptions",
    fields: &[
        f(1, "gracePeriodSeconds", Int),
        f(2, "preconditions", Msg(&PRECONDITIONS)),
        f(3, "orphanDependents", Bool),
        f(4, "propagationPolicy", Str),
        r(5, "dryRun", Str),
    ],
};
static EVICTION: Message = Message {
    name: "Eviction",
    fields: &[
        f(1, "metadata", META),
        f(2, "deleteOptions", Msg(&DELETE_OPTIONS)),
    ],
};
static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[f(1, "key", Str), f(2, "operator", Str), r(3, "values", Str)],
};
static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[
        f(1, "matchLabels", MapStr),
        r(2, "matchExpressions", Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};
static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        f(1, "name", Str),
        z(2, "hostPort", Int),
        f(3, "containerPort", Int),
        f(4, "protocol", Str),
        f(5, "hostIP", Str),
    ],
};
static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[f(1, "name", Str), f(2, "value", Str)],
};
static RESOURCES: Message = Message {
    name: "ResourceRequirements",
    fields: &[f(1, "limits", MapQuantity), f(2, "requests", MapQuantity)],
};
static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        f(1, "name", Str),
        f(2, "image", Str),
        r(3, "command", Str),
        r(4, "args", Str),
        f(5, "workingDir", Str),
        r(6, "ports", Msg(&CONTAINER_PORT)),
        r(7, "env", Msg(&ENV_VAR)),
        f(8, "resources", Msg(&RESOURCES)),
        f(13, "terminationMessagePath", Str),
        f(14, "imagePullPolicy", Str),
        z(16, "stdin", Bool),
        z(17, "stdinOnce", Bool),
        z(18, "tty", Bool),
        f(20, "terminationMessagePolicy", Str),
    ],
};
static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        r(2, "containers", Msg(&CONTAINER)),
        f(3, "restartPolicy", Str),
        f(4, "terminationGracePeriodSeconds", Int),
        f(5, "activeDeadlineSeconds", Int),
        f(6, "dnsPolicy", Str),
        f(7, "nodeSelector", MapStr),
        f(8, "serviceAccountName", Str),
        f(9, "serviceAccount", Str),
        f(10, "nodeName", Str),
        z(11, "hostNetwork", Bool),
        z(12, "hostPID", Bool),
        z(13, "hostIPC", Bool),
        r(15, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", Str),
        f(17, "subdomain", Str),
        f(19, "schedulerName", Str),
        r(20, "initContainers", Msg(&CONTAINER)),
        f(21, "automountServiceAccountToken", Bool),
        f(24, "priorityClassName", Str),
        f(25, "priority", Int),
        f(27, "shareProcessNamespace", Bool),
        f(29, "runtimeClassName", Str),
        f(30, "enableServiceLinks", Bool),
        f(31, "preemptionPolicy", Str),
        f(35, "setHostnameAsFQDN", Bool),
        f(37, "hostUsers", Bool),
    ],
};
static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[f(1, "metadata", META), f(2, "spec", Msg(&POD_SPEC))],
};
static POD: Message = Message {
    name: "Pod",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&POD_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static ROLLING_UPDATE: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[
        f(1, "maxUnavailable", IntOrString),
        f(2, "maxSurge", IntOrString),
    ],
};
static DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[
        f(1, "type", Str),
        f(2, "rollingUpdate", Msg(&ROLLING_UPDATE)),
    ],
};
static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        f(1, "replicas", Int),
        f(2, "selector", Msg(&LABEL_SELECTOR)),
        f(3, "template", Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Msg(&DEPLOYMENT_STRATEGY)),
        z(5, "minReadySeconds", Int),
        f(6, "revisionHistoryLimit", Int),
        z(7, "paused", Bool),
        f(9, "progressDeadlineSeconds", Int),
    ],
};
static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static SERVICE_PORT: Message = Message {
    name: "ServicePort",
    fields: &[
        f(1, "name", Str),
        f(2, "protocol", Str),
        f(3, "port", Int),
        f(4, "targetPort", IntOrString),
        z(5, "nodePort", Int),
        f(6, "appProtocol", Str),
    ],
};
static SERVICE_SPEC: Message = Message {
    name: "ServiceSpec",
    fields: &[
        r(1, "ports", Msg(&SERVICE_PORT)),
        f(2, "selector", MapStr),
        f(3, "clusterIP", Str),
        f(4, "type", Str),
        r(5, "externalIPs", Str),
        f(7, "sessionAffinity", Str),
        f(8, "loadBalancerIP", Str),
        r(9, "loadBalancerSourceRanges", Str),
        f(10, "externalName", Str),
        f(11, "externalTrafficPolicy", Str),
        z(12, "healthCheckNodePort", Int),
        z(13, "publishNotReadyAddresses", Bool),
        f(17, "ipFamilyPolicy", Str),
        r(18, "clusterIPs", Str),
        r(19, "ipFamilies", Str),
        f(20, "allocateLoadBalancerNodePorts", Bool),
        f(21, "loadBalancerClass", Str),
        f(22, "internalTrafficPolicy", Str),
        f(23, "trafficDistribution", Str),
    ],
};
static SERVICE: Message = Message {
    name: "Service",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&SERVICE_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};

static JOB_SPEC: Message = Message {
    name: "JobSpec",
    fields: &[
        f(1, "parallelism", Int),
        f(2, "completions", Int),
        f(3, "activeDeadlineSeconds", Int),
        f(4, "selector", Msg(&LABEL_SELECTOR)),
        f(5, "manualSelector", Bool),
        f(6, "template", Msg(&POD_TEMPLATE_SPEC)),
        f(7, "backoffLimit", Int),
        f(8, "ttlSecondsAfterFinished", Int),
        f(9, "completionMode", Str),
        f(10, "suspend", Bool),
        f(12, "backoffLimitPerIndex", Int),
        f(13, "maxFailedIndexes", Int),
        f(14, "podReplacementPolicy", Str),
        f(15, "managedBy", Str),
    ],
};
static JOB: Message = Message {
    name: "Job",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&JOB_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static JOB_TEMPLATE_SPEC: Message = Message {
    name: "JobTemplateSpec",
    fields: &[f(1, "metadata", META), f(2, "spec", Msg(&JOB_SPEC))],
};
static CRON_JOB_SPEC: Message = Message {
    name: "CronJobSpec",
    fields: &[
        f(1, "schedule", Str),
        f(2, "startingDeadlineSeconds", Int),
        f(3, "concurrencyPolicy", Str),
        f(4, "suspend", Bool),
        f(5, "jobTemplate", Msg(&JOB_TEMPLATE_SPEC)),
        f(6, "successfulJobsHistoryLimit", Int),
        f(7, "failedJobsHistoryLimit", Int),
        f(8, "timeZone", Str),
    ],
};
static CRON_JOB: Message = Message {
    name: "CronJob",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&CRON_JOB_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static POLICY_RULE: Message = Message {
    name: "PolicyRule",
    fields: &[
        r(1, "verbs", Str),
        r(2, "apiGroups", Str),
        r(3, "resources", Str),
        r(4, "resourceNames", Str),
        r(5, "nonResourceURLs", Str),
    ],
};
static AGGREGATION_RULE: Message = Message {
    name: "AggregationRule",
    fields: &[r(1, "clusterRoleSelectors", Msg(&LABEL_SELECTOR))],
};
static ROLE: Message = Message {
    name: "Role",
    fields: &[
        f(1, "metadata", META),
        r(2, "rules", Msg(&POLICY_RULE)),
        f(3, "aggregationRule", Msg(&AGGREGATION_RULE)),
    ],
};
static SUBJECT: Message = Message {
    name: "Subject",
    fields: &[
        f(1, "kind", Str),
        f(2, "apiGroup", Str),
        f(3, "name", Str),
        f(4, "namespace", Str),
    ],
};
static ROLE_REF: Message = Message {
    name: "RoleRef",
    fields: &[f(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)],
};
static ROLE_BINDING: Message = Message {
    name: "RoleBinding",
    fields: &[
        f(1, "metadata", META),
        r(2, "subjects", Msg(&SUBJECT)),
        f(3, "roleRef", Msg(&ROLE_REF)),
    ],
};
static PDB_SPEC: Message = Message {
    name: "PodDisruptionBudgetSpec",
    fields: &[
        f(1, "minAvailable", IntOrString),
        f(2, "selector", Msg(&LABEL_SELECTOR)),
        f(3, "maxUnavailable", IntOrString),
        f(4, "unhealthyPodEvictionPolicy", Str),
    ],
};
static PDB: Message = Message {
    name: "PodDisruptionBudget",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&PDB_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static PRIORITY_CLASS: Message = Message {
    name: "PriorityClass",
    fields: &[
        f(1, "metadata", META),
        f(2, "value", Int),
        z(3, "globalDefault", Bool),
        f(4, "description", Str),
        f(5, "preemptionPolicy", Str),
    ],
};
static RESOURCE_QUOTA_SPEC: Message = Message {
    name: "ResourceQuotaSpec",
    fields: &[f(1, "hard", MapQuantity), r(2, "scopes", Str)],
};
static RESOURCE_QUOTA: Message = Message {
    name: "ResourceQuota",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&RESOURCE_QUOTA_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};

static TYPED_LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "TypedLocalObjectReference",
    fields: &[f(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)],
};
static SERVICE_BACKEND_PORT: Message = Message {
    name: "ServiceBackendPort",
    fields: &[z(1, "name", Str), z(2, "number", Int)],
};
static INGRESS_SERVICE_BACKEND: Message = Message {
    name: "IngressServiceBackend",
    fields: &[f(1, "name", Str), f(2, "port", Msg(&SERVICE_BACKEND_PORT))],
};
static INGRESS_BACKEND: Message = Message {
    name: "IngressBackend",
    fields: &[
        f(3, "resource", Msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
        f(4, "service", Msg(&INGRESS_SERVICE_BACKEND)),
    ],
};
static HTTP_INGRESS_PATH: Message = Message {
    name: "HTTPIngressPath",
    fields: &[
        z(1, "path", Str),
        f(2, "backend", Msg(&INGRESS_BACKEND)),
        f(3, "pathType", Str),
    ],
};
static HTTP_INGRESS_RULE_VALUE: Message = Message {
    name: "HTTPIngressRuleValue",
    fields: &[r(1, "paths", Msg(&HTTP_INGRESS_PATH))],
};
static INGRESS_RULE_VALUE: Message = Message {
    name: "IngressRuleValue",
    fields: &[f(1, "http", Msg(&HTTP_INGRESS_RULE_VALUE))],
};
static INGRESS_RULE: Message = Message {
    name: "IngressRule",
    fields: &[z(1, "host", Str), f(2, "", Ty::Inline(&INGRESS_RULE_VALUE))],
};
static INGRESS_TLS: Message = Message {
    name: "IngressTLS",
    fields: &[r(1, "hosts", Str), z(2, "secretName", Str)],
};
static INGRESS_SPEC: Message = Message {
    name: "IngressSpec",
    fields: &[
        f(1, "defaultBackend", Msg(&INGRESS_BACKEND)),
        r(2, "tls", Msg(&INGRESS_TLS)),
        r(3, "rules", Msg(&INGRESS_RULE)),
        f(4, "ingressClassName", Str),
    ],
};
static INGRESS: Message = Message {
    name: "Ingress",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&INGRESS_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static CROSS_VERSION_OBJECT_REFERENCE: Message = Message {
    name: "CrossVersionObjectReference",
    fields: &[
        f(1, "kind", Str),
        f(2, "name", Str),
        z(3, "apiVersion", Str),
    ],
};
static HPA_V1_SPEC: Message = Message {
    name: "HorizontalPodAutoscalerSpec",
    fields: &[
        f(1, "scaleTargetRef", Msg(&CROSS_VERSION_OBJECT_REFERENCE)),
        f(2, "minReplicas", Int),
        f(3, "maxReplicas", Int),
        f(4, "targetCPUUtilizationPercentage", Int),
    ],
};
static HPA_V1: Message = Message {
    name: "HorizontalPodAutoscaler",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&HPA_V1_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static METRIC_TARGET: Message = Message {
    name: "MetricTarget",
    fields: &[
        f(1, "type", Str),
        f(2, "value", Ty::Quantity),
        f(3, "averageValue", Ty::Quantity),
        f(4, "averageUtilization", Int),
    ],
};
static METRIC_IDENTIFIER: Message = Message {
    name: "MetricIdentifier",
    fields: &[f(1, "name", Str), f(2, "selector", Msg(&LABEL_SELECTOR))],
};
static RESOURCE_METRIC_SOURCE: Message = Message {
    name: "ResourceMetricSource",
    fields: &[f(1, "name", Str), f(2, "target", Msg(&METRIC_TARGET))],
};
static CONTAINER_RESOURCE_METRIC_SOURCE: Message = Message {
    name: "ContainerResourceMetricSource",
    fields: &[
        f(1, "name", Str),
        f(2, "target", Msg(&METRIC_TARGET)),
        f(3, "container", Str),
    ],
};
static PODS_METRIC_SOURCE: Message = Message {
    name: "PodsMetricSource",
    fields: &[
        f(1, "metric", Msg(&METRIC_IDENTIFIER)),
        f(2, "target", Msg(&METRIC_TARGET)),
    ],
};
static EXTERNAL_METRIC_SOURCE: Message = Message {
    name: "ExternalMetricSource",
    fields: &[
        f(1, "metric", Msg(&METRIC_IDENTIFIER)),
        f(2, "target", Msg(&METRIC_TARGET)),
    ],
};
static OBJECT_METRIC_SOURCE: Message = Message {
    name: "ObjectMetricSource",
    fields: &[
        f(1, "describedObject", Msg(&CROSS_VERSION_OBJECT_REFERENCE)),
        f(2, "target", Msg(&METRIC_TARGET)),
        f(3, "metric", Msg(&METRIC_IDENTIFIER)),
    ],
};
static METRIC_SPEC: Message = Message {
    name: "MetricSpec",
    fields: &[
        f(1, "type", Str),
        f(2, "object", Msg(&OBJECT_METRIC_SOURCE)),
        f(3, "pods", Msg(&PODS_METRIC_SOURCE)),
        f(4, "resource", Msg(&RESOURCE_METRIC_SOURCE)),
        f(5, "external", Msg(&EXTERNAL_METRIC_SOURCE)),
        f(
            7,
            "containerResource",
            Msg(&CONTAINER_RESOURCE_METRIC_SOURCE),
        ),
    ],
};
static HPA_V2_SPEC: Message = Message {
    name: "HorizontalPodAutoscalerSpec",
    fields: &[
        f(1, "scaleTargetRef", Msg(&CROSS_VERSION_OBJECT_REFERENCE)),
        f(2, "minReplicas", Int),
        f(3, "maxReplicas", Int),
        r(4, "metrics", Msg(&METRIC_SPEC)),
    ],
};
static HPA_V2: Message = Message {
    name: "HorizontalPodAutoscaler",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&HPA_V2_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static BOUND_OBJECT_REFERENCE: Message = Message {
    name: "BoundObjectReference",
    fields: &[
        f(1, "kind", Str),
        f(2, "apiVersion", Str),
        f(3, "name", Str),
        f(4, "uid", Str),
    ],
};
static TOKEN_REQUEST_SPEC: Message = Message {
    name: "TokenRequestSpec",
    fields: &[
        r(1, "audiences", Str),
        f(3, "boundObjectRef", Msg(&BOUND_OBJECT_REFERENCE)),
        f(4, "expirationSeconds", Int),
    ],
};
static TOKEN_REQUEST: Message = Message {
    name: "TokenRequest",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&TOKEN_REQUEST_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static RESOURCE_ATTRIBUTES: Message = Message {
    name: "ResourceAttributes",
    fields: &[
        f(1, "namespace", Str),
        f(2, "verb", Str),
        f(3, "group", Str),
        f(4, "version", Str),
        f(5, "resource", Str),
        f(6, "subresource", Str),
        f(7, "name", Str),
    ],
};
static NON_RESOURCE_ATTRIBUTES: Message = Message {
    name: "NonResourceAttributes",
    fields: &[f(1, "path", Str), f(2, "verb", Str)],
};
static SUBJECT_ACCESS_REVIEW_SPEC: Message = Message {
    name: "SubjectAccessReviewSpec",
    fields: &[
        f(1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        f(2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
        f(3, "user", Str),
        r(4, "groups", Str),
        f(6, "uid", Str),
    ],
};
static SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "SubjectAccessReview",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&SUBJECT_ACCESS_REVIEW_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = Message {
    name: "SelfSubjectAccessReviewSpec",
    fields: &[
        f(1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        f(2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
    ],
};
static SELF_SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "SelfSubjectAccessReview",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static SELF_SUBJECT_RULES_REVIEW_SPEC: Message = Message {
    name: "SelfSubjectRulesReviewSpec",
    fields: &[f(1, "namespace", Str)],
};
static SELF_SUBJECT_RULES_REVIEW: Message = Message {
    name: "SelfSubjectRulesReview",
    fields: &[
        f(1, "metadata", META),
        f(2, "spec", Msg(&SELF_SUBJECT_RULES_REVIEW_SPEC)),
        f(3, "status", Ty::Ignored),
    ],
};
static SELF_SUBJECT_REVIEW: Message = Message {
    name: "SelfSubjectReview",
    fields: &[f(1, "metadata", META), f(2, "status", Ty::Ignored)],
};

/// The top-level messages this server decodes, by apiVersion and kind.
pub fn message_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    Some(match (api_version, kind) {
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "Secret") => &SECRET,
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("v1", "Pod") => &POD,
        ("v1", "Service") => &SERVICE,
        ("apps/v1", "Deployment") => &DEPLOYMENT,
        ("v1", "ResourceQuota") => &RESOURCE_QUOTA,
        ("batch/v1", "Job") => &JOB,
        ("batch/v1", "CronJob") => &CRON_JOB,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => &ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => &ROLE_BINDING,
        ("policy/v1", "PodDisruptionBudget") => &PDB,
        ("scheduling.k8s.io/v1", "PriorityClass") => &PRIORITY_CLASS,
        ("policy/v1", "Eviction") => &EVICTION,
        ("authentication.k8s.io/v1", "TokenRequest") => &TOKEN_REQUEST,
        ("networking.k8s.io/v1", "Ingress") => &INGRESS,
        ("autoscaling/v1", "HorizontalPodAutoscaler") => &HPA_V1,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => &HPA_V2,
        ("authorization.k8s.io/v1", "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            &SUBJECT_ACCESS_REVIEW
        }
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => &SELF_SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => &SELF_SUBJECT_RULES_REVIEW,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => &SELF_SUBJECT_REVIEW,
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => &DELETE_OPTIONS,
        _ => return None,
    })
}
