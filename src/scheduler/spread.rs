//! Pod topology spread (upstream's PodTopologySpread plugin): constraints
//! with `whenUnsatisfiable: DoNotSchedule` filter nodes, `ScheduleAnyway`
//! ones score them. A pod without constraints of its own gets upstream's
//! system defaults (hostname maxSkew 3, zone maxSkew 5, both ScheduleAnyway)
//! over the pods selected by the Services, ReplicaSets, StatefulSets and
//! ReplicationControllers that select it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use super::cache::{Cache, NodeInfo, PodInfo};
use super::filters;
use super::selector::Selector;

/// The hostname label, whose domains are single nodes.
pub const HOSTNAME: &str = "kubernetes.io/hostname";
/// The zone label.
pub const ZONE: &str = "topology.kubernetes.io/zone";

/// One constraint, compiled.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub selector: Selector,
    pub min_domains: i64,
    honor_node_affinity: bool,
    honor_taints: bool,
}

impl Constraint {
    /// Whether nodes like `node` count as domains for the pod (the
    /// nodeAffinityPolicy and nodeTaintsPolicy).
    fn includes(&self, pod: &Pod, node: &Node) -> bool {
        if self.honor_node_affinity && !filters::matches_node_affinity(pod, node) {
            return false;
        }
        if self.honor_taints {
            let taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or(&[]);
            if filters::untolerated_taint(pod, taints).is_some() {
                return false;
            }
        }
        true
    }
}

/// The pod's constraints with `whenUnsatisfiable == action`, or the system
/// defaults over `default_selector` when it has none; the bool says whether
/// the defaults were used.
pub fn constraints(
    pod: &Pod,
    action: &str,
    default_selector: Option<&Selector>,
) -> (Vec<Constraint>, bool) {
    let own = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or(&[]);
    if own.is_empty() {
        let Some(selector) = default_selector.filter(|s| !s.is_empty()) else {
            return (Vec::new(), false);
        };
        if action != "ScheduleAnyway" {
            return (Vec::new(), true);
        }
        let default = |key: &str, max_skew| Constraint {
            max_skew,
            topology_key: key.to_string(),
            selector: selector.clone(),
            min_domains: 1,
            honor_node_affinity: true,
            honor_taints: false,
        };
        return (vec![default(HOSTNAME, 3), default(ZONE, 5)], true);
    }
    let labels = pod.metadata.labels.as_ref();
    let list = own
        .iter()
        .filter(|c| c.when_unsatisfiable == action)
        .map(|c| {
            let mut selector = Selector::from_api(c.label_selector.as_ref());
            for key in c.match_label_keys.iter().flatten() {
                if let Some(value) = labels.and_then(|l| l.get(key)) {
                    selector.require(key, value, true);
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect();
    (list, false)
}

fn has_all_keys(info: &NodeInfo, constraints: &[Constraint]) -> bool {
    let labels = info.labels();
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// Pods on `info` in `namespace` the selector selects (terminating ones not).
fn count_matching(info: &NodeInfo, selector: &Selector, namespace: &str) -> i64 {
    info.pods()
        .filter(|p| !p.terminating() && p.namespace == namespace && selector.matches(p.labels()))
        .count() as i64
}

/// Why a node fails the spread filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// The node lacks a constraint's topology label.
    MissingLabel,
    /// Placing the pod there would exceed a maxSkew.
    Skew,
}

/// The PreFilter tallies: matching pods per domain, per constraint.
#[derive(Debug, Clone)]
pub struct FilterState {
    incoming: Arc<PodInfo>,
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
}

impl FilterState {
    /// Tallies the cluster for `pod`'s DoNotSchedule constraints; `None`
    /// when it has none.
    pub fn new(
        pod: &Arc<PodInfo>,
        cache: &Cache,
        default_selector: Option<&Selector>,
    ) -> Option<Self> {
        let (constraints, _) = constraints(&pod.pod, "DoNotSchedule", default_selector);
        if constraints.is_empty() {
            return None;
        }
        let mut counts = vec![HashMap::new(); constraints.len()];
        for info in cache.nodes() {
            let Some(node) = info.node.as_ref() else {
                continue;
            };
            if !has_all_keys(info, &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes(&pod.pod, node) {
                    continue;
                }
                let value = info.labels()[&c.topology_key].clone();
                *counts[i].entry(value).or_default() +=
                    count_matching(info, &c.selector, &pod.namespace);
            }
        }
        Some(FilterState {
            incoming: pod.clone(),
            constraints,
            counts,
        })
    }

    /// Accounts for `pod` being on `info` (`by` = 1) or leaving it (−1).
    pub fn update(&mut self, pod: &PodInfo, info: &NodeInfo, by: i64) {
        let Some(node) = info.node.as_ref() else {
            return;
        };
        if pod.namespace != self.incoming.namespace || !has_all_keys(info, &self.constraints) {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if c.selector.matches(pod.labels()) && c.includes(&self.incoming.pod, node) {
                let value = info.labels()[&c.topology_key].clone();
                *self.counts[i].entry(value).or_default() += by;
            }
        }
    }

    /// Whether placing the pod on `info` keeps every skew within bounds.
    pub fn check(&self, info: &NodeInfo) -> Result<(), Violation> {
        let labels = info.labels();
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.topology_key) else {
                return Err(Violation::MissingLabel);
            };
            let domains = &self.counts[i];
            let mut min = domains
                .values()
                .min()
                .copied()
                .unwrap_or(i64::from(i32::MAX));
            if (domains.len() as i64) < c.min_domains {
                min = 0;
            }
            let own = i64::from(c.selector.matches(self.incoming.labels()));
            let here = domains.get(value).copied().unwrap_or(0);
            if here + own - min > c.max_skew {
                return Err(Violation::Skew);
            }
        }
        Ok(())
    }
}

/// The PreScore tallies for `pod`'s ScheduleAnyway constraints.
#[derive(Debug)]
pub struct ScoreState {
    namespace: String,
    constraints: Vec<Constraint>,
    /// Nodes lacking a topology label (scored 0).
    ignored: HashSet<String>,
    /// Matching pods per domain, per constraint (not for hostname).
    counts: Vec<HashMap<String, i64>>,
    /// log(domains + 2) per constraint.
    weights: Vec<f64>,
}

impl ScoreState {
    /// `None` when the pod has no ScheduleAnyway constraint (or no node fits).
    pub fn new(
        pod: &PodInfo,
        feasible: &[&NodeInfo],
        cache: &Cache,
        default_selector: Option<&Selector>,
    ) -> Option<Self> {
        let (constraints, defaulted) = constraints(&pod.pod, "ScheduleAnyway", default_selector);
        if constraints.is_empty() || feasible.is_empty() {
            return None;
        }
        let require_all = !defaulted;
        let mut ignored = HashSet::new();
        let mut counts = vec![HashMap::new(); constraints.len()];
        for info in feasible {
            if require_all && !has_all_keys(info, &constraints) {
                ignored.insert(info.name.clone());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME {
                    continue;
                }
                if let Some(value) = info.labels().get(&c.topology_key) {
                    counts[i].entry(value.clone()).or_insert(0i64);
                }
            }
        }
        let weights = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let size = if c.topology_key == HOSTNAME {
                    feasible.len() - ignored.len()
                } else {
                    counts[i].len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        for info in cache.nodes() {
            let Some(node) = info.node.as_ref() else {
                continue;
            };
            if require_all && !has_all_keys(info, &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME || !c.includes(&pod.pod, node) {
                    continue;
                }
                let Some(value) = info.labels().get(&c.topology_key) else {
                    continue;
                };
                if let Some(n) = counts[i].get_mut(value) {
                    *n += count_matching(info, &c.selector, &pod.namespace);
                }
            }
        }
        Some(ScoreState {
            namespace: pod.namespace.clone(),
            constraints,
            ignored,
            counts,
            weights,
        })
    }

    /// The raw score of a node (lower is better); `None` when ignored.
    pub fn raw(&self, info: &NodeInfo) -> Option<i64> {
        if self.ignored.contains(&info.name) {
            return None;
        }
        let labels = info.labels();
        let mut score = 0.0;
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == HOSTNAME {
                count_matching(info, &c.selector, &self.namespace)
            } else {
                self.counts[i].get(value).copied().unwrap_or(0)
            };
            score += count as f64 * self.weights[i] + (c.max_skew - 1) as f64;
        }
        Some(score.round() as i64)
    }
}

/// Upstream's normalisation: fewer matching pods score higher, 0..=100;
/// ignored nodes score 0.
pub fn normalize(raw: &[Option<i64>]) -> Vec<i64> {
    let present = raw.iter().flatten();
    let min = present.clone().min().copied().unwrap_or(0);
    let max = present.max().copied().unwrap_or(0);
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => 100,
            Some(s) => 100 * (max + min - s) / max,
        })
        .collect()
}

#[cfg(test)]
mod tests;
