//! Which nodes a DaemonSet runs on and the pods it puts there, as
//! upstream's `NodeShouldRunDaemonPod` and `CreatePodTemplate`: a node fits
//! when the template's nodeName (if any), nodeSelector and required node
//! affinity match it and every NoSchedule/NoExecute taint is tolerated (with
//! the tolerations every daemon pod gets). A pod already there keeps running
//! on a node whose only untolerated taints are NoSchedule. Each pod is pinned
//! to its node by required node affinity `matchFields metadata.name In
//! [node]`, so the default scheduler binds it there.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Taint, Toleration,
};

use super::super::history::POD_REVISION_LABEL;
use super::super::owner_reference;
use crate::scheduler::filters::{matches_node_affinity, tolerates};

/// The (deprecated, still set) label with the DaemonSet's generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// Whether the DaemonSet should run a pod on the node, and whether a pod
/// already there may keep running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    pub should_run: bool,
    pub should_continue: bool,
}

/// Upstream's daemon tolerations: (key, effect), operator Exists.
fn daemon_tolerations(host_network: bool) -> Vec<(&'static str, &'static str)> {
    let mut t = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        t.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    t
}

/// The DaemonSet's template with the daemon tolerations and the revision
/// labels added (not yet pinned to a node).
pub fn pod_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    if let Some(generation) = ds.metadata.generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(POD_REVISION_LABEL.into(), hash.into());
    }
    let spec = template.spec.get_or_insert_with(Default::default);
    let host_network = spec.host_network.unwrap_or(false);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in daemon_tolerations(host_network) {
        let present = tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some(key) && t.effect.as_deref() == Some(effect));
        if !present {
            tolerations.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some(effect.into()),
                ..Default::default()
            });
        }
    }
    template
}

/// Upstream's `NodeShouldRunDaemonPod`; `template` from [`pod_template`].
pub fn fit(template: &PodTemplateSpec, node: &Node) -> Fit {
    const NO: Fit = Fit {
        should_run: false,
        should_continue: false,
    };
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let pod = Pod {
        metadata: template.metadata.clone().unwrap_or_default(),
        spec: template.spec.clone(),
        status: None,
    };
    let wanted = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    if wanted.is_some_and(|n| !n.is_empty() && n != node_name) {
        return NO;
    }
    if !matches_node_affinity(&pod, node) {
        return NO;
    }
    let taints: &[Taint] = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tolerations: &[Toleration] = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let untolerated = |effect: &str| {
        taints
            .iter()
            .filter(|t| t.effect == effect)
            .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
    };
    let no_execute = untolerated("NoExecute");
    Fit {
        should_run: !no_execute && !untolerated("NoSchedule"),
        should_continue: !no_execute,
    }
}

/// The pod for `node`: the template, pinned with required node affinity
/// (replacing the template's required terms, already checked by [`fit`]),
/// named `<ds>-<random>` and controlled by the DaemonSet.
pub fn new_pod(ds: &DaemonSet, template: &PodTemplateSpec, node: &str) -> Pod {
    let ds_name = ds.metadata.name.as_deref().unwrap_or_default();
    let mut meta = template.metadata.clone().unwrap_or_default();
    meta.name = None;
    meta.generate_name = Some(format!("{ds_name}-"));
    meta.namespace = ds.metadata.namespace.clone();
    meta.owner_references = Some(vec![owner_reference(
        "apps/v1",
        "DaemonSet",
        ds_name,
        ds.metadata.uid.as_deref().unwrap_or_default(),
    )]);
    let mut spec = template.spec.clone().unwrap_or_default();
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
        }],
    });
    Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}

/// The node a daemon pod is for: its nodeName, else the node its required
/// affinity pins it to.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref())
        .filter(|v| v.len() == 1)
        .and_then(|v| v.first().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds(template_spec: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "ns", "uid": "u1", "generation": 3},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": template_spec},
            },
        }))
        .expect("daemonset")
    }

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
        }))
        .expect("node")
    }

    const RUN: Fit = Fit {
        should_run: true,
        should_continue: true,
    };
    const NO: Fit = Fit {
        should_run: false,
        should_continue: false,
    };

    #[test]
    fn taints_decide_with_the_daemon_tolerations() {
        let d = ds(json!({"containers": [{"name": "c", "image": "i"}]}));
        let t = pod_template(&d, "h1");
        assert_eq!(fit(&t, &node("a", json!({}), json!([]))), RUN);
        let no_schedule = node(
            "b",
            json!({}),
            json!([{"key": "gpu", "effect": "NoSchedule"}]),
        );
        assert_eq!(
            fit(&t, &no_schedule),
            Fit {
                should_run: false,
                should_continue: true
            },
            "a pod already there stays"
        );
        let no_execute = node(
            "c",
            json!({}),
            json!([{"key": "gpu", "effect": "NoExecute"}]),
        );
        assert_eq!(fit(&t, &no_execute), NO);
        let cordoned = node(
            "d",
            json!({}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                   {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                   {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}]),
        );
        assert_eq!(fit(&t, &cordoned), RUN, "daemon tolerations apply");
        let tolerant = pod_template(
            &ds(json!({"containers": [], "tolerations": [{"key": "gpu", "operator": "Exists"}]})),
            "h1",
        );
        assert_eq!(fit(&tolerant, &no_execute), RUN);
    }

    #[test]
    fn node_selector_affinity_and_node_name_narrow_the_nodes() {
        let d = ds(json!({
            "containers": [],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
        }));
        let t = pod_template(&d, "h1");
        assert_eq!(
            fit(
                &t,
                &node("a", json!({"disk": "ssd", "zone": "a"}), json!([]))
            ),
            RUN
        );
        assert_eq!(
            fit(
                &t,
                &node("b", json!({"disk": "hdd", "zone": "a"}), json!([]))
            ),
            NO
        );
        assert_eq!(
            fit(
                &t,
                &node("c", json!({"disk": "ssd", "zone": "b"}), json!([]))
            ),
            NO
        );
        let pinned = pod_template(&ds(json!({"containers": [], "nodeName": "x"})), "h");
        assert_eq!(fit(&pinned, &node("y", json!({}), json!([]))), NO);
        assert_eq!(fit(&pinned, &node("x", json!({}), json!([]))), RUN);
    }

    #[test]
    fn pods_are_pinned_labelled_and_tolerant() {
        let d = ds(json!({"containers": [{"name": "c", "image": "i"}], "hostNetwork": true}));
        let pod = new_pod(&d, &pod_template(&d, "h1"), "sim-1");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels[POD_REVISION_LABEL], "h1");
        assert_eq!(labels[TEMPLATE_GENERATION_LABEL], "3");
        assert_eq!(target_node(&pod).as_deref(), Some("sim-1"));
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let keys: Vec<_> = tolerations.iter().filter_map(|t| t.key.clone()).collect();
        assert_eq!(keys.len(), 7, "{keys:?}");
        assert!(keys.contains(&"node.kubernetes.io/network-unavailable".to_string()));
        assert_eq!(
            pod.metadata.owner_references.unwrap_or_default()[0].kind,
            "DaemonSet"
        );
    }
}
