//! `fieldValidation=Strict`: rejecting fields a kind does not have.
//!
//! The object is decoded into its k8s-openapi type and encoded again; the
//! types drop what they do not know, so whatever the client sent that did
//! not come back is an unknown field. (The full schema-based OpenAPI and
//! its validation are the next step; this is the honest subset kubectl's
//! `--validate=strict` needs.)

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Ctx;
use crate::api::status::ApiStatus;

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling_v2,
    batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;

fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// `obj` decoded and encoded through its typed form, or `None` for a kind
/// without one.
fn typed(group: &str, version: &str, kind: &str, obj: &Value) -> Option<Result<Value, String>> {
    macro_rules! types {
        ($(($g:literal, $v:literal, $k:literal) => $t:ty),* $(,)?) => {
            match (group, version, kind) {
                $(($g, $v, $k) => Some(round_trip::<$t>(obj)),)*
                _ => None,
            }
        };
    }
    types! {
        ("", "v1", "Namespace") => core::Namespace,
        ("", "v1", "Pod") => core::Pod,
        ("", "v1", "Service") => core::Service,
        ("", "v1", "Endpoints") => core::Endpoints,
        ("", "v1", "ConfigMap") => core::ConfigMap,
        ("", "v1", "Secret") => core::Secret,
        ("", "v1", "ServiceAccount") => core::ServiceAccount,
        ("", "v1", "Node") => core::Node,
        ("", "v1", "Event") => core::Event,
        ("", "v1", "PersistentVolume") => core::PersistentVolume,
        ("", "v1", "PersistentVolumeClaim") => core::PersistentVolumeClaim,
        ("", "v1", "LimitRange") => core::LimitRange,
        ("", "v1", "ResourceQuota") => core::ResourceQuota,
        ("", "v1", "ReplicationController") => core::ReplicationController,
        ("", "v1", "PodTemplate") => core::PodTemplate,
        ("apps", "v1", "Deployment") => apps::Deployment,
        ("apps", "v1", "ReplicaSet") => apps::ReplicaSet,
        ("apps", "v1", "StatefulSet") => apps::StatefulSet,
        ("apps", "v1", "DaemonSet") => apps::DaemonSet,
        ("apps", "v1", "ControllerRevision") => apps::ControllerRevision,
        ("batch", "v1", "Job") => batch::Job,
        ("batch", "v1", "CronJob") => batch::CronJob,
        ("coordination.k8s.io", "v1", "Lease") => coordination::Lease,
        ("discovery.k8s.io", "v1", "EndpointSlice") => discovery::EndpointSlice,
        ("events.k8s.io", "v1", "Event") => events::Event,
        ("networking.k8s.io", "v1", "Ingress") => networking::Ingress,
        ("networking.k8s.io", "v1", "IngressClass") => networking::IngressClass,
        ("networking.k8s.io", "v1", "NetworkPolicy") => networking::NetworkPolicy,
        ("policy", "v1", "PodDisruptionBudget") => policy::PodDisruptionBudget,
        ("rbac.authorization.k8s.io", "v1", "Role") => rbac::Role,
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => rbac::RoleBinding,
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => rbac::ClusterRole,
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => rbac::ClusterRoleBinding,
        ("storage.k8s.io", "v1", "StorageClass") => storage::StorageClass,
        ("scheduling.k8s.io", "v1", "PriorityClass") => scheduling::PriorityClass,
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => autoscaling_v1::HorizontalPodAutoscaler,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => autoscaling_v2::HorizontalPodAutoscaler,
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => apiextensions::CustomResourceDefinition,
    }
}

/// The paths of fields in `sent` that `kept` lacks.
fn unknown_fields(sent: &Value, kept: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, v) in s {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    _ if v.is_null() => {}
                    None => out.push(here),
                    Some(kv) => unknown_fields(v, kv, &here, out),
                }
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                unknown_fields(sv, kv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Under `fieldValidation=Strict`, rejects an object (in the form the client
/// sent it, before conversion) with unknown fields: 400 naming them.
pub fn check_strict(ctx: &Ctx, sent: &Value) -> Result<(), ApiStatus> {
    if ctx.query.get("fieldValidation") != Some("Strict") {
        return Ok(());
    }
    let kind = ctx.kind();
    let Some(result) = typed(kind.group, kind.version, kind.kind, sent)
        .or_else(|| crate::api::crd::pruned(kind, sent).map(Ok))
    else {
        return Ok(());
    };
    let kept = result.map_err(|e| ApiStatus::bad_request(format!("strict decoding error: {e}")))?;
    let mut unknown = Vec::new();
    unknown_fields(sent, &kept, "", &mut unknown);
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Err(ApiStatus::bad_request(format!(
        "strict decoding error: {}",
        list.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_round_trip_finds_unknown_fields() {
        let sent = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labelz": {}}, "data": {"k": "v"}, "extra": 1});
        let Some(Ok(kept)) = typed("", "v1", "ConfigMap", &sent) else {
            panic!("typed")
        };
        let mut unknown = Vec::new();
        unknown_fields(&sent, &kept, "", &mut unknown);
        assert_eq!(
            unknown,
            vec!["extra".to_string(), "metadata.labelz".to_string()]
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always", "bogus": true}]}});
        let Some(Ok(kept)) = typed("", "v1", "Pod", &pod) else {
            panic!("typed")
        };
        let mut unknown = Vec::new();
        unknown_fields(&pod, &kept, "", &mut unknown);
        assert_eq!(unknown, vec!["spec.containers[0].bogus".to_string()]);
    }
}
