//! Rollout arithmetic against upstream's behaviour.

use k8s_openapi::api::apps::v1::DeploymentSpec;
use serde_json::json;

use super::*;

fn spec(strategy: serde_json::Value) -> DeploymentSpec {
    serde_json::from_value(json!({
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}},
        "strategy": strategy,
    }))
    .expect("spec")
}

fn rs(spec: i32, available: i32, created: i64) -> RsState {
    RsState {
        spec,
        pods: spec,
        available,
        created,
        ..RsState::default()
    }
}

#[test]
fn the_hash_uses_the_safe_alphabet_and_changes_with_the_template() {
    let a = template_hash(&json!({"spec": {"containers": [{"image": "a"}]}}), None);
    let b = template_hash(&json!({"spec": {"containers": [{"image": "b"}]}}), None);
    assert_ne!(a, b);
    assert!(
        a.len() <= 10 && a.bytes().all(|c| SAFE_ALPHABET.contains(&c)),
        "{a}"
    );
    assert_ne!(
        a,
        template_hash(&json!({"spec": {"containers": [{"image": "a"}]}}), Some(1))
    );
}

#[test]
fn percentages_round_as_upstream() {
    let s = spec(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
    );
    assert_eq!(surge_and_unavailable(&s, 10), (3, 2));
    assert_eq!(surge_and_unavailable(&s, 1), (1, 0));
    let zero = spec(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
    );
    assert_eq!(surge_and_unavailable(&zero, 3), (0, 1));
    assert_eq!(
        surge_and_unavailable(&spec(json!({"type": "Recreate"})), 3),
        (0, 0)
    );
    assert_eq!(surge_and_unavailable(&spec(json!(null)), 4), (1, 1));
}

#[test]
fn a_rolling_update_surges_then_scales_old_down_within_budget() {
    let s = spec(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
    );
    // A new ReplicaSet starts at the surge.
    assert_eq!(initial_replicas(&s, 3, 1, &[rs(3, 3, 0)]), 1);
    // At the surge limit, old ones go down by what may be unavailable.
    let p = plan(&s, 3, 1, 1, &rs(1, 0, 10), &[rs(3, 3, 0)]);
    assert_eq!(
        p,
        Plan {
            new_replicas: 1,
            old_replicas: vec![2]
        }
    );
    // Unhealthy old pods go first and do not count against availability.
    let p = plan(&s, 3, 1, 1, &rs(1, 1, 10), &[rs(3, 1, 0)]);
    assert_eq!(p.old_replicas, vec![1]);
    // Scaling a finished deployment only touches the new ReplicaSet.
    assert_eq!(plan(&s, 5, 1, 1, &rs(3, 3, 0), &[]).new_replicas, 5);
    assert_eq!(plan(&s, 2, 1, 1, &rs(3, 3, 0), &[]).new_replicas, 2);
}

#[test]
fn recreate_scales_old_to_zero_before_starting_new() {
    let s = spec(json!({"type": "Recreate"}));
    assert_eq!(
        plan(&s, 3, 0, 0, &rs(0, 0, 10), &[rs(3, 3, 0)]),
        Plan {
            new_replicas: 0,
            old_replicas: vec![0]
        }
    );
    let draining = RsState {
        spec: 0,
        pods: 2,
        ..RsState::default()
    };
    assert_eq!(
        plan(&s, 3, 0, 0, &rs(0, 0, 10), &[draining]).new_replicas,
        0
    );
    assert_eq!(
        plan(&s, 3, 0, 0, &rs(0, 0, 10), &[rs(0, 0, 0)]).new_replicas,
        3
    );
}

#[test]
fn a_resize_mid_rollout_is_shared_in_proportion() {
    let sized = |spec: i32, created: i64| RsState {
        spec,
        pods: spec,
        created,
        desired: Some(4),
        max_replicas: Some(5),
        ..RsState::default()
    };
    // 4 replicas, surge 1: new has 2, old has 3 (5 in all). Scale to 8
    // (surge 2): 10 allowed, 5 to add, shared 2:3 by size.
    let all = [sized(2, 10), sized(3, 0)];
    assert!(is_scaling_event(8, &all));
    assert!(!is_scaling_event(4, &all));
    let out = proportional(8, 2, 5, &all);
    assert_eq!(out.iter().sum::<i32>(), 10);
    assert_eq!(out, vec![4, 6]);
    // Down to 2 (surge 1): 3 allowed.
    let out = proportional(2, 1, 5, &all);
    assert_eq!(out.iter().sum::<i32>(), 3);
    assert!(out.iter().all(|n| *n >= 0));
    // One active ReplicaSet takes the size alone.
    assert_eq!(
        proportional(7, 2, 4, &[sized(4, 10), sized(0, 0)]),
        vec![7, 0]
    );
}
