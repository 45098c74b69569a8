//! Inter-pod affinity (upstream's InterPodAffinity plugin): the required
//! terms filter nodes by the pods already in each topology domain, the
//! preferred ones (and existing pods' terms towards the incoming pod) score
//! them.
//!
//! The filter keeps three tallies per (topologyKey, value) pair, as upstream
//! does: pods matching all of the incoming pod's affinity terms, pods
//! matching one of its anti-affinity terms, and existing pods whose required
//! anti-affinity matches the incoming pod. Preemption's dry runs adjust them
//! with [`FilterState::update`] when they take pods away or put them back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use super::cache::{Cache, NodeInfo, PodInfo};
use super::selector::Selector;

/// The label sets of namespaces, by name (for namespaceSelector).
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// One pod affinity term, compiled.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    pub selector: Selector,
    pub namespaces: BTreeSet<String>,
    pub namespace_selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn new(term: &PodAffinityTerm, pod: &Pod) -> Self {
        let labels = pod.metadata.labels.as_ref();
        let mut selector = Selector::from_api(term.label_selector.as_ref());
        if term.label_selector.is_some() {
            // matchLabelKeys / mismatchLabelKeys: the incoming pod's own values.
            for (keys, equal) in [
                (&term.match_label_keys, true),
                (&term.mismatch_label_keys, false),
            ] {
                for key in keys.iter().flatten() {
                    if let Some(value) = labels.and_then(|l| l.get(key)) {
                        selector.require(key, value, equal);
                    }
                }
            }
        }
        let mut namespaces: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.insert(pod.metadata.namespace.clone().unwrap_or_default());
        }
        AffinityTerm {
            selector,
            namespaces,
            namespace_selector: Selector::from_api(term.namespace_selector.as_ref()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether `pod` (in a namespace labelled `ns_labels`) matches the term.
    pub fn matches(&self, pod: &PodInfo, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
        let in_namespace = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .matches(ns_labels.unwrap_or(&NO_LABELS));
        in_namespace && self.selector.matches(pod.labels())
    }

    /// Folds the namespaces the namespaceSelector selects into the names (as
    /// upstream's PreFilter does for the incoming pod's terms).
    fn merge_namespaces(&mut self, namespaces: &NamespaceLabels) {
        // Like upstream, an empty selector (all namespaces) stays as it is.
        if self.namespace_selector.is_empty() {
            return;
        }
        for (name, labels) in namespaces {
            if self.namespace_selector.matches(labels) {
                self.namespaces.insert(name.clone());
            }
        }
        self.namespace_selector = Selector::nothing();
    }
}

/// A preferred term with its weight.
#[derive(Debug, Clone)]
pub struct WeightedTerm {
    pub term: AffinityTerm,
    pub weight: i64,
}

/// A pod's inter-pod affinity, compiled.
#[derive(Debug, Clone, Default)]
pub struct PodAffinity {
    pub required: Vec<AffinityTerm>,
    pub required_anti: Vec<AffinityTerm>,
    pub preferred: Vec<WeightedTerm>,
    pub preferred_anti: Vec<WeightedTerm>,
}

impl PodAffinity {
    /// The pod's terms.
    pub fn of(pod: &Pod) -> Self {
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let aff = affinity.and_then(|a| a.pod_affinity.as_ref());
        let anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, pod))
                .collect()
        };
        let preferred = |terms: Option<&Vec<WeightedPodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| WeightedTerm {
                    term: AffinityTerm::new(&t.pod_affinity_term, pod),
                    weight: i64::from(t.weight),
                })
                .collect()
        };
        PodAffinity {
            required: required(aff.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti: required(anti.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred: preferred(aff.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti: preferred(anti.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
        }
    }

    /// Whether the pod has any inter-pod affinity term at all.
    pub fn any(&self) -> bool {
        !(self.required.is_empty()
            && self.required_anti.is_empty()
            && self.preferred.is_empty()
            && self.preferred_anti.is_empty())
    }

    /// Resolves the namespaceSelectors of every term against `namespaces`.
    pub fn merge_namespaces(&mut self, namespaces: &NamespaceLabels) {
        for t in self
            .required
            .iter_mut()
            .chain(self.required_anti.iter_mut())
        {
            t.merge_namespaces(namespaces);
        }
        for t in self
            .preferred
            .iter_mut()
            .chain(self.preferred_anti.iter_mut())
        {
            t.term.merge_namespaces(namespaces);
        }
    }
}

type Counts = HashMap<(String, String), i64>;

fn bump(counts: &mut Counts, info: &NodeInfo, key: &str, by: i64) {
    if let Some(value) = info.labels().get(key) {
        let pair = (key.to_string(), value.clone());
        let n = counts.entry(pair.clone()).or_default();
        *n += by;
        if *n == 0 {
            counts.remove(&pair);
        }
    }
}

/// Whether `pod` matches every term (and there is at least one).
fn matches_all(terms: &[AffinityTerm], pod: &PodInfo) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, None))
}

/// Why a node fails the inter-pod affinity filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Affinity,
    AntiAffinity,
    ExistingAntiAffinity,
}

/// The PreFilter tallies for one incoming pod.
#[derive(Debug, Clone)]
pub struct FilterState {
    incoming: Arc<PodInfo>,
    /// The incoming pod's terms with namespaceSelectors resolved.
    affinity: PodAffinity,
    /// The labels of the incoming pod's namespace.
    ns_labels: Option<BTreeMap<String, String>>,
    /// Matches of all required affinity terms, by topology pair.
    affinity_counts: Counts,
    /// Matches of any required anti-affinity term.
    anti_affinity_counts: Counts,
    /// Existing pods whose required anti-affinity the incoming pod matches.
    existing_anti_affinity_counts: Counts,
}

impl FilterState {
    /// Tallies the cluster for `pod`; `None` when nothing constrains it.
    pub fn new(pod: &Arc<PodInfo>, cache: &Cache, namespaces: &NamespaceLabels) -> Option<Self> {
        let mut affinity = pod.affinity.clone();
        affinity.merge_namespaces(namespaces);
        let own_terms = !affinity.required.is_empty() || !affinity.required_anti.is_empty();
        let mut state = FilterState {
            incoming: pod.clone(),
            affinity,
            ns_labels: namespaces.get(&pod.namespace).cloned(),
            affinity_counts: Counts::new(),
            anti_affinity_counts: Counts::new(),
            existing_anti_affinity_counts: Counts::new(),
        };
        for info in cache.nodes() {
            if info.required_anti_pods == 0 && !own_terms {
                continue;
            }
            for existing in info.pods() {
                state.update(existing, info, 1);
            }
        }
        if state.existing_anti_affinity_counts.is_empty() && !own_terms {
            return None;
        }
        Some(state)
    }

    /// Accounts for `pod` being on `info` (`by` = 1) or leaving it (−1).
    pub fn update(&mut self, pod: &PodInfo, info: &NodeInfo, by: i64) {
        for t in &pod.affinity.required_anti {
            if t.matches(&self.incoming, self.ns_labels.as_ref()) {
                bump(
                    &mut self.existing_anti_affinity_counts,
                    info,
                    &t.topology_key,
                    by,
                );
            }
        }
        if matches_all(&self.affinity.required, pod) {
            for t in &self.affinity.required {
                bump(&mut self.affinity_counts, info, &t.topology_key, by);
            }
        }
        for t in &self.affinity.required_anti {
            if t.matches(pod, None) {
                bump(&mut self.anti_affinity_counts, info, &t.topology_key, by);
            }
        }
    }

    /// Whether `info` passes; the first violated rule otherwise.
    pub fn check(&self, info: &NodeInfo) -> Result<(), Violation> {
        let labels = info.labels();
        let mut pods_exist = true;
        for t in &self.affinity.required {
            let Some(value) = labels.get(&t.topology_key) else {
                return Err(Violation::Affinity);
            };
            let pair = (t.topology_key.clone(), value.clone());
            if self.affinity_counts.get(&pair).copied().unwrap_or(0) <= 0 {
                pods_exist = false;
            }
        }
        // The first pod of a group with affinity to itself may go anywhere.
        let first_of_group =
            self.affinity_counts.is_empty() && matches_all(&self.affinity.required, &self.incoming);
        if !pods_exist && !first_of_group {
            return Err(Violation::Affinity);
        }
        if !self.anti_affinity_counts.is_empty() {
            for t in &self.affinity.required_anti {
                if let Some(value) = labels.get(&t.topology_key)
                    && self
                        .anti_affinity_counts
                        .get(&(t.topology_key.clone(), value.clone()))
                        .is_some_and(|n| *n > 0)
                {
                    return Err(Violation::AntiAffinity);
                }
            }
        }
        if !self.existing_anti_affinity_counts.is_empty() {
            for (k, v) in labels {
                if self
                    .existing_anti_affinity_counts
                    .get(&(k.clone(), v.clone()))
                    .is_some_and(|n| *n > 0)
                {
                    return Err(Violation::ExistingAntiAffinity);
                }
            }
        }
        Ok(())
    }
}

/// The preferred-term tallies: weight by topology key and value.
#[derive(Debug, Default)]
pub struct ScoreState {
    weights: HashMap<String, HashMap<String, i64>>,
}

impl ScoreState {
    /// Adds up, for `pod`, its preferred terms over existing pods and the
    /// existing pods' terms over it (required affinity at weight 1).
    pub fn new(pod: &PodInfo, cache: &Cache, namespaces: &NamespaceLabels) -> Self {
        let mut affinity = pod.affinity.clone();
        affinity.merge_namespaces(namespaces);
        let ns_labels = namespaces.get(&pod.namespace);
        let own = !affinity.preferred.is_empty() || !affinity.preferred_anti.is_empty();
        let mut state = ScoreState::default();
        for info in cache.nodes() {
            if !own && info.affinity_pods == 0 {
                continue;
            }
            if info.labels().is_empty() {
                continue;
            }
            for existing in info.pods() {
                if !own && !existing.affinity.any() {
                    continue;
                }
                for t in &affinity.preferred {
                    state.add(&t.term, t.weight, existing, None, info);
                }
                for t in &affinity.preferred_anti {
                    state.add(&t.term, -t.weight, existing, None, info);
                }
                for t in &existing.affinity.required {
                    state.add(t, 1, pod, ns_labels, info);
                }
                for t in &existing.affinity.preferred {
                    state.add(&t.term, t.weight, pod, ns_labels, info);
                }
                for t in &existing.affinity.preferred_anti {
                    state.add(&t.term, -t.weight, pod, ns_labels, info);
                }
            }
        }
        state
    }

    fn add(
        &mut self,
        term: &AffinityTerm,
        weight: i64,
        pod: &PodInfo,
        ns_labels: Option<&BTreeMap<String, String>>,
        info: &NodeInfo,
    ) {
        if term.matches(pod, ns_labels)
            && let Some(value) = info.labels().get(&term.topology_key)
        {
            *self
                .weights
                .entry(term.topology_key.clone())
                .or_default()
                .entry(value.clone())
                .or_default() += weight;
        }
    }

    /// Whether no term applies anywhere (the plugin then scores nothing).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The raw score of a node: the weights of the domains it is in.
    pub fn raw(&self, info: &NodeInfo) -> i64 {
        let labels = info.labels();
        self.weights
            .iter()
            .filter_map(|(k, values)| labels.get(k).and_then(|v| values.get(v)))
            .sum()
    }
}

/// Upstream's min-max normalisation of inter-pod affinity scores to 0..=100.
pub fn normalize(scores: &mut [i64]) {
    let (Some(min), Some(max)) = (scores.iter().min().copied(), scores.iter().max().copied())
    else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            (100.0 * ((*s - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests;
