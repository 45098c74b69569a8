//! Topology spread with upstream's semantics.

use serde_json::{Value, json};

use super::*;
use crate::scheduler::algorithm::Context;
use crate::scheduler::testing::{cache, decide, info, node, on, pod};

fn constraint(max_skew: i32, key: &str, when: &str, extra: Value) -> Value {
    let mut c = json!({"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
                       "labelSelector": {"matchLabels": {"app": "web"}}});
    json_patch::merge(&mut c, &extra);
    json!({"spec": {"topologySpreadConstraints": [c]}})
}

fn zones() -> Vec<k8s_openapi::api::core::v1::Node> {
    vec![
        node("n0", json!({"zone": "a"})),
        node("n1", json!({"zone": "a"})),
        node("n2", json!({"zone": "b"})),
    ]
}

fn web(name: &str) -> k8s_openapi::api::core::v1::Pod {
    pod(name, json!({"app": "web"}), json!({}))
}

#[test]
fn do_not_schedule_keeps_the_skew_within_max_skew() {
    let p = pod(
        "new",
        json!({"app": "web"}),
        constraint(1, "zone", "DoNotSchedule", json!({})),
    );
    let c = cache(&zones(), &[on(web("w0"), "n0")]);
    assert_eq!(decide(&p, &c, &Context::default()), Ok("n2".into()));
    let c = cache(&zones(), &[on(web("w0"), "n0"), on(web("w1"), "n0")]);
    // Zone a has 2, zone b 0: only b keeps the skew at 1.
    assert_eq!(decide(&p, &c, &Context::default()), Ok("n2".into()));
    let mut pinned = p.clone();
    pinned.spec.as_mut().expect("spec").node_selector =
        Some([("zone".to_string(), "a".to_string())].into());
    // nodeAffinityPolicy Honor: zone b is no domain for a pod that cannot go there.
    assert_eq!(decide(&pinned, &c, &Context::default()), Ok("n1".into()));
}

#[test]
fn a_node_without_the_topology_label_is_unresolvable_and_skew_is_reported() {
    let nodes = vec![
        node("n0", json!({"zone": "a"})),
        node("n1", json!({"zone": "b"})),
        node("bare", json!({})),
    ];
    let p = pod(
        "new",
        json!({"app": "web"}),
        constraint(1, "zone", "DoNotSchedule", json!({})),
    );
    let c = cache(&nodes, &[on(web("w0"), "n0"), on(web("w1"), "n0")]);
    assert_eq!(decide(&p, &c, &Context::default()), Ok("n1".into()));
    let p = pod(
        "new",
        json!({"app": "web"}),
        constraint(1, "zone", "DoNotSchedule", json!({"minDomains": 3})),
    );
    let c = cache(&nodes, &[on(web("w0"), "n0"), on(web("w1"), "n1")]);
    // Fewer domains than minDomains: the global minimum counts as 0.
    assert_eq!(
        decide(&p, &c, &Context::default()),
        Err("0/3 nodes are available: \
             1 node(s) didn't match pod topology spread constraints (missing required label), \
             2 node(s) didn't match pod topology spread constraints."
            .into())
    );
}

#[test]
fn schedule_anyway_and_the_system_defaults_prefer_the_emptier_domain() {
    let nodes = vec![
        node("n0", json!({})),
        node("n1", json!({})),
        node("n2", json!({})),
    ];
    let pods = [
        on(web("w0"), "n0"),
        on(web("w1"), "n0"),
        on(web("w2"), "n1"),
    ];
    let c = cache(&nodes, &pods);
    let p = web("new");
    let selector = Selector::from_map(&[("app".to_string(), "web".to_string())].into());
    let feasible: Vec<&NodeInfo> = c.nodes().collect();
    let state = ScoreState::new(&info(&p), &feasible, &c, Some(&selector)).expect("defaults");
    // Hostname maxSkew 3: count * ln(3 + 2) + 2; no zone labels, so no zone term.
    let raw: Vec<Option<i64>> = feasible.iter().map(|n| state.raw(n)).collect();
    assert_eq!(raw, vec![Some(5), Some(4), Some(2)]);
    assert_eq!(normalize(&raw), vec![40, 60, 100]);
    // Without a selector (no workload selects the pod) nothing is defaulted.
    assert!(ScoreState::new(&info(&p), &feasible, &c, None).is_none());
    assert_eq!(
        decide(
            &p,
            &c,
            &Context {
                default_selector: Some(selector),
                ..Context::default()
            }
        ),
        Ok("n2".into())
    );
}

#[test]
fn match_label_keys_count_only_pods_with_the_same_values() {
    let nodes = zones();
    let old = |n: &str| pod(n, json!({"app": "web", "rev": "1"}), json!({}));
    let c = cache(&nodes, &[on(old("o0"), "n2"), on(old("o1"), "n2")]);
    let p = pod(
        "new",
        json!({"app": "web", "rev": "2"}),
        constraint(
            1,
            "zone",
            "DoNotSchedule",
            json!({"matchLabelKeys": ["rev"]}),
        ),
    );
    // Revision 1 pods do not count, so zone b is as empty as zone a.
    assert_eq!(decide(&p, &c, &Context::default()), Ok("n0".into()));
}
