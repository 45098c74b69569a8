//! Preemption (upstream's DefaultPreemption): when a pod fits nowhere, find
//! a node where evicting pods of lower priority would let it fit, evicting
//! as few and as unimportant ones as possible.
//!
//! For each node whose failures preemption may cure, every lower-priority
//! pod is taken away in a dry run; if the pod then fits, the victims are
//! given back one at a time, most important first (those whose
//! PodDisruptionBudget would be violated before the others), keeping each
//! one that still lets the pod fit. Among the candidate nodes the winner has
//! the fewest PDB violations, then the lowest highest victim priority, the
//! smallest sum of priorities, the fewest victims, and the latest start of
//! its most important victims.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;

use super::algorithm::{self, Context, Diagnosis, States};
use super::cache::{Cache, PodInfo};
use super::selector::Selector;

/// The DisruptionTarget reason of pods the scheduler preempts.
pub const REASON: &str = "PreemptionByScheduler";

/// A PodDisruptionBudget with a status, as preemption reads it.
#[derive(Debug, Clone)]
pub struct Budget {
    namespace: String,
    selector: Selector,
    allowed: i32,
    disrupted: HashSet<String>,
}

impl Budget {
    /// The budget, or `None` while it has no status (nothing known to spare).
    pub fn new(pdb: &PodDisruptionBudget) -> Option<Self> {
        let status = pdb.status.as_ref()?;
        Some(Budget {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector: Selector::from_api(pdb.spec.as_ref().and_then(|s| s.selector.as_ref())),
            allowed: status.disruptions_allowed,
            disrupted: status
                .disrupted_pods
                .iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect(),
        })
    }
}

/// A node where preemption lets the pod fit, and whom it evicts.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    /// Most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

/// Upstream's `MoreImportantPod`: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| start(a).cmp(&start(b)))
}

fn start(p: &PodInfo) -> Timestamp {
    p.start_time.unwrap_or_else(Timestamp::now)
}

/// Splits pods (in order) into those whose eviction would exceed a budget
/// and the others.
fn split_by_budget(
    pods: Vec<Arc<PodInfo>>,
    budgets: &[Budget],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = budgets.iter().map(|b| b.allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violates = false;
        if !p.labels().is_empty() {
            let name = p.pod.metadata.name.clone().unwrap_or_default();
            for (i, b) in budgets.iter().enumerate() {
                if b.namespace != p.namespace
                    || b.selector.is_empty()
                    || !b.selector.matches(p.labels())
                    || b.disrupted.contains(&name)
                {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violates = true;
                }
            }
        }
        if violates {
            violating.push(p);
        } else {
            fine.push(p);
        }
    }
    (violating, fine)
}

/// Whether the pod may preempt at all; upstream's reason if not.
pub fn eligible(pod: &PodInfo, cache: &Cache, diagnosis: &Diagnosis) -> Result<(), String> {
    let spec = pod.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    let nominated = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(name) = nominated {
        let unresolvable = diagnosis
            .unfit
            .get(name)
            .is_some_and(|u| !u.iter().all(|r| r.preemption_may_help()));
        if !unresolvable
            && let Some(info) = cache.node(name)
            && info
                .pods()
                .any(|p| p.priority < pod.priority && terminating_by_preemption(p))
        {
            return Err("not eligible due to a terminating pod on the nominated node.".into());
        }
    }
    Ok(())
}

fn terminating_by_preemption(p: &PodInfo) -> bool {
    p.terminating()
        && p.pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget"))
            .is_some_and(|c| c.status == "True" && c.reason.as_deref() == Some(REASON))
}

/// The best candidate, or upstream's message for why there is none (to
/// follow `preemption: `).
pub fn find_candidate(
    pod: &Arc<PodInfo>,
    cache: &Cache,
    ctx: &Context,
    diagnosis: &Diagnosis,
    budgets: &[Budget],
) -> Result<Candidate, String> {
    let states = States::new(pod, cache, ctx);
    let mut statuses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut candidates = Vec::new();
    for info in cache.nodes() {
        let helpful = diagnosis
            .unfit
            .get(&info.name)
            .is_none_or(|u| u.iter().all(|r| r.preemption_may_help()));
        if !helpful {
            statuses.insert(
                info.name.clone(),
                vec!["Preemption is not helpful for scheduling".into()],
            );
            continue;
        }
        match select_victims(pod, &info.name, cache, &states, budgets) {
            Ok(c) => candidates.push(c),
            Err(reasons) => {
                statuses.insert(info.name.clone(), reasons);
            }
        }
    }
    candidates.into_iter().min_by(compare).ok_or_else(|| {
        format!(
            "0/{} nodes are available: {}.",
            diagnosis.total,
            algorithm::histogram(statuses.into_values().flatten())
        )
    })
}

/// The dry run on one node: the fewest victims that let the pod fit, or the
/// reasons it cannot.
fn select_victims(
    pod: &Arc<PodInfo>,
    node: &str,
    cache: &Cache,
    states: &States,
    budgets: &[Budget],
) -> Result<Candidate, Vec<String>> {
    let Some(original) = cache.node(node) else {
        return Err(vec!["Preemption is not helpful for scheduling".into()]);
    };
    let mut info = original.clone();
    let mut states = states.clone();
    let mut potential: Vec<Arc<PodInfo>> = original
        .pods()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(vec!["No preemption victims found for incoming pod".into()]);
    }
    for p in &potential {
        info.remove_pod(&p.key);
        states.update(p, &info, -1);
    }
    let unfit = algorithm::run_filters_with_nominated(pod, &info, &states, cache);
    if !unfit.is_empty() {
        return Err(unfit.iter().map(|u| u.reason()).collect());
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, fine) = split_by_budget(potential, budgets);
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    for (p, violates) in violating
        .into_iter()
        .map(|p| (p, true))
        .chain(fine.into_iter().map(|p| (p, false)))
    {
        info.add_pod(p.clone());
        states.update(&p, &info, 1);
        if !algorithm::run_filters_with_nominated(pod, &info, &states, cache).is_empty() {
            info.remove_pod(&p.key);
            states.update(&p, &info, -1);
            if violates {
                pdb_violations += 1;
            }
            victims.push(p);
        }
    }
    victims.sort_by(|a, b| more_important(a, b));
    Ok(Candidate {
        node: node.to_string(),
        victims,
        pdb_violations,
    })
}

/// Upstream's `pickOneNodeForPreemption` order (less is better).
fn compare(a: &Candidate, b: &Candidate) -> Ordering {
    let highest = |c: &Candidate| c.victims.first().map(|p| p.priority).unwrap_or(i32::MIN);
    let sum = |c: &Candidate| {
        c.victims
            .iter()
            .map(|p| i64::from(p.priority) + i64::from(i32::MAX) + 1)
            .sum::<i64>()
    };
    // The earliest start among the victims of the highest priority.
    let earliest = |c: &Candidate| {
        let top = highest(c);
        c.victims
            .iter()
            .filter(|p| p.priority == top)
            .map(|p| start(p))
            .min()
    };
    let no_victims = |c: &Candidate| !c.victims.is_empty();
    no_victims(a)
        .cmp(&no_victims(b))
        .then(a.pdb_violations.cmp(&b.pdb_violations))
        .then(highest(a).cmp(&highest(b)))
        .then(sum(a).cmp(&sum(b)))
        .then(a.victims.len().cmp(&b.victims.len()))
        .then(earliest(b).cmp(&earliest(a)))
}

#[cfg(test)]
mod tests;
