//! The scheduler's view of the cluster, kept up to date from the pod and
//! node watches instead of re-reading every pod for every decision: per node,
//! its pods and what they add up to (requests, host ports, pods with
//! affinity), and per pod what the filters need, parsed once.
//!
//! A pod the scheduler has just bound is "assumed" on its node until the
//! watch shows it bound, so two pods never take the last free slot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::jiff::Timestamp;

use super::filters::{self, NodeUsage};
use super::interpod::PodAffinity;
use super::resources::Resources;

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// A pod with what the scheduler needs from it, computed once.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    pub namespace: String,
    pub requests: Resources,
    pub non_zero: Resources,
    pub host_ports: Vec<(String, String, i32)>,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    pub affinity: PodAffinity,
    /// When it started running; `None` not yet (counts as now).
    pub start_time: Option<Timestamp>,
}

impl PodInfo {
    /// Parses what the scheduler needs from `pod`.
    pub fn new(pod: Arc<Pod>) -> Arc<Self> {
        let spec = pod.spec.as_ref();
        Arc::new(PodInfo {
            key: super::pod_key(&pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            requests: Resources::requests(&pod),
            non_zero: Resources::non_zero_requests(&pod),
            host_ports: filters::host_ports(&pod),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            affinity: PodAffinity::of(&pod),
            start_time: pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0),
            pod,
        })
    }

    /// The pod's labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
    }

    /// Whether the pod is being deleted.
    pub fn terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    /// The node it is bound to, if any.
    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }
}

/// One node and what runs on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    /// `None` while only pods name the node (it is not, or no longer, known).
    pub node: Option<Arc<Node>>,
    pub allocatable: Resources,
    /// Spec taints plus the not-ready taint (see [`filters::effective_taints`]).
    pub taints: Vec<Taint>,
    /// Image sizes by normalised name (`status.images`).
    pub images: HashMap<String, i64>,
    pub usage: NodeUsage,
    pods: HashMap<String, Arc<PodInfo>>,
    /// Pods with any inter-pod affinity term.
    pub affinity_pods: usize,
    /// Pods with required anti-affinity terms.
    pub required_anti_pods: usize,
}

impl NodeInfo {
    /// A node with no pods yet.
    pub fn new(node: Arc<Node>) -> Self {
        let mut info = NodeInfo::empty(node.metadata.name.clone().unwrap_or_default());
        info.set_node(node);
        info
    }

    fn empty(name: String) -> Self {
        NodeInfo {
            name,
            node: None,
            allocatable: Resources::default(),
            taints: Vec::new(),
            images: HashMap::new(),
            usage: NodeUsage::default(),
            pods: HashMap::new(),
            affinity_pods: 0,
            required_anti_pods: 0,
        }
    }

    fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = Resources::allocatable(&node);
        self.taints = filters::effective_taints(&node);
        self.images = node
            .status
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|i| {
                let size = i.size_bytes.unwrap_or(0);
                i.names
                    .iter()
                    .flatten()
                    .map(move |n| (normalized_image(n), size))
            })
            .collect();
        self.node = Some(node);
    }

    /// The node's labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&NO_LABELS)
    }

    /// The pods on the node.
    pub fn pods(&self) -> impl Iterator<Item = &Arc<PodInfo>> {
        self.pods.values()
    }

    /// Counts `pod` on this node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        if let Some(old) = self.pods.remove(&pod.key) {
            self.forget(&old);
        }
        let u = &mut self.usage;
        u.requested = u.requested.plus(pod.requests);
        u.non_zero = u.non_zero.plus(pod.non_zero);
        u.pods += 1;
        u.host_ports.extend(pod.host_ports.iter().cloned());
        if pod.affinity.any() {
            self.affinity_pods += 1;
        }
        if !pod.affinity.required_anti.is_empty() {
            self.required_anti_pods += 1;
        }
        self.pods.insert(pod.key.clone(), pod);
    }

    /// Stops counting the pod `key`; what it was.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let old = self.pods.remove(key)?;
        self.forget(&old);
        Some(old)
    }

    fn forget(&mut self, pod: &PodInfo) {
        let u = &mut self.usage;
        u.requested = u.requested.minus(pod.requests);
        u.non_zero = u.non_zero.minus(pod.non_zero);
        u.pods -= 1;
        for port in &pod.host_ports {
            if let Some(i) = u.host_ports.iter().position(|p| p == port) {
                u.host_ports.swap_remove(i);
            }
        }
        if pod.affinity.any() {
            self.affinity_pods -= 1;
        }
        if !pod.affinity.required_anti.is_empty() {
            self.required_anti_pods -= 1;
        }
    }
}

/// An image name as ImageLocality compares them: `:latest` when untagged.
pub fn normalized_image(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Where a pod is counted.
#[derive(Debug, Clone)]
struct Placement {
    node: String,
    assumed: bool,
}

/// Every node and the pods bound (or assumed) on it, plus the pods waiting
/// for a node preemption freed for them (`status.nominatedNodeName`).
#[derive(Debug, Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeInfo>,
    placements: HashMap<String, Placement>,
    /// Pending pods nominated to a node: key → (node, pod).
    nominated: HashMap<String, (String, Arc<PodInfo>)>,
    /// How many nodes have each image.
    image_nodes: HashMap<String, usize>,
}

impl Cache {
    /// The known nodes, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values().filter(|n| n.node.is_some())
    }

    /// How many nodes are known.
    pub fn node_count(&self) -> usize {
        self.nodes().count()
    }

    /// The node `name`.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name).filter(|n| n.node.is_some())
    }

    /// How many nodes hold the (normalised) image.
    pub fn image_spread(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    /// Adds or replaces a node.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = self
            .nodes
            .entry(name.clone())
            .or_insert_with(|| NodeInfo::empty(name));
        for image in info.images.keys() {
            decrement(&mut self.image_nodes, image);
        }
        info.set_node(node);
        for image in info.images.keys() {
            *self.image_nodes.entry(image.clone()).or_default() += 1;
        }
    }

    /// Forgets a node (its pods stay counted until they go).
    pub fn remove_node(&mut self, name: &str) {
        let Some(info) = self.nodes.get_mut(name) else {
            return;
        };
        for image in info.images.keys() {
            decrement(&mut self.image_nodes, image);
        }
        info.images.clear();
        info.node = None;
        if info.pods.is_empty() {
            self.nodes.remove(name);
        }
    }

    /// Takes in a pod as the watch shows it.
    pub fn update_pod(&mut self, pod: Arc<Pod>) {
        let key = super::pod_key(&pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        match node {
            Some(node) if !super::is_terminal(&pod) => {
                self.nominated.remove(&key);
                self.place(PodInfo::new(pod), node, false);
            }
            Some(_) => self.remove_pod(&key),
            None => {
                // An assumed pod stays assumed until the watch shows it bound.
                if !self.placements.get(&key).is_some_and(|p| p.assumed) {
                    self.remove_pod(&key);
                }
                let nominated = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.nominated_node_name.clone())
                    .filter(|n| !n.is_empty());
                match nominated {
                    Some(n) if pod.metadata.deletion_timestamp.is_none() => {
                        self.nominated.insert(key, (n, PodInfo::new(pod)));
                    }
                    _ => {
                        self.nominated.remove(&key);
                    }
                }
            }
        }
    }

    /// Forgets a pod that is gone.
    pub fn remove_pod(&mut self, key: &str) {
        self.nominated.remove(key);
        if let Some(p) = self.placements.remove(key)
            && let Some(info) = self.nodes.get_mut(&p.node)
        {
            info.remove_pod(key);
            if info.node.is_none() && info.pods.is_empty() {
                self.nodes.remove(&p.node);
            }
        }
    }

    /// Counts `pod` on `node` before the watch shows the binding.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        if self.placements.contains_key(&pod.key) {
            return;
        }
        self.nominated.remove(&pod.key);
        self.place(pod, node.to_string(), true);
    }

    /// Undoes [`Cache::assume`] (the binding failed).
    pub fn forget_assumed(&mut self, key: &str) {
        if self.placements.get(key).is_some_and(|p| p.assumed) {
            self.remove_pod(key);
        }
    }

    /// Whether the pod is counted on a node (bound or assumed).
    pub fn is_placed(&self, key: &str) -> bool {
        self.placements.contains_key(key)
    }

    /// Records that preemption freed `node` for `pod`.
    pub fn nominate(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.nominated
            .insert(pod.key.clone(), (node.to_string(), pod));
    }

    /// Pods nominated to `node`, other than `except`.
    pub fn nominated_on<'a>(
        &'a self,
        node: &'a str,
        except: &'a str,
    ) -> impl Iterator<Item = &'a Arc<PodInfo>> {
        self.nominated
            .iter()
            .filter(move |(k, (n, _))| n == node && k.as_str() != except)
            .map(|(_, (_, p))| p)
    }

    fn place(&mut self, pod: Arc<PodInfo>, node: String, assumed: bool) {
        if let Some(old) = self.placements.get(&pod.key)
            && old.node != node
        {
            let key = pod.key.clone();
            self.remove_pod(&key);
        }
        self.placements.insert(
            pod.key.clone(),
            Placement {
                node: node.clone(),
                assumed,
            },
        );
        self.nodes
            .entry(node.clone())
            .or_insert_with(|| NodeInfo::empty(node))
            .add_pod(pod);
    }

    /// Starts over from full lists (after the watch lagged).
    pub fn rebuild(&mut self, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) {
        let assumed: Vec<(String, Arc<PodInfo>)> = self
            .placements
            .iter()
            .filter(|(_, p)| p.assumed)
            .filter_map(|(k, p)| {
                let info = self.nodes.get(&p.node)?.pods.get(k)?.clone();
                Some((p.node.clone(), info))
            })
            .collect();
        let listed: std::collections::HashSet<String> =
            pods.iter().map(|p| super::pod_key(p)).collect();
        *self = Cache::default();
        for node in nodes {
            self.set_node(node.clone());
        }
        for pod in pods {
            self.update_pod(pod.clone());
        }
        for (node, info) in assumed {
            if listed.contains(&info.key) {
                self.assume(info, &node);
            }
        }
    }
}

fn decrement(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scheduler::testing::{info, node, on, pod, requests};

    fn used(cache: &Cache, node: &str) -> (i128, i128) {
        let n = cache.node(node).expect("node");
        (n.usage.pods, n.usage.requested.cpu_milli)
    }

    #[test]
    fn bound_pods_add_up_and_leave_when_finished_or_deleted() {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node("n0", json!({}))));
        let p = on(pod("a", json!({}), requests("250m")), "n0");
        cache.update_pod(Arc::new(p.clone()));
        cache.update_pod(Arc::new(on(pod("b", json!({}), requests("500m")), "n0")));
        assert_eq!(used(&cache, "n0"), (2, 750));
        // An update replaces, it does not add.
        cache.update_pod(Arc::new(p.clone()));
        assert_eq!(used(&cache, "n0"), (2, 750));
        let mut done = p.clone();
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).expect("status"));
        cache.update_pod(Arc::new(done));
        assert_eq!(used(&cache, "n0"), (1, 500));
        cache.remove_pod("default/b");
        assert_eq!(used(&cache, "n0"), (0, 0));
    }

    #[test]
    fn an_assumed_pod_counts_until_the_watch_shows_it_bound() {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node("n0", json!({}))));
        let p = pod("a", json!({}), requests("1"));
        cache.assume(info(&p), "n0");
        assert_eq!(used(&cache, "n0"), (1, 1000));
        // A stale event of the pod still unbound does not undo the assumption.
        cache.update_pod(Arc::new(p.clone()));
        assert_eq!(used(&cache, "n0"), (1, 1000));
        cache.update_pod(Arc::new(on(p.clone(), "n0")));
        assert_eq!(used(&cache, "n0"), (1, 1000));
        // Once bound, forgetting the assumption changes nothing.
        cache.forget_assumed("default/a");
        assert_eq!(used(&cache, "n0"), (1, 1000));

        let q = pod("q", json!({}), requests("1"));
        cache.assume(info(&q), "n0");
        cache.forget_assumed("default/q");
        assert_eq!(used(&cache, "n0"), (1, 1000));
    }

    #[test]
    fn a_rebuild_keeps_assumed_pods_that_still_exist() {
        let mut cache = Cache::default();
        let n = Arc::new(node("n0", json!({})));
        cache.set_node(n.clone());
        let kept = pod("kept", json!({}), requests("1"));
        let gone = pod("gone", json!({}), requests("1"));
        cache.assume(info(&kept), "n0");
        cache.assume(info(&gone), "n0");
        cache.rebuild(&[n], &[Arc::new(kept)]);
        assert_eq!(used(&cache, "n0"), (1, 1000));
        assert!(cache.is_placed("default/kept"));
        assert!(!cache.is_placed("default/gone"));
    }
}
