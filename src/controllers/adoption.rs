//! Adopting orphan pods, as upstream's `ControllerRefManager`: a pod with no
//! controller that a workload's selector matches becomes that workload's
//! (a merge patch adding the controller reference, guarded by the pod's
//! uid so a pod recreated under the same name is not taken by mistake).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::{controller_of, selects};

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
