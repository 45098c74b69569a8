//! Filter tests over hand-built pods and nodes.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

use super::*;
use crate::scheduler::algorithm::{Context, find_node};
use crate::scheduler::cache::Cache;
use crate::scheduler::resources::Resources;

/// The per-node filters for `pod` on `node` already running `usage`.
fn run(pod: &Pod, node: &Node, usage: &NodeUsage) -> Vec<Unfit> {
    let mut info = NodeInfo::new(Arc::new(node.clone()));
    info.usage = usage.clone();
    check(&PodInfo::new(Arc::new(pod.clone())), &info)
}

fn decide(pod: &Pod, nodes: &[Node]) -> Result<String, String> {
    let mut cache = Cache::default();
    for n in nodes {
        cache.set_node(Arc::new(n.clone()));
    }
    decide_in(pod, &cache)
}

fn decide_in(pod: &Pod, cache: &Cache) -> Result<String, String> {
    find_node(
        &PodInfo::new(Arc::new(pod.clone())),
        cache,
        &Context::default(),
    )
    .map_err(|d| d.message(""))
}

fn node(name: &str, extra: serde_json::Value) -> Node {
    let mut n = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": "a", "rank": "5"}},
        "spec": {},
        "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3"},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    });
    merge(&mut n, extra);
    serde_json::from_value(n).expect("node")
}

fn pod(extra: serde_json::Value) -> Pod {
    let mut p = json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    });
    merge(&mut p, extra);
    serde_json::from_value(p).expect("pod")
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    json_patch::merge(a, &b);
}

fn requests(cpu: &str, memory: &str) -> serde_json::Value {
    json!({"spec": {"containers": [{"name": "c", "image": "busybox",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}})
}

#[test]
fn resources_must_fit_what_is_left() {
    let n = node("n", json!({}));
    let used = NodeUsage {
        requested: Resources {
            cpu_milli: 1500,
            memory: 1 << 30,
            pods: 1,
        },
        pods: 1,
        ..NodeUsage::default()
    };
    assert!(run(&pod(requests("500m", "1Gi")), &n, &used).is_empty());
    assert_eq!(
        run(&pod(requests("600m", "1Gi")), &n, &used),
        vec![Unfit::Insufficient("cpu")]
    );
    assert_eq!(
        run(&pod(requests("1", "4Gi")), &n, &used),
        vec![Unfit::Insufficient("cpu"), Unfit::Insufficient("memory")]
    );
    let full = NodeUsage {
        pods: 3,
        ..NodeUsage::default()
    };
    assert_eq!(run(&pod(json!({})), &n, &full), vec![Unfit::TooManyPods]);
}

#[test]
fn node_selector_and_affinity_operators() {
    let n = node("n", json!({}));
    let none = NodeUsage::default();
    assert!(
        run(
            &pod(json!({"spec": {"nodeSelector": {"zone": "a"}}})),
            &n,
            &none
        )
        .is_empty()
    );
    assert_eq!(
        run(
            &pod(json!({"spec": {"nodeSelector": {"zone": "b"}}})),
            &n,
            &none
        ),
        vec![Unfit::Affinity]
    );
    let affinity = |op: &str, values: serde_json::Value, key: &str| {
        pod(
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]}}}}}),
        )
    };
    let fits = |p: Pod| run(&p, &n, &none).is_empty();
    assert!(fits(affinity("In", json!(["a", "b"]), "zone")));
    assert!(!fits(affinity("NotIn", json!(["a"]), "zone")));
    assert!(fits(affinity("NotIn", json!(["a"]), "missing")));
    assert!(fits(affinity("Exists", json!(null), "zone")));
    assert!(!fits(affinity("DoesNotExist", json!(null), "zone")));
    assert!(fits(affinity("Gt", json!(["4"]), "rank")));
    assert!(!fits(affinity("Lt", json!(["5"]), "rank")));
}

#[test]
fn taints_need_tolerations_and_not_ready_nodes_are_tainted() {
    let tainted = node(
        "n",
        json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
    );
    let none = NodeUsage::default();
    assert_eq!(
        run(&pod(json!({})), &tainted, &none),
        vec![Unfit::Taint {
            key: "dedicated".into(),
            value: "db".into()
        }]
    );
    let tolerant = pod(
        json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db"}]}}),
    );
    assert!(run(&tolerant, &tainted, &none).is_empty());
    let exists = pod(json!({"spec": {"tolerations": [{"operator": "Exists"}]}}));
    assert!(run(&exists, &tainted, &none).is_empty());
    let prefer = node(
        "n",
        json!({"spec": {"taints": [{"key": "x", "effect": "PreferNoSchedule"}]}}),
    );
    assert!(run(&pod(json!({})), &prefer, &none).is_empty());
    let not_ready = node(
        "n",
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    );
    assert_eq!(
        run(&pod(json!({})), &not_ready, &none),
        vec![Unfit::Taint {
            key: "node.kubernetes.io/not-ready".into(),
            value: String::new()
        }]
    );
    let cordoned = node("n", json!({"spec": {"unschedulable": true}}));
    assert_eq!(
        run(&pod(json!({})), &cordoned, &none),
        vec![Unfit::Unschedulable]
    );
}

#[test]
fn host_ports_conflict() {
    let n = node("n", json!({}));
    let with_port = pod(
        json!({"spec": {"containers": [{"name": "c", "image": "b", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}),
    );
    let used = NodeUsage {
        host_ports: host_ports(&with_port),
        ..NodeUsage::default()
    };
    assert_eq!(run(&with_port, &n, &used), vec![Unfit::Ports]);
    assert!(run(&pod(json!({})), &n, &used).is_empty());
}

#[test]
fn the_fit_error_counts_reasons_as_upstream() {
    let nodes = vec![
        node(
            "a",
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
        ),
        node(
            "b",
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoExecute"}]}}),
        ),
        node("c", json!({})),
    ];
    let p = pod(requests("3", "1Gi"));
    let message = decide(&p, &nodes).expect_err("nothing fits");
    assert_eq!(
        message,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."
    );
    assert_eq!(
        decide(&p, &[]),
        Err("no nodes available to schedule pods".to_string())
    );
}

#[test]
fn the_emptier_node_wins() {
    let mut cache = Cache::default();
    cache.set_node(Arc::new(node("a", json!({}))));
    cache.set_node(Arc::new(node("b", json!({}))));
    let mut busy = pod(requests("1", "1Gi"));
    busy.metadata.name = Some("busy".into());
    busy.spec.as_mut().expect("spec").node_name = Some("a".into());
    cache.update_pod(Arc::new(busy));
    assert_eq!(decide_in(&pod(json!({})), &cache), Ok("b".to_string()));
}

#[test]
fn pods_wait_for_their_immediate_claims_to_bind() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [], "volumes": [
            {"name": "a", "persistentVolumeClaim": {"claimName": "a"}},
            {"name": "scratch", "emptyDir": {}},
        ]},
    }))
    .expect("pod");
    let claim = |volume: Option<&str>, class: &str| -> Arc<PersistentVolumeClaim> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "a", "namespace": "default"},
                "spec": {"volumeName": volume, "storageClassName": class},
            }))
            .expect("claim"),
        )
    };
    let late: Arc<StorageClass> = Arc::new(
        serde_json::from_value(json!({"metadata": {"name": "late"}, "provisioner": "x",
            "volumeBindingMode": "WaitForFirstConsumer"}))
        .expect("class"),
    );
    let classes = |name: &str| (name == "late").then(|| late.clone());
    let none = |_: &str| None::<Arc<PersistentVolumeClaim>>;
    assert_eq!(
        unbound_claims(&pod, none, classes).as_deref(),
        Some("persistentvolumeclaim \"a\" not found")
    );
    let pending = claim(None, "");
    assert_eq!(
        unbound_claims(&pod, |_: &str| Some(pending.clone()), classes).as_deref(),
        Some("pod has unbound immediate PersistentVolumeClaims")
    );
    let bound = claim(Some("pv-1"), "");
    assert_eq!(
        unbound_claims(&pod, |_: &str| Some(bound.clone()), classes),
        None
    );
    let delayed = claim(None, "late");
    assert_eq!(
        unbound_claims(&pod, |_: &str| Some(delayed.clone()), classes),
        None
    );
    assert_eq!(
        crate::scheduler::prefilter_error(2, "pod has unbound immediate PersistentVolumeClaims"),
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}
