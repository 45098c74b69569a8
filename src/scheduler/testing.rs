//! Hand-built nodes, pods and caches for the scheduler's unit tests.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::algorithm::{Context, find_node};
use super::cache::{Cache, PodInfo};

/// A Ready node with 2 CPUs, 4Gi and room for 10 pods, labelled with its
/// hostname and `labels`.
pub fn node(name: &str, labels: Value) -> Node {
    let mut n = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    });
    json_patch::merge(&mut n, &json!({"metadata": {"labels": labels}}));
    serde_json::from_value(n).expect("node")
}

/// A pod `name` in `default` with `labels`, merged with `extra`.
pub fn pod(name: &str, labels: Value, extra: Value) -> Pod {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    });
    json_patch::merge(&mut p, &extra);
    serde_json::from_value(p).expect("pod")
}

/// `pod` bound to `node`.
pub fn on(mut pod: Pod, node: &str) -> Pod {
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node.to_string());
    }
    pod
}

/// A cache holding `nodes` and `pods`.
pub fn cache(nodes: &[Node], pods: &[Pod]) -> Cache {
    let mut cache = Cache::default();
    for n in nodes {
        cache.set_node(Arc::new(n.clone()));
    }
    for p in pods {
        cache.update_pod(Arc::new(p.clone()));
    }
    cache
}

/// The pod's info.
pub fn info(pod: &Pod) -> Arc<PodInfo> {
    PodInfo::new(Arc::new(pod.clone()))
}

/// Where `pod` goes, or the FailedScheduling text without preemption.
pub fn decide(pod: &Pod, cache: &Cache, ctx: &Context) -> Result<String, String> {
    find_node(&info(pod), cache, ctx).map_err(|d| d.message(""))
}

/// Requests for the single container.
pub fn requests(cpu: &str) -> Value {
    json!({"spec": {"containers": [{"name": "c", "image": "busybox",
        "resources": {"requests": {"cpu": cpu}}}]}})
}
