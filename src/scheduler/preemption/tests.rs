//! Victim selection and node choice with upstream's rules.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;
use crate::scheduler::algorithm::{Context, find_node};
use crate::scheduler::testing::{cache, info, node, on, pod, requests};

fn with_priority(mut p: Pod, priority: i32, started: &str) -> Pod {
    p.spec.as_mut().expect("spec").priority = Some(priority);
    let status = json!({"startTime": started});
    p.status = Some(serde_json::from_value(status).expect("status"));
    p
}

fn low(name: &str, cpu: &str, priority: i32, node: &str) -> Pod {
    on(
        with_priority(
            pod(name, json!({"app": name}), requests(cpu)),
            priority,
            "2026-01-01T00:00:00Z",
        ),
        node,
    )
}

fn preemptor(cpu: &str) -> Arc<PodInfo> {
    info(&with_priority(
        pod("vip", json!({}), requests(cpu)),
        1000,
        "2026-01-01T00:00:00Z",
    ))
}

fn run(cache: &Cache, pod: &Arc<PodInfo>, budgets: &[Budget]) -> Result<Candidate, String> {
    let ctx = Context::default();
    let diagnosis = find_node(pod, cache, &ctx).expect_err("does not fit");
    eligible(pod, cache, &diagnosis)?;
    find_candidate(pod, cache, &ctx, &diagnosis, budgets)
}

fn names(c: &Candidate) -> Vec<String> {
    c.victims.iter().map(|v| v.key.clone()).collect()
}

#[test]
fn the_fewest_and_least_important_victims_on_the_best_node() {
    let nodes = vec![node("n0", json!({})), node("n1", json!({}))];
    let pods = [
        low("a", "1", 10, "n0"),
        low("b", "1", 20, "n0"),
        low("c", "1", 5, "n1"),
        low("d", "1", 500, "n1"),
    ];
    let c = cache(&nodes, &pods);
    let chosen = run(&c, &preemptor("1"), &[]).expect("a candidate");
    // n1's lowest victim (5) beats n0's (10): highest victim priority 5 < 10.
    assert_eq!(chosen.node, "n1");
    assert_eq!(names(&chosen), vec!["default/c".to_string()]);
    let chosen = run(&c, &preemptor("2"), &[]).expect("a candidate");
    // Two CPUs: n0 loses both (10, 20); n1 would lose priority 500.
    assert_eq!(chosen.node, "n0");
    assert_eq!(
        names(&chosen),
        vec!["default/b".to_string(), "default/a".to_string()]
    );
}

#[test]
fn higher_priority_pods_are_never_victims() {
    let nodes = vec![node("n0", json!({}))];
    let c = cache(&nodes, &[low("big", "2", 2000, "n0")]);
    assert_eq!(
        run(&c, &preemptor("1"), &[]).map(|c| c.node),
        Err("0/1 nodes are available: 1 No preemption victims found for incoming pod.".into())
    );
    let c = cache(
        &nodes,
        &[low("a", "1", 1, "n0"), low("big", "1", 2000, "n0")],
    );
    assert_eq!(
        run(&c, &preemptor("2"), &[]).map(|c| c.node),
        Err("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
}

#[test]
fn preemption_policy_never_is_not_eligible() {
    let c = cache(&[node("n0", json!({}))], &[low("a", "2", 1, "n0")]);
    let mut p = with_priority(
        pod("vip", json!({}), requests("1")),
        1000,
        "2026-01-01T00:00:00Z",
    );
    p.spec.as_mut().expect("spec").preemption_policy = Some("Never".into());
    assert_eq!(
        run(&c, &info(&p), &[]).map(|c| c.node),
        Err("not eligible due to preemptionPolicy=Never.".into())
    );
}

#[test]
fn budgets_steer_preemption_to_nodes_without_violations() {
    let nodes = vec![node("n0", json!({})), node("n1", json!({}))];
    // n0's victim would have the lower priority, but its budget allows nothing.
    let c = cache(&nodes, &[low("a", "2", 1, "n0"), low("b", "2", 2, "n1")]);
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "a", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "a"}}},
        "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1,
                   "expectedPods": 1},
    }))
    .expect("pdb");
    let budgets: Vec<Budget> = Budget::new(&pdb).into_iter().collect();
    assert_eq!(
        run(&c, &preemptor("1"), &budgets)
            .expect("a candidate")
            .node,
        "n1"
    );
    assert_eq!(
        run(&c, &preemptor("1"), &[]).expect("a candidate").node,
        "n0"
    );
}

#[test]
fn ties_go_to_the_node_whose_victims_started_last() {
    let nodes = vec![node("n0", json!({})), node("n1", json!({}))];
    let early = on(
        with_priority(
            pod("early", json!({}), requests("2")),
            1,
            "2026-01-01T00:00:00Z",
        ),
        "n0",
    );
    let late = on(
        with_priority(
            pod("late", json!({}), requests("2")),
            1,
            "2026-06-01T00:00:00Z",
        ),
        "n1",
    );
    let c = cache(&nodes, &[early, late]);
    assert_eq!(
        run(&c, &preemptor("1"), &[]).expect("a candidate").node,
        "n1"
    );
}
