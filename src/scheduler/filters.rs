//! The scheduler's per-node filters: pure functions saying whether a pod
//! fits a node and, if not, why, in upstream's words (the reasons a
//! `FailedScheduling` event counts per node). The filters that look across
//! nodes are in `spread.rs` and `interpod.rs`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, PersistentVolumeClaim, Pod, Taint, Toleration,
};
use k8s_openapi::api::storage::v1::StorageClass;

use super::cache::{NodeInfo, PodInfo};

/// Why a node cannot take a pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unfit {
    Unschedulable,
    Taint { key: String, value: String },
    Affinity,
    Ports,
    Insufficient(&'static str),
    TooManyPods,
    SpreadMissingLabel,
    Spread,
    PodAffinity,
    PodAntiAffinity,
    ExistingAntiAffinity,
}

impl Unfit {
    /// Upstream's reason text.
    pub fn reason(&self) -> String {
        match self {
            Unfit::Unschedulable => "node(s) were unschedulable".into(),
            Unfit::Taint { key, value } => {
                format!("node(s) had untolerated taint {{{key}: {value}}}")
            }
            Unfit::Affinity => "node(s) didn't match Pod's node affinity/selector".into(),
            Unfit::Ports => "node(s) didn't have free ports for the requested pod ports".into(),
            Unfit::Insufficient(r) => format!("Insufficient {r}"),
            Unfit::TooManyPods => "Too many pods".into(),
            Unfit::SpreadMissingLabel => {
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .into()
            }
            Unfit::Spread => "node(s) didn't match pod topology spread constraints".into(),
            Unfit::PodAffinity => "node(s) didn't match pod affinity rules".into(),
            Unfit::PodAntiAffinity => "node(s) didn't match pod anti-affinity rules".into(),
            Unfit::ExistingAntiAffinity => {
                "node(s) didn't satisfy existing pods anti-affinity rules".into()
            }
        }
    }

    /// Whether evicting lower-priority pods could help (upstream's
    /// `Unschedulable` as opposed to `UnschedulableAndUnresolvable`).
    pub fn preemption_may_help(&self) -> bool {
        matches!(
            self,
            Unfit::Ports
                | Unfit::Insufficient(_)
                | Unfit::TooManyPods
                | Unfit::Spread
                | Unfit::PodAntiAffinity
                | Unfit::ExistingAntiAffinity
        )
    }
}

/// The VolumeBinding PreFilter: why the pod cannot be scheduled yet
/// because of its PersistentVolumeClaims, in upstream's words — a claim
/// that does not exist, or one still unbound whose class binds
/// immediately (claims of a `WaitForFirstConsumer` class are left alone).
pub fn unbound_claims<C, S>(
    pod: &Pod,
    claim: impl Fn(&str) -> Option<C>,
    class: impl Fn(&str) -> Option<S>,
) -> Option<String>
where
    C: std::ops::Deref<Target = PersistentVolumeClaim>,
    S: std::ops::Deref<Target = StorageClass>,
{
    let volumes = pod.spec.as_ref()?.volumes.as_ref()?;
    let mut unbound = false;
    for name in volumes
        .iter()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
    {
        let Some(pvc) = claim(name) else {
            return Some(format!("persistentvolumeclaim \"{name}\" not found"));
        };
        if pvc.metadata.deletion_timestamp.is_some() {
            return Some(format!("persistentvolumeclaim \"{name}\" is being deleted"));
        }
        let bound = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .is_some_and(|v| !v.is_empty());
        if bound {
            continue;
        }
        let class_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref())
            .unwrap_or_default();
        let delayed = !class_name.is_empty()
            && class(class_name)
                .is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
        if !delayed {
            unbound = true;
        }
    }
    unbound.then(|| "pod has unbound immediate PersistentVolumeClaims".to_string())
}

/// What is already on a node.
#[derive(Debug, Default, Clone)]
pub struct NodeUsage {
    pub requested: super::resources::Resources,
    /// The requests with upstream's non-zero defaults, for scoring.
    pub non_zero: super::resources::Resources,
    pub pods: i128,
    pub host_ports: Vec<(String, String, i32)>,
}

/// Runs the per-node filters in upstream's order; the reasons the node is
/// unfit, from the first filter that fails.
pub fn check(pod_info: &PodInfo, info: &NodeInfo) -> Vec<Unfit> {
    let pod = &pod_info.pod;
    let Some(node) = info.node.as_deref() else {
        return vec![Unfit::Unschedulable];
    };
    if node_unschedulable(pod, node) {
        return vec![Unfit::Unschedulable];
    }
    if let Some(t) = untolerated_taint(pod, &info.taints) {
        return vec![Unfit::Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
        }];
    }
    if !matches_node_affinity(pod, node) {
        return vec![Unfit::Affinity];
    }
    if port_conflict(&pod_info.host_ports, &info.usage) {
        return vec![Unfit::Ports];
    }
    fits_resources(pod_info, info)
}

fn node_unschedulable(pod: &Pod, node: &Node) -> bool {
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    cordoned
        && !tolerations(pod).iter().any(|t| {
            tolerates(
                t,
                &Taint {
                    key: "node.kubernetes.io/unschedulable".into(),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                },
            )
        })
}

/// The node's taints, plus `node.kubernetes.io/not-ready:NoSchedule` when its
/// Ready condition is not True (what upstream's node lifecycle controller adds).
pub fn effective_taints(node: &Node) -> Vec<Taint> {
    let mut taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    if !ready {
        taints.push(Taint {
            key: "node.kubernetes.io/not-ready".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
    }
    taints
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

/// The first NoSchedule/NoExecute taint no toleration of the pod tolerates.
pub fn untolerated_taint<'a>(pod: &Pod, taints: &'a [Taint]) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerations(pod).iter().any(|tol| tolerates(tol, t)))
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = tol.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    if let Some(key) = tol.key.as_deref().filter(|k| !k.is_empty())
        && key != taint.key
    {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// nodeSelector and required node affinity.
pub fn matches_node_affinity(pod: &Pod, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    if let Some(selector) = &spec.node_selector
        && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let Some(required) = required else {
        return true;
    };
    // Terms are ORed; a term's expressions and fields are ANDed.
    required.node_selector_terms.iter().any(|term| {
        let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
        let fields = term.match_fields.as_deref().unwrap_or(&[]);
        if exprs.is_empty() && fields.is_empty() {
            return false;
        }
        let name = node.metadata.name.clone().unwrap_or_default();
        let node_fields = BTreeMap::from([("metadata.name".to_string(), name)]);
        exprs.iter().all(|e| requirement_matches(e, labels))
            && fields.iter().all(|e| requirement_matches(e, &node_fields))
    })
}

/// One `NodeSelectorRequirement` against a label map.
pub fn requirement_matches(
    req: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, values) else {
                return false;
            };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// The (hostIP, protocol, hostPort) triples a pod asks for.
pub fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    pod.spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            let ip = p
                .host_ip
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into());
            Some((ip, p.protocol.clone().unwrap_or_else(|| "TCP".into()), port))
        })
        .collect()
}

fn port_conflict(wanted: &[(String, String, i32)], usage: &NodeUsage) -> bool {
    wanted.iter().any(|(ip, proto, port)| {
        usage.host_ports.iter().any(|(uip, uproto, uport)| {
            port == uport && proto == uproto && (ip == uip || ip == "0.0.0.0" || uip == "0.0.0.0")
        })
    })
}

fn fits_resources(pod: &PodInfo, info: &NodeInfo) -> Vec<Unfit> {
    let (alloc, want, usage) = (info.allocatable, pod.requests, &info.usage);
    let mut unfit = Vec::new();
    if usage.pods + 1 > alloc.pods {
        unfit.push(Unfit::TooManyPods);
    }
    if want.cpu_milli > 0 && usage.requested.cpu_milli + want.cpu_milli > alloc.cpu_milli {
        unfit.push(Unfit::Insufficient("cpu"));
    }
    if want.memory > 0 && usage.requested.memory + want.memory > alloc.memory {
        unfit.push(Unfit::Insufficient("memory"));
    }
    unfit
}

#[cfg(test)]
mod tests;
