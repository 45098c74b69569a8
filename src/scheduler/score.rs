//! Node scores of the plugins that look at one node at a time, each
//! normalised to 0..=100 as upstream's: NodeResourcesFit (LeastAllocated),
//! NodeResourcesBalancedAllocation, TaintToleration (PreferNoSchedule),
//! NodeAffinity (preferred terms) and ImageLocality. The weights of the
//! default profile are in [`Weights`].

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use super::cache::{Cache, NodeInfo, normalized_image};
use super::filters::{requirement_matches, tolerates};
use super::resources::Resources;

/// Upstream's default plugin weights.
pub struct Weights;

impl Weights {
    pub const TAINT_TOLERATION: i64 = 3;
    pub const NODE_AFFINITY: i64 = 2;
    pub const FIT: i64 = 1;
    pub const TOPOLOGY_SPREAD: i64 = 2;
    pub const INTER_POD_AFFINITY: i64 = 2;
    pub const BALANCED: i64 = 1;
    pub const IMAGE_LOCALITY: i64 = 1;
}

/// The weighted resource scores of a node with `alloc` allocatable and
/// `requested` (including the pod being placed, with non-zero defaults) in use.
pub fn resources(alloc: Resources, requested: Resources) -> i64 {
    Weights::FIT * least_allocated(alloc, requested)
        + Weights::BALANCED * balanced(alloc, requested)
}

fn free_share(capacity: i128, used: i128) -> i64 {
    if capacity <= 0 || used > capacity {
        return 0;
    }
    ((capacity - used) * 100 / capacity) as i64
}

/// The mean share of CPU and memory left free, 0..=100.
pub fn least_allocated(alloc: Resources, requested: Resources) -> i64 {
    (free_share(alloc.cpu_milli, requested.cpu_milli) + free_share(alloc.memory, requested.memory))
        / 2
}

/// 100 when CPU and memory are used in the same proportion, less the more
/// they differ (one minus their standard deviation).
pub fn balanced(alloc: Resources, requested: Resources) -> i64 {
    let fraction = |cap: i128, used: i128| {
        if cap <= 0 {
            1.0
        } else {
            (used as f64 / cap as f64).min(1.0)
        }
    };
    let cpu = fraction(alloc.cpu_milli, requested.cpu_milli);
    let mem = fraction(alloc.memory, requested.memory);
    let std = (cpu - mem).abs() / 2.0;
    ((1.0 - std) * 100.0) as i64
}

/// How many of the node's PreferNoSchedule taints the pod does not
/// tolerate (tolerations with an empty effect count too).
pub fn intolerable_taints(pod: &Pod, taints: &[Taint]) -> i64 {
    let tolerations: Vec<_> = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
        .iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        })
        .collect();
    taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
        .count() as i64
}

/// The summed weights of the pod's preferred node affinity terms `node` matches.
pub fn preferred_node_affinity(pod: &Pod, node: &Node) -> i64 {
    let terms = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[]);
    if terms.is_empty() {
        return 0;
    }
    let empty = Default::default();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.clone().unwrap_or_default();
    let fields = std::collections::BTreeMap::from([("metadata.name".to_string(), name)]);
    terms
        .iter()
        .filter(|t| t.weight != 0)
        .filter(|t| {
            let exprs = t.preference.match_expressions.as_deref().unwrap_or(&[]);
            let fs = t.preference.match_fields.as_deref().unwrap_or(&[]);
            // An empty preference matches no node.
            !(exprs.is_empty() && fs.is_empty())
                && exprs.iter().all(|e| requirement_matches(e, labels))
                && fs.iter().all(|e| requirement_matches(e, &fields))
        })
        .map(|t| i64::from(t.weight))
        .sum()
}

const MB: i64 = 1024 * 1024;
const IMAGE_MIN: i64 = 23 * MB;
const IMAGE_MAX_PER_CONTAINER: i64 = 1000 * MB;

/// The pod's images (init containers and containers), normalised.
pub fn pod_images(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        })
        .map(|c| normalized_image(c.image.as_deref().unwrap_or_default()))
        .collect()
}

/// ImageLocality: the sizes of the pod's `images` already on the node, each
/// scaled by the share of nodes that have it, mapped between 23 MB and
/// 1000 MB per container onto 0..=100.
pub fn image_locality(
    images: &[String],
    info: &NodeInfo,
    cache: &Cache,
    total_nodes: usize,
) -> i64 {
    if images.is_empty() || total_nodes == 0 || info.images.is_empty() {
        return 0;
    }
    let mut sum = 0i64;
    for image in images {
        if let Some(size) = info.images.get(image) {
            let spread = cache.image_spread(image) as f64 / total_nodes as f64;
            sum += (*size as f64 * spread) as i64;
        }
    }
    let max = IMAGE_MAX_PER_CONTAINER * images.len() as i64;
    let sum = sum.clamp(IMAGE_MIN, max);
    100 * (sum - IMAGE_MIN) / (max - IMAGE_MIN)
}

/// Upstream's `DefaultNormalizeScore`: scale to 0..=`100` by the maximum,
/// reversed (100 − score) when fewer is better.
pub fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = 100);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = 100 * *s / max;
        if reverse {
            *s = 100 - *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn r(cpu_milli: i128, memory: i128) -> Resources {
        Resources {
            cpu_milli,
            memory,
            pods: 0,
        }
    }

    #[test]
    fn an_emptier_node_scores_higher() {
        let alloc = r(4000, 8 << 30);
        assert!(resources(alloc, r(100, 200 << 20)) > resources(alloc, r(2000, 4 << 30)));
        assert_eq!(least_allocated(alloc, r(2000, 4 << 30)), 50);
    }

    #[test]
    fn balanced_use_scores_higher_than_lopsided_use() {
        let alloc = r(4000, 4000);
        assert_eq!(balanced(alloc, r(2000, 2000)), 100);
        assert_eq!(balanced(alloc, r(4000, 0)), 50);
    }

    #[test]
    fn normalisation_scales_by_the_maximum() {
        let mut s = vec![0, 5, 10];
        normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
        let mut t = vec![0, 1, 2];
        normalize(&mut t, true);
        assert_eq!(t, vec![100, 50, 0]);
        let mut z = vec![0, 0];
        normalize(&mut z, true);
        assert_eq!(z, vec![100, 100]);
    }

    #[test]
    fn prefer_no_schedule_taints_count_unless_tolerated() {
        let taints: Vec<Taint> = serde_json::from_value(serde_json::json!([
            {"key": "a", "effect": "PreferNoSchedule"},
            {"key": "b", "effect": "PreferNoSchedule"},
            {"key": "c", "effect": "NoSchedule"},
        ]))
        .expect("taints");
        let pod = |tolerations: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"},
                "spec": {"containers": [], "tolerations": tolerations}}))
            .expect("pod")
        };
        assert_eq!(intolerable_taints(&pod(serde_json::json!([])), &taints), 2);
        assert_eq!(
            intolerable_taints(
                &pod(serde_json::json!([{"key": "a", "operator": "Exists"}])),
                &taints
            ),
            1
        );
        // A NoSchedule toleration does not help with PreferNoSchedule.
        assert_eq!(
            intolerable_taints(
                &pod(
                    serde_json::json!([{"key": "a", "operator": "Exists", "effect": "NoSchedule"}])
                ),
                &taints
            ),
            2
        );
    }

    #[test]
    fn preferred_node_affinity_sums_matching_weights() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {"disk": "ssd", "zone": "a"}}}))
        .expect("node");
        let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "p"},
            "spec": {"containers": [], "affinity": {"nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 5, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                    {"weight": 7, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}},
                    {"weight": 11, "preference": {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}},
                    {"weight": 13, "preference": {}},
                ]}}}}))
        .expect("pod");
        assert_eq!(preferred_node_affinity(&pod, &node), 16);
    }

    #[test]
    fn image_locality_scales_by_size_and_spread() {
        let node = |name: &str, images: serde_json::Value| -> Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": name},
                "status": {"images": images}}))
            .expect("node")
        };
        let big = serde_json::json!([{"names": ["registry/app:1"], "sizeBytes": 500 * MB}]);
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node("a", big.clone())));
        cache.set_node(Arc::new(node("b", big)));
        cache.set_node(Arc::new(node("c", serde_json::json!([]))));
        let images = vec!["registry/app:1".to_string()];
        let a = cache.node("a").expect("a");
        // 500 MB on 2 of 3 nodes: 333 MB counted, (333 - 23) / (1000 - 23).
        assert_eq!(image_locality(&images, a, &cache, 3), 31);
        assert_eq!(
            image_locality(&images, cache.node("c").expect("c"), &cache, 3),
            0
        );
        assert_eq!(normalized_image("busybox"), "busybox:latest");
        assert_eq!(
            normalized_image("localhost:5000/busybox"),
            "localhost:5000/busybox:latest"
        );
        assert_eq!(normalized_image("busybox@sha256:ab"), "busybox@sha256:ab");
    }
}
