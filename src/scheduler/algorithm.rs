//! One scheduling decision over the cache: the filters (per-node ones, then
//! PodTopologySpread and InterPodAffinity, upstream's order), then the
//! weighted, normalised scores of the nodes that pass. Nothing here does
//! I/O; `scheduler.rs` feeds it and acts on the answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cache::{Cache, NodeInfo, PodInfo};
use super::filters::{self, Unfit};
use super::interpod::{self, NamespaceLabels};
use super::score::{self, Weights};
use super::selector::Selector;
use super::spread;

/// What a decision needs beyond the cache.
#[derive(Debug, Default)]
pub struct Context {
    /// Every namespace's labels (for namespaceSelector).
    pub namespaces: NamespaceLabels,
    /// The selectors of the Services and workloads selecting the pod, for
    /// the default spreading constraints.
    pub default_selector: Option<Selector>,
}

/// The cross-node filter tallies for one pod (upstream's PreFilter state).
#[derive(Debug, Clone)]
pub struct States {
    spread: Option<spread::FilterState>,
    interpod: Option<interpod::FilterState>,
}

impl States {
    /// Tallies the cluster for `pod`.
    pub fn new(pod: &Arc<PodInfo>, cache: &Cache, ctx: &Context) -> Self {
        States {
            spread: spread::FilterState::new(pod, cache, ctx.default_selector.as_ref()),
            interpod: interpod::FilterState::new(pod, cache, &ctx.namespaces),
        }
    }

    /// Accounts for `pod` joining (`by` = 1) or leaving (−1) `info`.
    pub fn update(&mut self, pod: &PodInfo, info: &NodeInfo, by: i64) {
        if let Some(s) = self.spread.as_mut() {
            s.update(pod, info, by);
        }
        if let Some(s) = self.interpod.as_mut() {
            s.update(pod, info, by);
        }
    }
}

/// Every filter on one node; the reasons from the first that fails.
pub fn run_filters(pod: &PodInfo, info: &NodeInfo, states: &States) -> Vec<Unfit> {
    let unfit = filters::check(pod, info);
    if !unfit.is_empty() {
        return unfit;
    }
    if let Some(s) = &states.spread
        && let Err(v) = s.check(info)
    {
        return vec![match v {
            spread::Violation::MissingLabel => Unfit::SpreadMissingLabel,
            spread::Violation::Skew => Unfit::Spread,
        }];
    }
    if let Some(s) = &states.interpod
        && let Err(v) = s.check(info)
    {
        return vec![match v {
            interpod::Violation::Affinity => Unfit::PodAffinity,
            interpod::Violation::AntiAffinity => Unfit::PodAntiAffinity,
            interpod::Violation::ExistingAntiAffinity => Unfit::ExistingAntiAffinity,
        }];
    }
    Vec::new()
}

/// [`run_filters`], first as if the pods nominated to the node with at
/// least the pod's priority already ran there (room preemption freed for
/// them is not taken from them), then as it is.
pub fn run_filters_with_nominated(
    pod: &PodInfo,
    info: &NodeInfo,
    states: &States,
    cache: &Cache,
) -> Vec<Unfit> {
    let nominated: Vec<_> = cache
        .nominated_on(&info.name, &pod.key)
        .filter(|p| p.priority >= pod.priority)
        .cloned()
        .collect();
    if !nominated.is_empty() {
        let mut info = info.clone();
        let mut states = states.clone();
        for p in nominated {
            info.add_pod(p.clone());
            states.update(&p, &info, 1);
        }
        let unfit = run_filters(pod, &info, &states);
        if !unfit.is_empty() {
            return unfit;
        }
    }
    run_filters(pod, info, states)
}

/// Why no node fits: the reasons per node that failed.
#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    pub total: usize,
    pub unfit: BTreeMap<String, Vec<Unfit>>,
}

impl Diagnosis {
    /// Upstream's FitError text: per-reason node counts, then `post_filter` (what preemption said) if any.
    pub fn message(&self, post_filter: &str) -> String {
        if self.total == 0 {
            return "no nodes available to schedule pods".to_string();
        }
        let mut message = format!(
            "0/{} nodes are available: {}.",
            self.total,
            histogram(self.unfit.values().flatten().map(Unfit::reason))
        );
        if !post_filter.is_empty() {
            message.push(' ');
            message.push_str(post_filter);
        }
        message
    }
}

/// `N reason` per distinct reason, comma-separated, sorted as strings (as
/// upstream's `sortReasonsHistogram`, so by count first).
pub fn histogram(reasons: impl Iterator<Item = String>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut listed: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    listed.sort();
    listed.join(", ")
}

/// The best node for `pod`, or why there is none.
pub fn find_node(pod: &Arc<PodInfo>, cache: &Cache, ctx: &Context) -> Result<String, Diagnosis> {
    let states = States::new(pod, cache, ctx);
    let mut diagnosis = Diagnosis::default();
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    for info in cache.nodes() {
        diagnosis.total += 1;
        let unfit = run_filters_with_nominated(pod, info, &states, cache);
        if unfit.is_empty() {
            feasible.push(info);
        } else {
            diagnosis.unfit.insert(info.name.clone(), unfit);
        }
    }
    match feasible.as_slice() {
        [] => Err(diagnosis),
        [only] => Ok(only.name.clone()),
        _ => {
            let scores = scores(pod, &feasible, cache, ctx);
            let mut best = 0;
            for (i, s) in scores.iter().enumerate() {
                // Nodes come sorted by name: ties go to the first.
                if *s > scores[best] {
                    best = i;
                }
            }
            Ok(feasible[best].name.clone())
        }
    }
}

/// The total weighted score of each feasible node.
pub fn scores(pod: &PodInfo, feasible: &[&NodeInfo], cache: &Cache, ctx: &Context) -> Vec<i64> {
    let n = feasible.len();
    let total_nodes = cache.node_count();
    let mut totals = vec![0i64; n];
    let mut taints = Vec::with_capacity(n);
    let mut node_affinity = Vec::with_capacity(n);
    let images = score::pod_images(&pod.pod);
    for (i, info) in feasible.iter().enumerate() {
        let requested = info.usage.non_zero.plus(pod.non_zero);
        totals[i] += score::resources(info.allocatable, requested);
        totals[i] +=
            Weights::IMAGE_LOCALITY * score::image_locality(&images, info, cache, total_nodes);
        taints.push(score::intolerable_taints(&pod.pod, &info.taints));
        node_affinity.push(match info.node.as_deref() {
            Some(node) => score::preferred_node_affinity(&pod.pod, node),
            None => 0,
        });
    }
    score::normalize(&mut taints, true);
    score::normalize(&mut node_affinity, false);
    for i in 0..n {
        totals[i] +=
            Weights::TAINT_TOLERATION * taints[i] + Weights::NODE_AFFINITY * node_affinity[i];
    }
    if let Some(state) =
        spread::ScoreState::new(pod, feasible, cache, ctx.default_selector.as_ref())
    {
        let raw: Vec<Option<i64>> = feasible.iter().map(|info| state.raw(info)).collect();
        for (i, s) in spread::normalize(&raw).into_iter().enumerate() {
            totals[i] += Weights::TOPOLOGY_SPREAD * s;
        }
    }
    let state = interpod::ScoreState::new(pod, cache, &ctx.namespaces);
    if !state.is_empty() {
        let mut raw: Vec<i64> = feasible.iter().map(|info| state.raw(info)).collect();
        interpod::normalize(&mut raw);
        for (i, s) in raw.into_iter().enumerate() {
            totals[i] += Weights::INTER_POD_AFFINITY * s;
        }
    }
    totals
}
