//! Decoding `application/vnd.kubernetes.protobuf` request bodies into JSON.
//!
//! kubectl's typed commands (`create configmap|secret|namespace|
//! serviceaccount|deployment|job|cronjob|role|rolebinding|clusterrole|
//! clusterrolebinding|pdb|priorityclass|quota`, `run`, `expose`, `drain`'s
//! evictions) always send protobuf. A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope (type meta and the raw
//! object message). The raw message is decoded by a schema table of the
//! messages those commands send (field numbers and JSON names from
//! upstream's `generated.proto`); a field the table does not know is an
//! error rather than silently dropped. Extending coverage is adding rows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("the body is not a Kubernetes protobuf envelope")]
    NotEnvelope,
    #[error("truncated or malformed protobuf data")]
    Malformed,
    #[error("protobuf bodies of {0} are not supported by this server yet; send JSON")]
    UnknownKind(String),
    #[error("field {tag} of {message} is not supported by this server yet; send JSON")]
    UnknownField { message: &'static str, tag: u64 },
}

/// The JSON form of one field's type.
#[derive(Clone, Copy)]
enum Ty {
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
}

struct Field {
    tag: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
    /// A plain (non-pointer) Go field with `omitempty`: always on the wire,
    /// left out of JSON when zero or false.
    omit_zero: bool,
}

struct Message {
    name: &'static str,
    fields: &'static [Field],
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

use Ty::{Bool, Bytes, Int, IntOrString, MapBytes, MapQuantity, MapStr, Msg, Str, Time};

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

/// The top-level messages this server decodes, by apiVersion and kind.
fn message_for(api_version: &str, kind: &str) -> Option<&'static Message> {
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
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => &DELETE_OPTIONS,
        _ => return None,
    })
}

/// A cursor over protobuf wire data.
struct Reader<'a> {
    buf: &'a [u8],
}

/// One field as read from the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first().ok_or(ProtoError::Malformed)?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtoError::Malformed)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<Option<(u64, Wire<'a>)>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Malformed)?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            _ => return Err(ProtoError::Malformed),
        };
        Ok(Some((key >> 3, wire)))
    }
}

fn string(data: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(data.to_vec()).map_err(|_| ProtoError::Malformed)
}

/// A map entry: key (field 1) and raw value (field 2).
fn entry(data: &[u8]) -> Result<(String, Wire<'_>), ProtoError> {
    let mut r = Reader { buf: data };
    let (mut key, mut value) = (String::new(), Wire::Bytes(&[]));
    while let Some((tag, w)) = r.field()? {
        match (tag, w) {
            (1, Wire::Bytes(b)) => key = string(b)?,
            (2, w) => value = w,
            _ => return Err(ProtoError::Malformed),
        }
    }
    Ok((key, value))
}

fn time(data: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader { buf: data };
    let mut seconds = None;
    while let Some((tag, w)) = r.field()? {
        if let (1, Wire::Varint(v)) = (tag, w) {
            seconds = Some(v as i64);
        }
    }
    // A zero time is sent as an empty message; its JSON form is null.
    let Some(seconds) = seconds else {
        return Ok(Value::Null);
    };
    let t = jiff::Timestamp::from_second(seconds).map_err(|_| ProtoError::Malformed)?;
    Ok(json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn single_string(data: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader { buf: data };
    let mut out = String::new();
    while let Some((tag, w)) = r.field()? {
        if let (1, Wire::Bytes(b)) = (tag, w) {
            out = string(b)?;
        }
    }
    Ok(json!(out))
}

fn int_or_string(data: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader { buf: data };
    let (mut is_string, mut int, mut text) = (false, 0i64, String::new());
    while let Some((tag, w)) = r.field()? {
        match (tag, w) {
            (1, Wire::Varint(v)) => is_string = v == 1,
            (2, Wire::Varint(v)) => int = i64::from(v as i32),
            (3, Wire::Bytes(b)) => text = string(b)?,
            _ => {}
        }
    }
    Ok(if is_string { json!(text) } else { json!(int) })
}

fn value(ty: Ty, wire: Wire<'_>) -> Result<Value, ProtoError> {
    Ok(match (ty, wire) {
        (Str, Wire::Bytes(b)) => json!(string(b)?),
        (Bytes, Wire::Bytes(b)) => json!(B64.encode(b)),
        // int32 fields carry negative values sign-extended to 64 bits.
        (Int, Wire::Varint(v)) => json!(v as i64),
        (Bool, Wire::Varint(v)) => json!(v != 0),
        (Msg(m), Wire::Bytes(b)) => message(m, b)?,
        (Time, Wire::Bytes(b)) => time(b)?,
        (Ty::Quantity, Wire::Bytes(b)) => single_string(b)?,
        (IntOrString, Wire::Bytes(b)) => int_or_string(b)?,
        (Ty::Ignored, Wire::Bytes(_)) => json!({}),
        _ => return Err(ProtoError::Malformed),
    })
}

fn message(m: &'static Message, data: &[u8]) -> Result<Value, ProtoError> {
    let mut out = Map::new();
    let mut r = Reader { buf: data };
    while let Some((tag, wire)) = r.field()? {
        let field = m
            .fields
            .iter()
            .find(|f| f.tag == tag)
            .ok_or(ProtoError::UnknownField {
                message: m.name,
                tag,
            })?;
        let map_value = match field.ty {
            MapStr => Some(Str),
            MapBytes => Some(Bytes),
            MapQuantity => Some(Ty::Quantity),
            _ => None,
        };
        if let Some(vty) = map_value {
            let Wire::Bytes(b) = wire else {
                return Err(ProtoError::Malformed);
            };
            let (k, v) = entry(b)?;
            let slot = out.entry(field.name).or_insert_with(|| json!({}));
            if let Value::Object(map) = slot {
                map.insert(k, value(vty, v)?);
            }
        } else if field.repeated {
            let slot = out.entry(field.name).or_insert_with(|| json!([]));
            let packed_ints = matches!((field.ty, &wire), (Int | Bool, Wire::Bytes(_)));
            let items = if packed_ints {
                let Wire::Bytes(b) = wire else {
                    unreachable!("checked above")
                };
                let mut pr = Reader { buf: b };
                let mut items = Vec::new();
                while !pr.buf.is_empty() {
                    items.push(value(field.ty, Wire::Varint(pr.varint()?))?);
                }
                items
            } else {
                vec![value(field.ty, wire)?]
            };
            if let Value::Array(a) = slot {
                a.extend(items);
            }
        } else {
            // Go encodes unset plain strings as empty ones; its JSON omits them.
            match value(field.ty, wire)? {
                Value::String(s) if s.is_empty() => {}
                Value::Null => {}
                Value::Bool(false) if field.omit_zero => {}
                Value::Number(n) if field.omit_zero && n.as_i64() == Some(0) => {}
                v => {
                    out.insert(field.name.to_string(), v);
                }
            }
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let envelope = body.strip_prefix(b"k8s\0").ok_or(ProtoError::NotEnvelope)?;
    let mut r = Reader { buf: envelope };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((tag, wire)) = r.field()? {
        match (tag, wire) {
            (1, Wire::Bytes(type_meta)) => {
                let mut t = Reader { buf: type_meta };
                while let Some((tag, w)) = t.field()? {
                    match (tag, w) {
                        (1, Wire::Bytes(b)) => api_version = string(b)?,
                        (2, Wire::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let m = message_for(&api_version, &kind)
        .ok_or_else(|| ProtoError::UnknownKind(format!("{api_version} {kind}")))?;
    let mut obj = message(m, raw)?;
    if let Value::Object(map) = &mut obj {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body `kubectl create configmap a --from-literal=x=1` sends.
    const CONFIGMAP: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x1b\x0a\x11\x0a\x01a\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01x\x12\x011\x1a\x00\x22\x00";

    #[test]
    fn decodes_kubectls_configmap() {
        let Ok(obj) = decode(CONFIGMAP) else {
            panic!("decodes")
        };
        assert_eq!(obj["kind"], "ConfigMap");
        assert_eq!(obj["apiVersion"], "v1");
        assert_eq!(obj["metadata"]["name"], "a");
        assert_eq!(obj["data"], json!({"x": "1"}));
        assert_eq!(obj["metadata"].get("creationTimestamp"), None);
        assert_eq!(obj["metadata"].get("namespace"), None);
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert_eq!(decode(b"{}"), Err(ProtoError::NotEnvelope));
        assert!(decode(&CONFIGMAP[..30]).is_err());
        let unknown_kind = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Widget";
        assert!(matches!(
            decode(unknown_kind),
            Err(ProtoError::UnknownKind(_))
        ));
        // ConfigMap with a field 9 the table does not have.
        let unknown_field = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x02\x48\x01";
        assert!(matches!(
            decode(unknown_field),
            Err(ProtoError::UnknownField { tag: 9, .. })
        ));
    }

    #[test]
    fn wrapped_scalars_become_json_scalars() {
        // IntOrString: type=0, intVal=8080; Time: seconds=0.
        assert_eq!(
            int_or_string(b"\x08\x00\x10\x90\x3f").ok(),
            Some(json!(8080))
        );
        assert_eq!(
            int_or_string(b"\x08\x01\x1a\x04http").ok(),
            Some(json!("http"))
        );
        assert_eq!(time(b"\x08\x00").ok(), Some(json!("1970-01-01T00:00:00Z")));
        assert_eq!(time(b"").ok(), Some(Value::Null));
    }
}
