//! Adopting orphan pods, as upstream's `ControllerRefManager`: a pod with no
//! controller that a workload's selector matches becomes that workload's
//! (a merge patch adding the controller reference, guarded by the pod's
//! uid so a pod recreated under the same name is not taken by mistake).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::{controller_of, selects};
use crate::workqueue;

/// The work-queue key of an object.
pub fn key_of(meta: &ObjectMeta) -> String {
    workqueue::key(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The key of the `kind` object controlling `meta`, if one does.
pub fn owner_key(kind: &str, meta: &ObjectMeta) -> Option<String> {
    let owner = controller_of(meta.owner_references.as_ref())?;
    (owner.kind == kind)
        .then(|| workqueue::key(meta.namespace.as_deref().unwrap_or_default(), &owner.name))
}

/// The keys to queue for a pod change: its `kind` controller's, or for an
/// orphan those of every `owners` object in its namespace whose selector
/// selects it (it may be adopted).
pub fn keys_for_pod<K>(
    kind: &str,
    pod: &Pod,
    owners: &[Arc<K>],
    meta: impl Fn(&K) -> &ObjectMeta,
    selector: impl Fn(&K) -> Option<&LabelSelector>,
) -> Vec<String> {
    if controller_of(pod.metadata.owner_references.as_ref()).is_some() {
        return owner_key(kind, &pod.metadata).into_iter().collect();
    }
    let namespace = pod.metadata.namespace.as_deref();
    owners
        .iter()
        .filter(|o| meta(o).namespace.as_deref() == namespace)
        .filter(|o| selector(o).is_some_and(|s| selects(s, pod.metadata.labels.as_ref())))
        .map(|o| key_of(meta(o)))
        .collect()
}

/// The pods in `namespace` without a controller that `selector` selects.
pub fn orphans(pods: &[Arc<Pod>], namespace: &str, selector: &LabelSelector) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| controller_of(p.metadata.owner_references.as_ref()).is_none())
        .filter(|p| selects(selector, p.metadata.labels.as_ref()))
        .cloned()
        .collect()
}

/// Makes `owner` the controller of `pod`; returns the adopted pod.
pub async fn adopt(client: &Client, pod: &Pod, owner: OwnerReference) -> Result<Pod, kube::Error> {
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(owner);
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, labels: serde_json::Value, owned: bool) -> Arc<Pod> {
        let owners = if owned {
            json!([{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u", "controller": true}])
        } else {
            json!([{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}])
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "labels": labels, "ownerReferences": owners},
            }))
            .expect("pod"),
        )
    }

    #[test]
    fn only_uncontrolled_matching_pods_are_orphans() {
        let selector: LabelSelector =
            serde_json::from_value(json!({"matchLabels": {"app": "a"}})).expect("selector");
        let pods = [
            pod("free", json!({"app": "a"}), false),
            pod("taken", json!({"app": "a"}), true),
            pod("other", json!({"app": "b"}), false),
        ];
        let names: Vec<_> = orphans(&pods, "ns", &selector)
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        assert_eq!(names, ["free"]);
        assert!(orphans(&pods, "elsewhere", &selector).is_empty());
    }
}
