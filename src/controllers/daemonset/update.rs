//! What a DaemonSet sync does, decided without I/O, after upstream's
//! `manage`, `rollingUpdate` and `updateDaemonSetStatus`: a pod for every
//! node that should run one, none on nodes that must not, failed pods
//! replaced, extra pods removed; then old pods replaced within maxUnavailable
//! (delete first) or maxSurge (create the new pod first, delete the old one
//! once the new is available).

use std::collections::BTreeMap;

/// A node as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    pub should_run: bool,
    pub should_continue: bool,
}

/// A daemon pod as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    /// The node it is for (see `eligibility::target_node`).
    pub node: Option<String>,
    /// At the DaemonSet's current template.
    pub updated: bool,
    pub ready: bool,
    /// Ready for minReadySeconds.
    pub available: bool,
    pub terminating: bool,
    /// Failed or Succeeded.
    pub finished: bool,
    /// Creation order (oldest first): seconds, then name.
    pub created: (i64, String),
}

/// Pods to create (by node) and to delete (by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub create_on: Vec<String>,
    pub delete: Vec<String>,
    /// Pods whose node is gone: deleted at once, no kubelet will finish them.
    pub delete_now: Vec<String>,
}

fn by_node(pods: &[PodView]) -> BTreeMap<Option<&str>, Vec<&PodView>> {
    let mut map: BTreeMap<Option<&str>, Vec<&PodView>> = BTreeMap::new();
    for p in pods {
        map.entry(p.node.as_deref()).or_default().push(p);
    }
    for list in map.values_mut() {
        list.sort_by(|a, b| a.created.cmp(&b.created));
    }
    map
}

/// Upstream's `manage`: the pods every node should have.
pub fn manage(nodes: &[NodeView], pods: &[PodView], surge: bool) -> Plan {
    let map = by_node(pods);
    let mut plan = Plan::default();
    for node in nodes {
        let here = map
            .get(&Some(node.name.as_str()))
            .cloned()
            .unwrap_or_default();
        if node.should_run && here.is_empty() {
            plan.create_on.push(node.name.clone());
        } else if node.should_continue {
            let mut running = Vec::new();
            for p in here.iter().filter(|p| !p.terminating) {
                if p.finished {
                    plan.delete.push(p.name.clone());
                } else {
                    running.push(*p);
                }
            }
            if !surge {
                plan.delete
                    .extend(running.iter().skip(1).map(|p| p.name.clone()));
                continue;
            }
            // With surge, keep the oldest new and the oldest old pod only.
            let oldest_new = running.iter().find(|p| p.updated);
            let oldest_old = running.iter().find(|p| !p.updated);
            for p in &running {
                let keep = oldest_new.is_some_and(|n| n.name == p.name)
                    || oldest_old.is_some_and(|o| o.name == p.name);
                if !keep {
                    plan.delete.push(p.name.clone());
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                && (!old.ready || new.available)
            {
                plan.delete.push(old.name.clone());
            }
        } else {
            plan.delete.extend(
                here.iter()
                    .filter(|p| !p.terminating)
                    .map(|p| p.name.clone()),
            );
        }
    }
    for (node, here) in &map {
        let known = node.is_some_and(|n| nodes.iter().any(|k| k.name == n));
        if !known {
            plan.delete_now.extend(
                here.iter()
                    .filter(|p| !p.terminating)
                    .map(|p| p.name.clone()),
            );
        }
    }
    plan
}

/// The new and the old pod on a node (terminating ones aside); `None` when
/// there is more than one of either (manage cleans that up first).
#[allow(clippy::type_complexity)]
fn new_and_old<'a>(here: &[&'a PodView]) -> Option<(Option<&'a PodView>, Option<&'a PodView>)> {
    let (mut new, mut old) = (None, None);
    for p in here.iter().filter(|p| !p.terminating) {
        let slot = if p.updated { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*p);
    }
    Some((new, old))
}

/// Upstream's `rollingUpdate` over the nodes that should run a pod.
pub fn rolling_update(
    nodes: &[NodeView],
    pods: &[PodView],
    max_surge: usize,
    max_unavailable: usize,
) -> Plan {
    let map = by_node(pods);
    let mut plan = Plan::default();
    let wanted = nodes.iter().filter(|n| n.should_run);
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replace_now = Vec::new();
        let mut candidates = Vec::new();
        for node in wanted {
            let here = map
                .get(&Some(node.name.as_str()))
                .cloned()
                .unwrap_or_default();
            match new_and_old(&here) {
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => {
                    if !new.available {
                        unavailable += 1;
                    }
                }
                Some((None, Some(old))) => {
                    if !old.available {
                        replace_now.push(old.name.clone());
                        unavailable += 1;
                    } else if unavailable < max_unavailable {
                        candidates.push(old.name.clone());
                    }
                }
            }
        }
        let room = max_unavailable
            .saturating_sub(unavailable)
            .min(candidates.len());
        plan.delete = replace_now;
        plan.delete.extend(candidates.into_iter().take(room));
        return plan;
    }
    let mut surging = 0;
    let mut replace_now = Vec::new();
    let mut candidates = Vec::new();
    for node in wanted {
        let here = map
            .get(&Some(node.name.as_str()))
            .cloned()
            .unwrap_or_default();
        match new_and_old(&here) {
            None => surging += 1,
            Some((_, None)) => {}
            Some((None, Some(old))) => {
                if old.available {
                    candidates.push(node.name.clone());
                } else {
                    replace_now.push(node.name.clone());
                }
            }
            Some((Some(new), Some(old))) => {
                if new.available {
                    plan.delete.push(old.name.clone());
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = max_surge.saturating_sub(surging).min(candidates.len());
    plan.create_on = replace_now;
    plan.create_on.extend(candidates.into_iter().take(room));
    plan
}

/// A DaemonSet's status counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
}

/// Upstream's counts: per node, its oldest pod decides ready, available
/// and updated.
pub fn counts(nodes: &[NodeView], pods: &[PodView]) -> Counts {
    let relevant: Vec<PodView> = pods
        .iter()
        .filter(|p| !(p.terminating && p.finished))
        .cloned()
        .collect();
    let map = by_node(&relevant);
    let mut c = Counts::default();
    for node in nodes {
        let here = map.get(&Some(node.name.as_str()));
        let scheduled = here.is_some_and(|h| !h.is_empty());
        if !node.should_run {
            if scheduled {
                c.misscheduled += 1;
            }
            continue;
        }
        c.desired += 1;
        let Some(oldest) = here.and_then(|h| h.first()) else {
            continue;
        };
        c.current += 1;
        if oldest.ready {
            c.ready += 1;
            if oldest.available {
                c.available += 1;
            }
        }
        if oldest.updated {
            c.updated += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, should_run: bool, should_continue: bool) -> NodeView {
        NodeView {
            name: name.into(),
            should_run,
            should_continue,
        }
    }

    fn pod(name: &str, node: &str, updated: bool, available: bool, created: i64) -> PodView {
        PodView {
            name: name.into(),
            node: Some(node.into()),
            updated,
            ready: available,
            available,
            terminating: false,
            finished: false,
            created: (created, name.into()),
        }
    }

    #[test]
    fn every_eligible_node_gets_one_pod() {
        let nodes = [
            node("a", true, true),
            node("b", true, true),
            node("c", false, true),
            node("d", false, false),
        ];
        let pods = [
            pod("p1", "b", true, true, 1),
            pod("p2", "b", true, true, 2),
            pod("p3", "c", true, true, 1),
            pod("p4", "d", true, true, 1),
            pod("p5", "gone", true, true, 1),
        ];
        let plan = manage(&nodes, &pods, false);
        assert_eq!(plan.create_on, ["a"]);
        assert_eq!(plan.delete, ["p2", "p4"], "the extra and the misplaced pod");
        assert_eq!(plan.delete_now, ["p5"], "its node is gone");
    }

    #[test]
    fn failed_pods_are_deleted_and_recreated_after() {
        let nodes = [node("a", true, true)];
        let mut failed = pod("p1", "a", true, false, 1);
        failed.finished = true;
        assert_eq!(manage(&nodes, &[failed.clone()], false).delete, ["p1"]);
        failed.terminating = true;
        let plan = manage(&nodes, &[failed], false);
        assert!(plan.create_on.is_empty() && plan.delete.is_empty());
    }

    #[test]
    fn max_unavailable_limits_the_old_pods_deleted_at_once() {
        let nodes = [
            node("a", true, true),
            node("b", true, true),
            node("c", true, true),
        ];
        let old = [
            pod("pa", "a", false, true, 1),
            pod("pb", "b", false, true, 1),
            pod("pc", "c", false, true, 1),
        ];
        assert_eq!(rolling_update(&nodes, &old, 0, 1).delete, ["pa"]);
        assert_eq!(rolling_update(&nodes, &old, 0, 2).delete, ["pa", "pb"]);
        let mut progress = old.clone();
        progress[0] = pod("na", "a", true, false, 2);
        assert!(
            rolling_update(&nodes, &progress, 0, 1).delete.is_empty(),
            "waits for the new pod on a"
        );
        progress[0].available = true;
        assert_eq!(rolling_update(&nodes, &progress, 0, 1).delete, ["pb"]);
        let mut broken = old.clone();
        broken[2].available = false;
        assert_eq!(
            rolling_update(&nodes, &broken, 0, 1).delete,
            ["pc"],
            "an unavailable old pod goes at once and uses the budget"
        );
    }

    #[test]
    fn max_surge_creates_first_and_deletes_the_old_pod_when_the_new_is_available() {
        let nodes = [node("a", true, true), node("b", true, true)];
        let old = [
            pod("pa", "a", false, true, 1),
            pod("pb", "b", false, true, 1),
        ];
        let plan = rolling_update(&nodes, &old, 1, 0);
        assert_eq!(plan.create_on, ["a"]);
        assert!(plan.delete.is_empty());
        let mut both = old.to_vec();
        both.push(pod("na", "a", true, false, 2));
        assert_eq!(rolling_update(&nodes, &both, 1, 0), Plan::default());
        both[2].available = true;
        let plan = rolling_update(&nodes, &both, 1, 0);
        assert_eq!(plan.delete, ["pa"]);
        assert_eq!(plan.create_on, ["b"]);
        // manage keeps the surge pair until the new pod is available.
        both[2].available = false;
        assert!(manage(&nodes, &both, true).delete.is_empty());
    }

    #[test]
    fn status_counts_the_oldest_pod_per_node() {
        let nodes = [
            node("a", true, true),
            node("b", true, true),
            node("c", false, true),
        ];
        let pods = [
            pod("pa", "a", false, true, 1),
            pod("na", "a", true, true, 2),
            pod("pc", "c", true, true, 1),
        ];
        assert_eq!(
            counts(&nodes, &pods),
            Counts {
                desired: 2,
                current: 1,
                misscheduled: 1,
                ready: 1,
                available: 1,
                updated: 0
            }
        );
    }
}
