//! What a StatefulSet sync does next, decided from a snapshot of its pods
//! without any I/O, in upstream's order: replace failed pods and create
//! missing ones from the lowest ordinal up, delete condemned pods (ordinals
//! past the replicas) from the highest down, then roll pods that are not at
//! the update revision from the highest ordinal down to the partition.
//! Under `OrderedReady` each step waits for the pods before it to be
//! Running and Ready; under `Parallel` creation and deletion do not wait.

/// One pod of the set as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub ordinal: i32,
    pub name: String,
    /// The `controller-revision-hash` label.
    pub revision: String,
    pub terminating: bool,
    /// Phase Failed or Succeeded: it will not run again.
    pub finished: bool,
    /// Running and Ready (for minReadySeconds).
    pub healthy: bool,
}

/// The rolling update settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolling {
    pub partition: i32,
    /// `None` unless `maxUnavailable` is set: then one pod at a time,
    /// waiting for each to be healthy, as upstream without the feature.
    pub max_unavailable: Option<i32>,
}

/// The set's shape and revisions.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub start: i32,
    pub replicas: i32,
    pub parallel: bool,
    /// `None` for OnDelete.
    pub rolling: Option<Rolling>,
    pub current_revision: String,
    pub update_revision: String,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pod of this ordinal from this revision (its claims first).
    Create { ordinal: i32, revision: String },
    /// Delete a pod that failed or finished (it is recreated next).
    Replace { name: String },
    /// Delete a pod past the replicas.
    Condemn { name: String, ordinal: i32 },
    /// Delete a pod at an old revision (it is recreated at the new one).
    Update { name: String },
}

/// The revision a new pod of `ordinal` is made from: the current one below
/// the partition of a rolling update, the update revision otherwise.
pub fn revision_for(inputs: &Inputs, ordinal: i32) -> &str {
    match inputs.rolling {
        Some(r) if ordinal < inputs.start + r.partition => &inputs.current_revision,
        _ => &inputs.update_revision,
    }
}

/// The steps to take now, given the pods that exist.
pub fn plan(inputs: &Inputs, pods: &[PodView]) -> Vec<Action> {
    let end = inputs.start + inputs.replicas.max(0);
    let at = |ord: i32| pods.iter().find(|p| p.ordinal == ord);
    let mut actions = Vec::new();
    let monotonic = !inputs.parallel;

    for ord in inputs.start..end {
        match at(ord) {
            None => {
                actions.push(Action::Create {
                    ordinal: ord,
                    revision: revision_for(inputs, ord).to_string(),
                });
                if monotonic {
                    return actions;
                }
            }
            Some(p) if p.finished && !p.terminating => {
                actions.push(Action::Replace {
                    name: p.name.clone(),
                });
                if monotonic {
                    return actions;
                }
            }
            Some(p) if monotonic && (p.terminating || !p.healthy) => return actions,
            Some(_) => {}
        }
    }

    let mut condemned: Vec<&PodView> = pods
        .iter()
        .filter(|p| p.ordinal < inputs.start || p.ordinal >= end)
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(p.ordinal));
    // Upstream's first unhealthy pod: replicas upwards, then the condemned
    // downwards. Only it may go while unhealthy; others wait for it.
    let first_unhealthy = (inputs.start..end)
        .filter_map(at)
        .chain(condemned.iter().copied())
        .find(|p| !p.healthy || p.terminating)
        .map(|p| p.name.clone());
    for p in &condemned {
        if p.terminating {
            if monotonic {
                return actions;
            }
            continue;
        }
        if monotonic && !p.healthy && first_unhealthy.as_ref() != Some(&p.name) {
            return actions;
        }
        actions.push(Action::Condemn {
            name: p.name.clone(),
            ordinal: p.ordinal,
        });
        if monotonic {
            return actions;
        }
    }
    if !condemned.is_empty() && monotonic {
        return actions;
    }

    let Some(rolling) = inputs.rolling else {
        return actions;
    };
    let update_min = inputs.start + rolling.partition.max(0);
    let outdated = |p: &PodView| p.revision != inputs.update_revision && !p.terminating;
    match rolling.max_unavailable {
        None => {
            for ord in (update_min.max(inputs.start)..end).rev() {
                let Some(p) = at(ord) else { continue };
                if outdated(p) {
                    actions.push(Action::Update {
                        name: p.name.clone(),
                    });
                    return actions;
                }
                if !p.healthy || p.terminating {
                    return actions;
                }
            }
        }
        Some(max) => {
            let unavailable = (inputs.start..end)
                .filter(|o| at(*o).is_none_or(|p| !p.healthy || p.terminating))
                .count() as i32;
            let mut room = max.max(1) - unavailable;
            for ord in (update_min.max(inputs.start)..end).rev() {
                if room <= 0 {
                    break;
                }
                let Some(p) = at(ord) else { continue };
                if outdated(p) {
                    actions.push(Action::Update {
                        name: p.name.clone(),
                    });
                    if p.healthy {
                        room -= 1;
                    }
                }
            }
        }
    }
    actions
}

/// The counts a set's status reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
}

/// Upstream's status counts over every pod of the set: `ready` and
/// `available` are given per pod since minReadySeconds decides the latter.
pub fn counts(pods: &[(PodView, bool, bool)], current: &str, update: &str) -> Counts {
    let mut c = Counts::default();
    for (p, ready, available) in pods {
        c.replicas += 1;
        if *ready {
            c.ready += 1;
        }
        if *available {
            c.available += 1;
        }
        if !p.terminating {
            if p.revision == current {
                c.current += 1;
            }
            if p.revision == update {
                c.updated += 1;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ordinal: i32, revision: &str, healthy: bool) -> PodView {
        PodView {
            ordinal,
            name: format!("web-{ordinal}"),
            revision: revision.into(),
            terminating: false,
            finished: false,
            healthy,
        }
    }

    fn inputs(replicas: i32, parallel: bool, rolling: Option<Rolling>) -> Inputs {
        Inputs {
            start: 0,
            replicas,
            parallel,
            rolling,
            current_revision: "web-old".into(),
            update_revision: "web-new".into(),
        }
    }

    const ROLL: Option<Rolling> = Some(Rolling {
        partition: 0,
        max_unavailable: None,
    });

    fn create(ordinal: i32, revision: &str) -> Action {
        Action::Create {
            ordinal,
            revision: revision.into(),
        }
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_after_the_previous_is_ready() {
        let i = inputs(3, false, ROLL);
        assert_eq!(plan(&i, &[]), [create(0, "web-new")]);
        assert_eq!(plan(&i, &[pod(0, "web-new", false)]), []);
        assert_eq!(plan(&i, &[pod(0, "web-new", true)]), [create(1, "web-new")]);
        let all = [
            pod(0, "web-new", true),
            pod(1, "web-new", true),
            pod(2, "web-new", true),
        ];
        assert_eq!(plan(&i, &all), []);
    }

    #[test]
    fn parallel_creates_and_deletes_everything_at_once() {
        let i = inputs(3, true, ROLL);
        assert_eq!(
            plan(&i, &[pod(1, "web-new", false)]),
            [create(0, "web-new"), create(2, "web-new")]
        );
        let i = inputs(1, true, ROLL);
        let pods = [
            pod(0, "web-new", false),
            pod(1, "web-new", true),
            pod(2, "web-new", true),
        ];
        let names: Vec<String> = plan(&i, &pods)
            .into_iter()
            .filter_map(|a| match a {
                Action::Condemn { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["web-2", "web-1"]);
    }

    #[test]
    fn scale_down_removes_the_highest_ordinal_first_and_waits() {
        let i = inputs(1, false, ROLL);
        let pods = [
            pod(0, "web-new", true),
            pod(1, "web-new", true),
            pod(2, "web-new", true),
        ];
        assert_eq!(
            plan(&i, &pods),
            [Action::Condemn {
                name: "web-2".into(),
                ordinal: 2
            }]
        );
        let mut terminating = pods.clone();
        terminating[2].terminating = true;
        assert_eq!(plan(&i, &terminating), [], "waits for web-2 to go");
        let mut unhealthy = pods[..2].to_vec();
        unhealthy[0].healthy = false;
        assert_eq!(plan(&i, &unhealthy), [], "waits while web-0 is not ready");
        let i = inputs(0, false, ROLL);
        let mut broken = pods.clone();
        broken[1].healthy = false;
        assert_eq!(
            plan(&i, &broken),
            [Action::Condemn {
                name: "web-2".into(),
                ordinal: 2
            }],
            "a healthy condemned pod goes"
        );
        broken[2].healthy = false;
        assert_eq!(
            plan(&i, &broken),
            [Action::Condemn {
                name: "web-2".into(),
                ordinal: 2
            }],
            "an unhealthy one goes when it is the first unhealthy pod"
        );
    }

    #[test]
    fn rolling_update_goes_from_the_top_and_stops_at_the_partition() {
        let i = inputs(
            3,
            false,
            Some(Rolling {
                partition: 1,
                max_unavailable: None,
            }),
        );
        let old = [
            pod(0, "web-old", true),
            pod(1, "web-old", true),
            pod(2, "web-old", true),
        ];
        assert_eq!(
            plan(&i, &old),
            [Action::Update {
                name: "web-2".into()
            }]
        );
        assert_eq!(
            plan(&i, &old[..2]),
            [create(2, "web-new")],
            "recreated at the update revision"
        );
        let mut next = old.clone();
        next[2] = pod(2, "web-new", false);
        assert_eq!(plan(&i, &next), [], "waits for web-2 to be ready");
        next[2].healthy = true;
        assert_eq!(
            plan(&i, &next),
            [Action::Update {
                name: "web-1".into()
            }]
        );
        next[1] = pod(1, "web-new", true);
        assert_eq!(plan(&i, &next), [], "web-0 is below the partition");
        assert_eq!(
            plan(&i, &next[1..]),
            [create(0, "web-old")],
            "a pod below the partition is recreated at the current revision"
        );
    }

    #[test]
    fn max_unavailable_rolls_several_at_once() {
        let i = inputs(
            4,
            true,
            Some(Rolling {
                partition: 0,
                max_unavailable: Some(2),
            }),
        );
        let old: Vec<PodView> = (0..4).map(|o| pod(o, "web-old", true)).collect();
        assert_eq!(
            plan(&i, &old),
            [
                Action::Update {
                    name: "web-3".into()
                },
                Action::Update {
                    name: "web-2".into()
                }
            ]
        );
        let mut one_down = old.clone();
        one_down[3] = pod(3, "web-new", false);
        assert_eq!(
            plan(&i, &one_down),
            [Action::Update {
                name: "web-2".into()
            }]
        );
    }

    #[test]
    fn on_delete_never_deletes_for_an_update_and_failed_pods_are_replaced() {
        let i = inputs(2, false, None);
        let pods = [pod(0, "web-old", true), pod(1, "web-old", true)];
        assert_eq!(plan(&i, &pods), []);
        assert_eq!(plan(&i, &pods[1..]), [create(0, "web-new")]);
        let mut failed = pods.clone();
        failed[0].finished = true;
        assert_eq!(
            plan(&i, &failed),
            [Action::Replace {
                name: "web-0".into()
            }]
        );
    }

    #[test]
    fn counts_follow_revisions_and_skip_terminating_pods() {
        let mut gone = pod(2, "web-new", false);
        gone.terminating = true;
        let pods = [
            (pod(0, "web-old", true), true, true),
            (pod(1, "web-new", true), true, false),
            (gone, false, false),
        ];
        assert_eq!(
            counts(&pods, "web-old", "web-new"),
            Counts {
                replicas: 3,
                ready: 2,
                available: 1,
                current: 1,
                updated: 1
            }
        );
    }
}
